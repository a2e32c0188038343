"""The target environment: which interpreter pip would act on, and what kind of env it is.

``resolve_target`` picks the interpreter (pip's ``--python``/``PIP_PYTHON``, a
shim binding, otherwise the ``python`` on PATH).  ``inspect_environment`` asks
that interpreter for its paths (one small ``-I -S`` subprocess, or none when it
is safe-pip's own interpreter) and classifies the prefix from its layout.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping

from safe_pip.names import canonical
from safe_pip.probe import Probe
from safe_pip.readfile import MiB, read_bytes, read_head, read_text
from safe_pip.target import Target
from safe_pip.values import field, frozen

MARKER_NAME = "EXTERNALLY-MANAGED"


class EnvKind(str, enum.Enum):
    CONDA_BASE = "conda-base"
    CONDA_ENV = "conda-env"
    VENV = "venv"
    SYSTEM = "system"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


@frozen
class Environment:
    python: str
    how: str
    prefix: str
    base_prefix: str
    kind: EnvKind
    name: str
    version: str
    stdlib: str
    purelib: str
    platlib: str
    scripts: str
    data: str
    user_base: str
    user_site: str
    user_site_enabled: bool
    system_site_packages: bool
    writable: bool
    marker: str | None
    stale_markers: tuple[str, ...]
    frozen: bool
    pip_version: str | None
    conda_root: str | None = None
    #: distributions installed in editable mode (filled only when a decision needs it)
    editable_dists: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_conda(self) -> bool:
        return self.kind in (EnvKind.CONDA_BASE, EnvKind.CONDA_ENV)

    @property
    def short_version(self) -> str:
        return ".".join(self.version.split(".")[:2])


#: PEP 503 normalisation (the one implementation is ``names.canonical``)
normalize_name = canonical


def _read_pyvenv_cfg(prefix: str) -> dict[str, str] | None:
    path = os.path.join(prefix, "pyvenv.cfg")
    try:
        text = read_text(path, limit=64 * 1024, errors="replace")
    except OSError:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip().lower()] = value.strip()
    return values


def conda_roots_from_environ(environ: Mapping[str, str]) -> list[str]:
    """Base prefixes named by conda's variables (``CONDA_ROOT``, ``_CONDA_ROOT``, ``CONDA_EXE``)."""
    roots = [environ.get("CONDA_ROOT", ""), environ.get("_CONDA_ROOT", "")]
    for var in ("CONDA_EXE", "MAMBA_EXE"):
        exe = environ.get(var, "")
        if exe:
            # <base>/bin/conda or <base>/condabin/conda
            roots.append(os.path.dirname(os.path.dirname(exe)))
    return [os.path.realpath(r) for r in roots if r]


def _history_says_constructor(prefix: str) -> bool:
    """A constructor-built base records the installer in its first history block."""
    try:
        head = read_head(os.path.join(prefix, "conda-meta", "history"), 4096)
    except OSError:
        return False
    first_cmd = b""
    for line in head.splitlines():
        if line.startswith(b"# cmd:"):
            first_cmd = line
            break
    words = first_cmd[len(b"# cmd:") :].split()
    # `constructor ...` or `/path/to/constructor ...` (the installer builder)
    return bool(words) and words[0].rsplit(b"/", 1)[-1] == b"constructor"


def is_conda_base(prefix: str, environ: Mapping[str, str]) -> bool:
    """A conda base env, recognised from its layout, its history or conda's variables."""
    if not os.path.isdir(os.path.join(prefix, "conda-meta")):
        return False
    if os.path.isdir(os.path.join(prefix, "condabin")):
        return True
    if os.path.isdir(os.path.join(prefix, "envs")) and os.path.isdir(os.path.join(prefix, "pkgs")):
        return True
    if os.path.realpath(prefix) in conda_roots_from_environ(environ):
        return True
    try:
        names = os.listdir(os.path.join(prefix, "conda-meta"))
    except OSError:
        names = []
    # the `conda` package itself is installed only in base
    if any(n.startswith("conda-") and n[6:7].isdigit() and n.endswith(".json") for n in names):
        return True
    return _history_says_constructor(prefix)


def enclosing_env_kind(path: str, environ: Mapping[str, str]) -> EnvKind | None:
    """The kind of env a destination directory lies in, when it is a protected one.

    Walks up from ``path`` to the nearest dir with ``conda-meta/`` (a conda
    base is reported) or to a distribution Python's ``/usr`` trees.
    """
    real = os.path.realpath(path)
    if real.startswith(("/usr/lib/python", "/usr/local/lib/python", "/usr/lib/python3/")):
        return EnvKind.SYSTEM
    probe = real
    for _ in range(12):
        if os.path.isdir(os.path.join(probe, "conda-meta")):
            return EnvKind.CONDA_BASE if is_conda_base(probe, environ) else None
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return None


def _is_distro_python(prefix: str, purelib: str) -> bool:
    return prefix in ("/usr", "/usr/local") or "dist-packages" in purelib.split(os.sep)


def env_name(python: str, prefix: str, kind: EnvKind) -> str:
    if kind == EnvKind.CONDA_BASE:
        return "base"
    # a path like .../envs/NAME/bin/python names the env (conda, conda-store symlinks)
    parts = os.path.abspath(python).split(os.sep)
    if len(parts) >= 4 and parts[-4] == "envs":
        return parts[-3]
    parent, name = os.path.split(prefix.rstrip(os.sep) or prefix)
    if os.path.basename(parent) == "envs":
        return name
    return name or prefix


def find_markers(prefix: str, stdlib: str) -> tuple[str | None, tuple[str, ...]]:
    """The marker in force (in the stdlib dir) and any stale ones in other lib/pythonX.Y dirs."""
    marker = os.path.join(stdlib, MARKER_NAME)
    current = marker if os.path.isfile(marker) else None
    stale: list[str] = []
    lib = os.path.join(prefix, "lib")
    try:
        entries = os.listdir(lib)
    except OSError:
        entries = []
    for entry in sorted(entries):
        if not entry.startswith("python"):
            continue
        candidate = os.path.join(lib, entry, MARKER_NAME)
        if os.path.isfile(candidate) and os.path.realpath(candidate) != os.path.realpath(marker):
            stale.append(candidate)
    return current, tuple(stale)


def pip_version_in(purelib: str) -> str | None:
    """pip's version from its dist-info name; no pip import, no subprocess."""
    try:
        entries = os.listdir(purelib)
    except OSError:
        return None
    for entry in entries:
        if entry.startswith("pip-") and entry.endswith(".dist-info"):
            return entry[4 : -len(".dist-info")]
    return None


def _existing(path: str) -> str:
    """``path``, or its nearest existing ancestor (what a write there needs)."""
    probe = path
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def _writable(*paths: str) -> bool:
    return all(os.access(_existing(path), os.W_OK) for path in paths)


def writable_by(uid: int, gids: frozenset[int], *paths: str) -> bool:
    """Whether a process with ``uid`` and groups ``gids`` may write in ``paths``.

    From the permission bits (owner, group, other); root may write anywhere.
    """
    import stat

    if uid == 0:
        return True
    for path in paths:
        try:
            info = os.stat(_existing(path))
        except OSError:
            return False
        if info.st_uid == uid:
            bit = stat.S_IWUSR
        elif info.st_gid in gids:
            bit = stat.S_IWGRP
        else:
            bit = stat.S_IWOTH
        if not info.st_mode & bit:
            return False
    return True


def inspect_environment(
    target: Target, environ: Mapping[str, str], probe: Probe | None = None
) -> Environment:
    """The env of ``target`` (``probe``: its interpreter, already asked)."""
    info = (probe or Probe(target.python, environ)).result()
    prefix = info["prefix"]
    base_prefix = info["base_prefix"]
    system_site = False
    # what the interpreter itself reports, not the presence of a pyvenv.cfg
    if prefix != base_prefix:
        kind = EnvKind.VENV
        cfg = _read_pyvenv_cfg(prefix) or {}
        system_site = cfg.get("include-system-site-packages", "false").lower() == "true"
    elif os.path.isdir(os.path.join(prefix, "conda-meta")):
        kind = EnvKind.CONDA_BASE if is_conda_base(prefix, environ) else EnvKind.CONDA_ENV
    elif _is_distro_python(prefix, info["purelib"]):
        kind = EnvKind.SYSTEM
    else:
        kind = EnvKind.OTHER
    # user site-packages: disabled in a venv without system site-packages
    user_site_enabled = kind != EnvKind.VENV or system_site
    marker, stale = find_markers(prefix, info["stdlib"])
    conda_root = None
    if kind == EnvKind.CONDA_BASE:
        conda_root = prefix
    elif kind == EnvKind.CONDA_ENV and os.path.basename(os.path.dirname(prefix)) == "envs":
        candidate = os.path.dirname(os.path.dirname(prefix))
        if os.path.isdir(os.path.join(candidate, "conda-meta")):
            conda_root = candidate
    return Environment(
        python=target.python,
        how=target.how,
        prefix=prefix,
        base_prefix=base_prefix,
        kind=kind,
        name=env_name(target.python, prefix, kind),
        version=info["version"],
        stdlib=info["stdlib"],
        purelib=info["purelib"],
        platlib=info["platlib"],
        scripts=info["scripts"],
        data=info["data"],
        user_base=info["user_base"],
        user_site=info["user_site"],
        user_site_enabled=user_site_enabled,
        system_site_packages=system_site,
        writable=_writable(info["purelib"], info["platlib"]),
        marker=marker,
        stale_markers=stale,
        frozen=os.path.exists(os.path.join(prefix, "conda-meta", "frozen")),
        pip_version=pip_version_in(info["purelib"]),
        conda_root=conda_root,
    )


def editable_distributions(env: Environment) -> frozenset[str]:
    """Names (normalised) of the distributions installed in editable mode."""
    names: set[str] = set()
    for directory in {env.purelib, env.platlib}:
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith(".dist-info"):
                continue
            try:
                data = json.loads(
                    read_bytes(os.path.join(directory, entry, "direct_url.json"), limit=MiB)
                )
            except (OSError, ValueError, RecursionError):
                continue
            if isinstance(data, dict) and (data.get("dir_info") or {}).get("editable"):
                names.add(normalize_name(entry[: -len(".dist-info")].rsplit("-", 1)[0]))
    return frozenset(names)
