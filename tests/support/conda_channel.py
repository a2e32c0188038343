"""Conda envs made by a real conda-ecosystem installer: a local channel and py-rattler.

* `local_channel()` builds, once per cache (lock-safe, like every cached build),
  a file channel `<cache>/conda-channel-.../conda-forge/` indexed with py-rattler:
  `python` (linux-64) packed from the cached interpreter copy (`base_python()`),
  `pip` (noarch) from ensurepip's bundled wheel, and noarch python packages made
  from wheels of the test suite (see `CHANNEL_PACKAGES`).
* `rattler_env(root, name, specs)` solves `specs` against that channel and
  installs the result with py-rattler (offline), as pixi does; the env's
  `conda-meta/` is rattler's own (empty `history`, records with
  `requested_specs` and no `requested_spec`).

The noarch packages are shaped like conda-forge's (what conda-build leaves after
`pip install . --no-deps` into the build prefix): a dist-info with `INSTALLER`
`conda` while RECORD still holds the hash of pip's `pip\\n`, RECORD entries for
`__pycache__/*.pyc` files the package does not ship and for the entry-point
scripts conda writes at link time. `demo-norec` ships a module and no dist-info
at all, as some conda packages do.
"""

from __future__ import annotations

import asyncio
import compileall
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.prefixes import (
    BasePython,
    Prefix,
    _chown_tree,
    _run_quietly,
    _umask,
    base_python,
    cache_dir,
    cached_build,
)
from support.wheels import build_wheel, import_name, record_text

# Bump when what the channel holds changes: old cached channels are then ignored.
CHANNEL_LAYOUT = "1"
CHANNEL_NAME = "conda-forge"
PYTHON_BUILD = "h0_cpython_0"
NOARCH_BUILD = "pyh4616a5c_0"
# Fixed times: the same inputs give the same packages.
_TIMESTAMP_MS = 1_767_225_600_000  # 2026-01-01
_MTIME = _TIMESTAMP_MS // 1000


@dataclass(frozen=True)
class NoarchPackage:
    """A noarch python conda package made from a wheel the suite builds."""

    name: str
    version: str
    depends: tuple[str, ...] = ()
    files: Mapping[str, str] | None = None  # wheel contents; default: one package
    entry_points: Mapping[str, str] = field(default_factory=dict)
    dist_info: bool = True  # False: the module alone, as conda packages without metadata


# What the channel holds besides python and pip.
CHANNEL_PACKAGES = (
    NoarchPackage("six", "1.16.0", files={"six.py": '__version__ = "1.16.0"\n'}),
    NoarchPackage("demo-rec", "1.0", entry_points={"demo-rec": "demo_rec:main"}),
    NoarchPackage("demo-norec", "1.0", dist_info=False),
    NoarchPackage("demo-dep", "2.0", depends=("demo-rec",)),
    # stand-ins for conda-forge packages of the drift scenarios
    NoarchPackage("colorama", "0.4.6"),
    NoarchPackage("idna", "3.4"),
    NoarchPackage("tqdm", "4.66.0"),
)


# --------------------------------------------------------------------------
# Packing conda packages (.tar.bz2: info/ plus the files)
# --------------------------------------------------------------------------


@dataclass
class _Member:
    data: bytes | None = None  # None: a symlink
    target: str = ""
    mode: int = 0o644
    mtime: int = _MTIME


def _paths_json(members: Mapping[str, _Member]) -> dict[str, Any]:
    paths: list[dict[str, Any]] = []
    for path, member in sorted(members.items()):
        if member.data is None:
            paths.append({"_path": path, "path_type": "softlink", "size_in_bytes": 0})
        else:
            paths.append(
                {
                    "_path": path,
                    "path_type": "hardlink",
                    "sha256": hashlib.sha256(member.data).hexdigest(),
                    "size_in_bytes": len(member.data),
                }
            )
    return {"paths": paths, "paths_version": 1}


def _write_package(
    out_dir: Path,
    index: dict[str, Any],
    members: Mapping[str, _Member],
    link: dict[str, Any] | None = None,
    *,
    compresslevel: int = 9,
) -> Path:
    info: dict[str, bytes] = {
        "info/index.json": json.dumps(index, indent=2, sort_keys=True).encode(),
        "info/paths.json": json.dumps(_paths_json(members), indent=2).encode(),
        "info/files": "".join(f"{p}\n" for p in sorted(members)).encode(),
    }
    if link is not None:
        info["info/link.json"] = json.dumps(link, indent=2).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{index['name']}-{index['version']}-{index['build']}.tar.bz2"
    target = out_dir / name
    with tarfile.open(target, "w:bz2", compresslevel=compresslevel) as tar:
        for path, data in info.items():
            _add_file(tar, path, data, 0o644, _MTIME)
        for path, member in sorted(members.items()):
            if member.data is None:
                entry = tarfile.TarInfo(path)
                entry.type = tarfile.SYMTYPE
                entry.linkname = member.target
                entry.mtime = member.mtime
                tar.addfile(entry)
            else:
                _add_file(tar, path, member.data, member.mode, member.mtime)
    return target


def _add_file(tar: tarfile.TarFile, path: str, data: bytes, mode: int, mtime: int) -> None:
    entry = tarfile.TarInfo(path)
    entry.size = len(data)
    entry.mode = mode
    entry.mtime = mtime
    tar.addfile(entry, io.BytesIO(data))


def _index(
    name: str, version: str, build: str, subdir: str, depends: Iterable[str]
) -> dict[str, Any]:
    index: dict[str, Any] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": int(build.rsplit("_", 1)[1]),
        "depends": list(depends),
        "license": "MIT",
        "subdir": subdir,
        "timestamp": _TIMESTAMP_MS,
    }
    if subdir == "noarch":
        index["noarch"] = "python"
    return index


def _python_package(base: BasePython, out_dir: Path) -> Path:
    """`python` from the cached interpreter copy: bin/, libpython, the stdlib with
    its bytecode (as conda-forge ships it), an empty site-packages."""
    members: dict[str, _Member] = {}
    for top in ("bin", "lib"):
        for dirpath, dirnames, filenames in os.walk(base.root / top):
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(base.root)
            if rel_dir == Path("lib", f"python{base.version}", "site-packages"):
                dirnames.clear()
                filenames = ["README.txt"]
            for name in sorted(filenames) + [
                d for d in dirnames if (Path(dirpath) / d).is_symlink()
            ]:
                path = Path(dirpath) / name
                rel = (rel_dir / name).as_posix()
                if rel.startswith("bin/pip"):
                    continue
                if path.is_symlink():
                    members[rel] = _Member(target=os.readlink(path))
                else:
                    mode = 0o755 if os.access(path, os.X_OK) else 0o644
                    # the source's own mtime keeps the stdlib bytecode valid
                    mtime = int(path.stat().st_mtime)
                    members[rel] = _Member(path.read_bytes(), mode=mode, mtime=mtime)
    index = _index("python", base.full_version, PYTHON_BUILD, "linux-64", ())
    # python is large: trade a bigger file for a faster build (once per cache)
    return _write_package(out_dir / "linux-64", index, members, compresslevel=1)


def _pyc_name(module_path: str, tag: str = "cpython-311") -> str | None:
    """`a/b.py` -> `a/__pycache__/b.cpython-311.pyc` (what pip records after compiling)."""
    if not module_path.endswith(".py"):
        return None
    head, _, tail = module_path.rpartition("/")
    pyc = f"__pycache__/{tail[:-3]}.{tag}.pyc"
    return f"{head}/{pyc}" if head else pyc


def _conda_forge_dist(
    wheel_members: Mapping[str, bytes], entry_points: Mapping[str, str]
) -> dict[str, bytes]:
    """A wheel's files as conda-build leaves them after `pip install --no-deps .`:

    INSTALLER is `conda` but RECORD keeps the hash pip wrote for `pip\\n`; RECORD
    lists the bytecode pip compiled (left out of noarch packages) and the
    scripts pip wrote in bin/ (conda writes them again at link time).
    """
    files = {path: data for path, data in wheel_members.items() if not path.endswith("/RECORD")}
    info_dir = next(p.split("/")[0] for p in files if p.split("/")[0].endswith(".dist-info"))
    entries: list[tuple[str, bytes | None]] = list(files.items())
    entries.append((f"{info_dir}/INSTALLER", b"pip\n"))
    entries.append((f"{info_dir}/REQUESTED", b""))
    entries.extend((f"../../../bin/{script}", b"#!python\n") for script in sorted(entry_points))
    entries.append((f"{info_dir}/RECORD", None))
    record = record_text(entries)
    pycs = [_pyc_name(path) for path in files]
    record += "".join(f"{pyc},,\n" for pyc in pycs if pyc)
    files[f"{info_dir}/INSTALLER"] = b"conda"
    files[f"{info_dir}/REQUESTED"] = b""
    files[f"{info_dir}/RECORD"] = record.encode()
    return files


def _noarch_package(wheel: Path, out_dir: Path, *, depends: Sequence[str], dist_info: bool) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        wheel_members = {name: zf.read(name) for name in zf.namelist()}
    info_dir = next(
        p.split("/")[0] for p in wheel_members if p.split("/")[0].endswith(".dist-info")
    )
    name, version = info_dir[: -len(".dist-info")].rsplit("-", 1)
    conda_name = name.replace("_", "-").lower()
    entry_points: dict[str, str] = {}
    text = wheel_members.get(f"{info_dir}/entry_points.txt", b"").decode()
    for line in text.splitlines():
        if "=" in line and not line.startswith("["):
            script, target = (part.strip() for part in line.split("=", 1))
            entry_points[script] = target
    if dist_info:
        files = _conda_forge_dist(wheel_members, entry_points)
    else:
        files = {p: d for p, d in wheel_members.items() if not p.startswith(info_dir + "/")}
    members = {f"site-packages/{path}": _Member(data) for path, data in files.items()}
    index = _index(conda_name, version, NOARCH_BUILD, "noarch", ["python >=3.9", *depends])
    link = {
        "noarch": {
            "type": "python",
            "entry_points": [f"{script} = {target}" for script, target in entry_points.items()],
        },
        "package_metadata_version": 1,
    }
    return _write_package(out_dir / "noarch", index, members, link)


def _build_channel(base: BasePython, staging: Path) -> None:
    channel = staging / CHANNEL_NAME
    wheels = staging / "wheels"
    _python_package(base, channel)
    pip_wheel = next(base.bundled_wheels.glob("pip-*.whl"))
    _noarch_package(pip_wheel, channel, depends=(), dist_info=True)
    for package in CHANNEL_PACKAGES:
        files = dict(package.files or {})
        if package.entry_points or not files:
            module = import_name(package.name)
            files.setdefault(
                f"{module}/__init__.py",
                f'__version__ = "{package.version}"\n\n\ndef main() -> None:\n'
                f'    print("{package.name} {package.version}")\n',
            )
        wheel = build_wheel(
            wheels,
            package.name,
            package.version,
            files=files,
            requires=[d.split()[0] for d in package.depends],
            entry_points=package.entry_points or None,
        )
        _noarch_package(wheel, channel, depends=package.depends, dist_info=package.dist_info)
    (channel / "noarch").mkdir(exist_ok=True)
    (channel / "linux-64").mkdir(exist_ok=True)
    import rattler.index  # type: ignore[import-untyped,unused-ignore]

    asyncio.run(rattler.index.index_fs(channel))


def local_channel(python_version: str = "3.11") -> Path:
    """The cached local channel directory (`.../conda-forge`), built on first use."""
    base = base_python(python_version)
    recipe = json.dumps(
        [CHANNEL_LAYOUT, str(base.root), [repr(p) for p in CHANNEL_PACKAGES]]
    ).encode()
    key = hashlib.sha256(recipe).hexdigest()[:12]
    final = cache_dir() / f"conda-channel-{base.full_version}-{key}"
    cached_build(final, lambda staging: _build_channel(base, staging))
    return final / CHANNEL_NAME


def channel_url(channel: Path) -> str:
    """The channel's URL as records name it (`file:///.../conda-forge/`)."""
    return channel.as_uri() + "/"


# --------------------------------------------------------------------------
# Envs
# --------------------------------------------------------------------------


def _package_cache() -> Path:
    path = cache_dir() / "rattler-pkgs"
    with _umask(0o022):
        path.mkdir(exist_ok=True)
    os.chmod(path, 0o755)
    return path


async def _solve_and_install(channel: Path, prefix: Path, specs: Sequence[str]) -> None:
    import rattler  # type: ignore[import-untyped,unused-ignore]

    gateway = rattler.Gateway(cache_dir=cache_dir() / "rattler-repodata")
    records = await rattler.solve(
        sources=[rattler.Channel(channel_url(channel))],
        specs=list(specs),
        gateway=gateway,
        platforms=["linux-64", "noarch"],
        virtual_packages=[],
    )
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=_package_cache(),
        # py-rattler 0.28 hands these to its core unwrapped: pass the core objects
        requested_specs=[rattler.MatchSpec(spec)._match_spec for spec in specs],
        show_progress=False,
    )


def rattler_env(
    root: Path,
    name: str = "env",
    specs: Sequence[str] = ("python=3.11", "pip"),
    *,
    writable_by: int | None = None,
    python_version: str = "3.11",
) -> Prefix:
    """A conda env `root/name` made by py-rattler from `local_channel()` (offline).

    Root-owned 0755 unless `writable_by` is a uid, which then owns it (files
    hardlinked from rattler's package cache stay root's, as with `make_prefix`).
    The noarch packages' bytecode, which conda compiles at link time and rattler
    does not, is hardlinked from a cached compiled env, so pip starts fast for
    every user (about 0.3 s for the whole env instead of 2 s of compiling).
    """
    channel = local_channel(python_version)
    bytecode = _bytecode(channel, python_version)
    path = root / name
    with _umask(0o022):
        root.mkdir(parents=True, exist_ok=True)
        asyncio.run(_solve_and_install(channel, path, specs))
        prefix = Prefix(path=path, kind="conda-env", base=base_python(python_version))
        _link_bytecode(bytecode, prefix.site_packages)
    os.chmod(path, 0o755)
    if writable_by is not None:
        _chown_tree(path, writable_by)
    return prefix


def _bytecode(channel: Path, python_version: str) -> Path:
    """site-packages of a cached env holding every channel package, compiled.

    Its sources are hardlinks into rattler's package cache, as are every env's,
    so their mtimes (which the bytecode records) are the same everywhere.
    """
    final = channel.parent.with_name(channel.parent.name + "-bytecode")
    specs = [f"python={python_version}", "pip", *(p.name for p in CHANNEL_PACKAGES)]

    def build(staging: Path) -> None:
        asyncio.run(_solve_and_install(channel, staging / "env", specs))
        site = staging / "env" / "lib" / f"python{python_version}" / "site-packages"
        if f"{sys.version_info[0]}.{sys.version_info[1]}" == python_version:
            compileall.compile_dir(str(site), quiet=2)  # the same bytecode, no process
        else:
            python = staging / "env" / "bin" / f"python{python_version}"
            _run_quietly([str(python), "-m", "compileall", "-q", str(site)])

    cached_build(final, build)
    return final / "env" / "lib" / f"python{python_version}" / "site-packages"


def _link_bytecode(compiled: Path, site: Path) -> None:
    """Hardlink `compiled`'s __pycache__ files whose source `site` has."""
    for dirpath, _dirnames, filenames in os.walk(compiled):
        if os.path.basename(dirpath) != "__pycache__":
            continue
        rel = os.path.relpath(dirpath, compiled)
        source_dir = site / os.path.dirname(rel)
        wanted = [f for f in filenames if (source_dir / f"{f.split('.', 1)[0]}.py").exists()]
        if not wanted:
            continue
        (site / rel).mkdir(exist_ok=True)
        for filename in wanted:
            os.link(os.path.join(dirpath, filename), site / rel / filename)


__all__ = [
    "CHANNEL_NAME",
    "CHANNEL_PACKAGES",
    "NoarchPackage",
    "channel_url",
    "local_channel",
    "rattler_env",
]
