"""Real distributions for tests, written by hand: wheels, source trees, repacked installs.

Everything here is plain file writing (no setuptools, no pip), so it is fast and
offline. The wheels are valid enough for the real pip: `pip install --no-index
--find-links DIR name` installs them, checks their RECORD and resolves their
`Requires-Dist`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Union

FileContent = Union[str, bytes]

# Fixed zip entry time: the same inputs give byte-identical wheels.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def normalize_name(name: str) -> str:
    """PEP 503 normalized project name (`Demo_A.x` -> `demo-a-x`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_filename_part(name: str) -> str:
    """The name as it appears in wheel and dist-info names (`demo-a` -> `demo_a`)."""
    return normalize_name(name).replace("-", "_")


def import_name(name: str) -> str:
    """The top-level package a generated project or wheel provides (`demo-a` -> `demo_a`)."""
    return dist_filename_part(name)


def record_hash(data: bytes) -> str:
    """A RECORD hash field: `sha256=<urlsafe base64 without padding>`."""
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def record_text(entries: Iterable[tuple[str, bytes | None]]) -> str:
    """RECORD content for `(path, data)` pairs; `data=None` marks RECORD itself (no hash)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for path, data in entries:
        if data is None:
            writer.writerow([path, "", ""])
        else:
            writer.writerow([path, record_hash(data), str(len(data))])
    return out.getvalue()


def metadata_text(
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    summary: str | None = None,
    requires_python: str | None = None,
) -> str:
    """Core metadata 2.1 for a distribution (METADATA / PKG-INFO)."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines.append(f"Summary: {summary if summary is not None else f'{name} test distribution'}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {req}" for req in requires)
    return "\n".join(lines) + "\n\n"


def _as_bytes(content: FileContent) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _write_zip(path: Path, members: Mapping[str, bytes]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in members.items():
            info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def build_wheel(
    dest_dir: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, FileContent] | None = None,
    requires: Iterable[str] = (),
    entry_points: Mapping[str, str] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write `<dest_dir>/<name>-<version>-py3-none-any.whl` and return its path.

    `files` maps archive paths to contents; by default the wheel holds one package,
    `<import_name>/__init__.py`, defining `__version__`. `requires` become
    `Requires-Dist` lines; `entry_points` maps console-script names to
    `module:function`, which pip turns into scripts in the prefix's `bin/`.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    if files is None:
        files = {f"{import_name(name)}/__init__.py": f'__version__ = "{version}"\n'}
    dist_info = f"{dist_filename_part(name)}-{version}.dist-info"
    members: dict[str, bytes] = {path: _as_bytes(data) for path, data in files.items()}
    members[f"{dist_info}/METADATA"] = metadata_text(
        name, version, requires=requires, requires_python=requires_python
    ).encode()
    members[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: safe-pip-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n\n"
    )
    if entry_points:
        scripts = "".join(f"{script} = {target}\n" for script, target in entry_points.items())
        members[f"{dist_info}/entry_points.txt"] = f"[console_scripts]\n{scripts}".encode()
    record_path = f"{dist_info}/RECORD"
    entries: list[tuple[str, bytes | None]] = list(members.items())
    entries.append((record_path, None))
    members[record_path] = record_text(entries).encode()
    wheel = dest_dir / f"{dist_filename_part(name)}-{version}-py3-none-any.whl"
    _write_zip(wheel, members)
    return wheel


def make_project(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    owner: int | None = None,
) -> Path:
    """Write a setuptools source tree `<directory>/<name>/` and return it.

    src layout (`src/<import_name>/__init__.py` with `__version__`), pyproject.toml
    with the `setuptools.build_meta` backend. Meant for `pip install
    --no-build-isolation [-e] DIR` into a prefix that has setuptools
    (`install_setuptools`). Building writes `src/*.egg-info` into the tree, so pass
    `owner` (a uid) when an unprivileged user will install it.
    """
    project = directory / name
    package = project / "src" / import_name(name)
    package.mkdir(parents=True)
    deps = "".join(f'    "{req}",\n' for req in requires)
    (project / "pyproject.toml").write_text(
        "[build-system]\n"
        'requires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n'
        "\n"
        "[project]\n"
        f'name = "{name}"\n'
        f'version = "{version}"\n'
        f"dependencies = [\n{deps}]\n"
        "\n"
        "[tool.setuptools.packages.find]\n"
        'where = ["src"]\n'
    )
    (package / "__init__.py").write_text(f'__version__ = "{version}"\n')
    for path in [directory, project, *project.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
        if owner is not None and path != directory:
            os.chown(path, owner, owner)
    return project


def _compressed_tag(tags: Iterable[str]) -> str:
    """`py2-none-any` + `py3-none-any` -> `py2.py3-none-any` (the wheel filename form)."""
    columns: list[list[str]] = [[], [], []]
    for tag in tags:
        for column, part in zip(columns, tag.split("-")):
            if part not in column:
                column.append(part)
    if not columns[0]:
        return "py3-none-any"
    return "-".join(".".join(column) for column in columns)


def wheel_from_installed(dist_name: str, dest_dir: Path) -> Path:
    """Repack a distribution installed in *this* interpreter into a wheel in `dest_dir`.

    The offline way to hand a package the test venv already has (setuptools,
    wheel, packaging) to pip in a prefix. Files outside site-packages (console
    scripts), bytecode, and installer-written files (INSTALLER, REQUESTED,
    direct_url.json, RECORD) are left out; RECORD is written anew.
    """
    dist = metadata.distribution(dist_name)
    name, version = dist.metadata["Name"], dist.version
    info_dir = f"{dist_filename_part(name)}-{version}.dist-info"
    wheel_meta = dist.read_text("WHEEL") or ""
    tag = _compressed_tag(
        line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")
    )
    wheel = dest_dir / f"{dist_filename_part(name)}-{version}-{tag}.whl"
    if wheel.exists():
        return wheel
    skip_in_info = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
    members: dict[str, bytes] = {}
    for entry in dist.files or ():
        posix = entry.as_posix()
        parts = posix.split("/")
        if parts[0] == ".." or "__pycache__" in parts or posix.endswith(".pyc"):
            continue
        if parts[0].endswith(".dist-info") and parts[-1] in skip_in_info and len(parts) == 2:
            continue
        if parts[0].endswith(".dist-info"):
            posix = "/".join([info_dir, *parts[1:]])
        members[posix] = Path(str(dist.locate_file(entry))).read_bytes()
    record_path = f"{info_dir}/RECORD"
    entries: list[tuple[str, bytes | None]] = [*members.items(), (record_path, None)]
    members[record_path] = record_text(entries).encode()
    dest_dir.mkdir(parents=True, exist_ok=True)
    _write_zip(wheel, members)
    return wheel
