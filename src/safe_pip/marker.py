"""PEP 668 marker and pip shims: ``safe-pip protect [--shim]`` and ``safe-pip unprotect``.

``protect`` writes ``EXTERNALLY-MANAGED`` into the env's stdlib dir so bare
pip refuses, and with ``--shim`` replaces ``bin/pip``, ``bin/pip3`` and
``bin/pip3.X`` with launchers that run safe-pip bound to the env.  What it
replaced is kept under ``<prefix>/etc/safe-pip/protect/`` with a manifest, so
``unprotect`` restores the env exactly.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from safe_pip.atomicwrite import write_atomic
from safe_pip.environment import MARKER_NAME, Environment
from safe_pip.errors import SafePipError, TargetError
from safe_pip.target import BOUND_PYTHON_VAR

STATE_DIR = os.path.join("etc", "safe-pip", "protect")
MANIFEST = "manifest.json"
SHIM_TAG = "# safe-pip shim"


@dataclass(frozen=True)
class Change:
    path: str
    action: str  # "created", "replaced", "kept", "removed", "restored"


def marker_text(message: str) -> str:
    lines = message.strip().splitlines() or [""]
    body = "\n".join(["Error=" + lines[0], *("  " + line for line in lines[1:])])
    return "[externally-managed]\n" + body + "\n"


def tool_import_paths() -> list[str]:
    """Where this safe-pip and its dependencies import from (for a shim that skips site)."""
    import importlib.util

    paths: list[str] = []
    for module in ("safe_pip", "packaging", "filelock", "tomli"):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            parent = os.path.dirname(os.path.abspath(location))
            if parent not in paths:
                paths.append(parent)
    return paths


def shim_text(env: Environment, tool_python: str, paths: list[str] | None = None) -> str:
    """A /bin/sh launcher: safe-pip's interpreter with -I -S (no site: faster start)
    and safe-pip's own import paths, bound to this env."""
    paths = tool_import_paths() if paths is None else paths
    code = (
        f"import sys; sys.path[:0] = {paths!r}; from safe_pip.cli import entrypoint; entrypoint()"
    )
    return (
        "#!/bin/sh\n"
        f"{SHIM_TAG}: pip for this env goes through safe-pip, which applies the hub's policy.\n"
        "# Written by `safe-pip protect --shim`; `safe-pip unprotect` restores the original.\n"
        f"{BOUND_PYTHON_VAR}={shlex.quote(env.python)}\n"
        f"export {BOUND_PYTHON_VAR}\n"
        f'exec {shlex.quote(tool_python)} -I -S -c {shlex.quote(code)} "$@"\n'
    )


def shim_names(env: Environment) -> list[str]:
    major = env.version.split(".")[0]
    return ["pip", f"pip{major}", f"pip{env.short_version}"]


def _state_dir(env: Environment) -> Path:
    return Path(env.prefix, STATE_DIR)


def _load_manifest(env: Environment) -> dict[str, dict[str, str]]:
    path = _state_dir(env) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise SafePipError(f"{path}: cannot read the protect manifest: {error}") from error
    entries = data.get("entries", {}) if isinstance(data, dict) else {}
    return {str(k): dict(v) for k, v in entries.items() if isinstance(v, dict)}


def _save_manifest(env: Environment, entries: dict[str, dict[str, str]]) -> None:
    state = _state_dir(env)
    if not entries:
        shutil.rmtree(state, ignore_errors=True)
        return
    state.mkdir(parents=True, exist_ok=True)
    write_atomic(
        str(state / MANIFEST),
        json.dumps({"version": 1, "entries": entries}, indent=2) + "\n",
        mode=0o644,
    )


def _install_file(
    env: Environment, entries: dict[str, dict[str, str]], path: str, text: str, mode: int
) -> Change:
    existing = Path(path)
    key = os.path.relpath(path, env.prefix)
    if existing.exists() or existing.is_symlink():
        try:
            current = existing.read_text(encoding="utf-8", errors="replace")
        except OSError:
            current = None
        if current == text:
            return Change(path, "kept")
        if key not in entries:
            backup = _state_dir(env) / "backup" / key
            backup.parent.mkdir(parents=True, exist_ok=True)
            if existing.is_symlink():
                os.symlink(os.readlink(path), backup)
            else:
                shutil.copy2(path, backup)
            entries[key] = {
                "action": "replaced",
                "backup": str(backup.relative_to(_state_dir(env))),
            }
        if existing.is_symlink():
            existing.unlink()
        write_atomic(path, text, mode=mode)
        return Change(path, "replaced")
    entries.setdefault(key, {"action": "created"})
    write_atomic(path, text, mode=mode)
    return Change(path, "created")


def protect(env: Environment, message: str, *, shim: bool, tool_python: str = "") -> list[Change]:
    """Write the marker (and the shims); idempotent; records what it replaced."""
    if not os.access(env.stdlib, os.W_OK):
        raise TargetError(
            f"cannot write the marker into {env.stdlib}: not writable by you",
            hint="run `safe-pip protect` as the env's owner (the admin)",
        )
    entries = _load_manifest(env)
    _state_dir(env).mkdir(parents=True, exist_ok=True)
    changes = [
        _install_file(
            env, entries, os.path.join(env.stdlib, MARKER_NAME), marker_text(message), 0o644
        )
    ]
    if shim:
        tool = tool_python or sys.executable
        text = shim_text(env, tool)
        for name in shim_names(env):
            changes.append(
                _install_file(env, entries, os.path.join(env.scripts, name), text, 0o755)
            )
    _save_manifest(env, entries)
    return changes


def unprotect(env: Environment) -> list[Change]:
    """Undo exactly what protect did: remove what it created, restore what it replaced."""
    entries = _load_manifest(env)
    changes: list[Change] = []
    state = _state_dir(env)
    for key, entry in sorted(entries.items()):
        path = os.path.join(env.prefix, key)
        if os.path.lexists(path):
            os.unlink(path)
        if entry.get("action") == "replaced":
            backup = state / entry["backup"]
            if backup.is_symlink():
                os.symlink(os.readlink(backup), path)
            else:
                shutil.copy2(backup, path)
            changes.append(Change(path, "restored"))
        else:
            changes.append(Change(path, "removed"))
    shutil.rmtree(state, ignore_errors=True)
    for parent in (state.parent, state.parent.parent):
        try:
            parent.rmdir()  # only when empty: etc/safe-pip, etc
        except OSError:
            break
    return changes
