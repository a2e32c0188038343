"""PEP 668 marker and pip shims: ``safe-pip protect [--shim]`` and ``safe-pip unprotect``.

``protect`` writes ``EXTERNALLY-MANAGED`` into the env's stdlib dir so bare
pip refuses, and with ``--shim`` replaces ``bin/pip``, ``bin/pip3`` and
``bin/pip3.X`` with launchers that run safe-pip bound to the env.  It also
adds ``user = false`` to the env's ``pip.conf`` and loads the ``%pip``
extension in the env's IPython config (see ``envconfig``).  What it
replaced or added to is kept under ``<prefix>/etc/safe-pip/protect/`` with a manifest, so
``unprotect`` restores the env exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from safe_pip.atomicwrite import write_atomic
from safe_pip.envconfig import (
    IPYTHON_DIR,
    IPYTHON_FILES,
    PIP_CONF,
    has_block,
    ipython_block,
    with_ipython_block,
    with_pip_conf_block,
    without_blocks,
)
from safe_pip.environment import MARKER_NAME, Environment
from safe_pip.errors import SafePipError, TargetError
from safe_pip.launcher import SHIM_TAG, is_shim, launcher_code, tool_import_paths
from safe_pip.readfile import MiB, read_bytes, read_text
from safe_pip.target import BOUND_PYTHON_VAR
from safe_pip.values import frozen

STATE_DIR = os.path.join("etc", "safe-pip", "protect")
MANIFEST = "manifest.json"
#: A ``.pth`` in the env's site-packages: site runs its ``import`` line at every
#: start of the env's interpreter.  pip installs into the user site on its own
#: only when ``site.ENABLE_USER_SITE`` is true, so with it false bare pip in a
#: read-only env cannot fall back to ``~/.local``, whatever pip configuration it
#: reads (``PIP_CONFIG_FILE=/dev/null`` skips the env's pip.conf).  Imports are
#: unchanged: the user site is already on ``sys.path`` when ``.pth`` files run.
NO_USER_SITE_PTH = "safe_pip_no_user_site.pth"
NO_USER_SITE_TEXT = (
    "# safe-pip protect: no fallback to ~/.local (`safe-pip unprotect` removes this)\n"
    "import site; site.ENABLE_USER_SITE = False\n"
)


@frozen
class Change:
    path: str
    #: "created", "replaced", "edited", "kept", "removed", "restored", "cleaned"
    action: str


def marker_message(template: str, env: Environment, terminal_pip: str, contact: str) -> str:
    """The marker's message: ``{pip}`` and ``{prefix}`` filled in, the contact line added."""
    message = template.replace("{pip}", terminal_pip).replace("{prefix}", env.prefix)
    return f"{message.rstrip()}\n{contact}" if contact else message


def terminal_pip(env: Environment, shim: bool, tool_python: str) -> str:
    """The pip command that works for this env in a terminal, as a full path."""
    if shim:
        return os.path.join(env.scripts, "pip")
    tool = os.path.join(os.path.dirname(tool_python), "safe-pip")
    return f"{tool if os.path.isfile(tool) else 'safe-pip'} --python {env.prefix}"


def marker_text(message: str) -> str:
    lines = message.strip().splitlines() or [""]
    body = "\n".join(["Error=" + lines[0], *("  " + line for line in lines[1:])])
    return "[externally-managed]\n" + body + "\n"


def shim_text(
    env: Environment,
    tool_python: str,
    paths: list[str] | None = None,
    *,
    real_uv: str = "",
) -> str:
    """A /bin/sh launcher: safe-pip's interpreter with -I -S (no site: faster start)
    and safe-pip's own import paths, bound to this env.  With ``real_uv`` (the env's
    uv, kept by protect) it is the ``uv`` shim: ``uv pip install|uninstall|sync``
    goes through safe-pip, every other uv command runs that uv."""
    entry = "uv_entrypoint" if real_uv else "entrypoint"
    code = launcher_code(tool_import_paths() if paths is None else paths, entry)
    tool = "uv pip" if real_uv else "pip"
    real = ""
    if real_uv:
        from safe_pip.backends.uv import REAL_UV_VAR

        real = f"{REAL_UV_VAR}={shlex.quote(real_uv)}\nexport {REAL_UV_VAR}\n"
    return (
        "#!/bin/sh\n"
        f"{SHIM_TAG}: {tool} for this env goes through safe-pip, which applies the hub's "
        "policy.\n"
        "# Written by `safe-pip protect --shim`; `safe-pip unprotect` restores the original.\n"
        f"{BOUND_PYTHON_VAR}={shlex.quote(env.python)}\n"
        f"export {BOUND_PYTHON_VAR}\n"
        f"{real}"
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
        data = json.loads(read_bytes(path, limit=MiB))
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
            current = read_text(existing, limit=MiB, errors="replace")
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


def _read_bytes(path: str) -> bytes | None:
    try:
        return read_bytes(path, limit=MiB)
    except FileNotFoundError:
        return None


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _edit_file(
    env: Environment,
    entries: dict[str, dict[str, str]],
    path: str,
    edit: Callable[[str], str],
) -> Change:
    """Add protect's block to a file the admin may also write (pip.conf, IPython config).

    The file as it was is kept, so that ``unprotect`` restores it byte for byte
    while it still holds what protect wrote; otherwise only the block goes.
    """
    key = os.path.relpath(path, env.prefix)
    current = _read_bytes(path)
    text = "" if current is None else current.decode("utf-8", "surrogateescape")
    if has_block(text):
        return Change(path, "kept")
    entry = {"action": "edited", "backup": ""}
    mode = 0o644
    if current is not None:
        backup = _state_dir(env) / "backup" / key
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup)
        entry["backup"] = str(backup.relative_to(_state_dir(env)))
        mode = os.stat(path).st_mode & 0o7777
    else:
        _make_dirs(env, entries, os.path.dirname(path))
    new = edit(text)
    entry["written"] = _digest(new.encode("utf-8", "surrogateescape"))
    entries[key] = entry
    write_atomic(path, new, mode=mode)
    return Change(path, "edited" if current is not None else "created")


def _make_dirs(env: Environment, entries: dict[str, dict[str, str]], directory: str) -> None:
    """Create ``directory`` and its missing parents, each recorded for unprotect."""
    missing = []
    probe = directory
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    for path in reversed(missing):
        os.mkdir(path, 0o755)
        os.chmod(path, 0o755)
        entries.setdefault(os.path.relpath(path, env.prefix), {"action": "created-dir"})


def _undo_edit(env: Environment, path: str, entry: dict[str, str]) -> Change | None:
    current = _read_bytes(path)
    if current is None:
        return None
    backup = _state_dir(env) / entry["backup"] if entry.get("backup") else None
    if _digest(current) == entry.get("written"):
        if backup is None:
            os.unlink(path)
            return Change(path, "removed")
        shutil.copy2(backup, path)
        return Change(path, "restored")
    # changed since protect: keep everyone else's lines, take only ours out
    left = without_blocks(current.decode("utf-8", "surrogateescape"))
    if backup is None and not left.strip():
        os.unlink(path)
        return Change(path, "removed")
    write_atomic(path, left)
    return Change(path, "cleaned")


def _config_files(env: Environment, tool: str) -> list[tuple[str, Callable[[str], str]]]:
    """(path, edit) for pip.conf and IPython's config files of the env."""
    import safe_pip
    from safe_pip.launcher import tool_command

    block = ipython_block(tool_command(tool), os.path.dirname(os.path.abspath(safe_pip.__file__)))
    files: list[tuple[str, Callable[[str], str]]] = [
        (os.path.join(env.prefix, PIP_CONF), with_pip_conf_block)
    ]
    for name in IPYTHON_FILES:
        files.append(
            (os.path.join(env.prefix, IPYTHON_DIR, name), lambda t: with_ipython_block(t, block))
        )
    return files


def protect(
    env: Environment,
    message: str,
    *,
    shim: bool,
    tool_python: str = "",
    contact: str = "",
) -> list[Change]:
    """Write the marker, pip.conf's ``user = false``, the IPython config (and the
    shims); idempotent; records what it replaced or added to."""
    if not os.access(env.stdlib, os.W_OK):
        raise TargetError(
            f"cannot write the marker into {env.stdlib}: not writable by you",
            hint="run `safe-pip protect` as the env's owner (the admin)",
        )
    entries = _load_manifest(env)
    _state_dir(env).mkdir(parents=True, exist_ok=True)
    tool = tool_python or sys.executable
    text = marker_text(marker_message(message, env, terminal_pip(env, shim, tool), contact))
    changes = [_install_file(env, entries, os.path.join(env.stdlib, MARKER_NAME), text, 0o644)]
    changes.extend(_edit_file(env, entries, path, edit) for path, edit in _config_files(env, tool))
    if env.purelib and os.path.isdir(env.purelib):
        pth = os.path.join(env.purelib, NO_USER_SITE_PTH)
        changes.append(_install_file(env, entries, pth, NO_USER_SITE_TEXT, 0o644))
    if shim:
        text = shim_text(env, tool)
        for name in shim_names(env):
            changes.append(
                _install_file(env, entries, os.path.join(env.scripts, name), text, 0o755)
            )
        uv = os.path.join(env.scripts, "uv")
        if os.path.relpath(uv, env.prefix) in entries or (os.path.isfile(uv) and not is_shim(uv)):
            changes.append(_install_uv_shim(env, entries, uv, tool))
    changes.extend(_users_log_dir(env, entries))
    _save_manifest(env, entries)
    return changes


def _users_log_dir(env: Environment, entries: dict[str, dict[str, str]]) -> list[Change]:
    """The env's drop box for users' audit records (docs/deploy.md), when protect made it."""
    from safe_pip.audit.locations import USERS_DIR, prepare_users_dir

    _make_dirs(env, entries, os.path.dirname(os.path.join(env.prefix, USERS_DIR)))
    made = prepare_users_dir(env.prefix)
    if made is None:
        return []
    entries.setdefault(os.path.relpath(made, env.prefix), {"action": "created-dir"})
    return [Change(made, "created")]


def _undo_file(env: Environment, state: Path, path: str, entry: dict[str, str]) -> Change | None:
    """Take back one file protect created, replaced or edited."""
    if entry.get("action") == "edited":
        return _undo_edit(env, path, entry)
    if os.path.lexists(path):
        os.unlink(path)
    if entry.get("action") != "replaced":
        return Change(path, "removed")
    backup = state / entry["backup"]
    if backup.is_symlink():
        os.symlink(os.readlink(backup), path)
    else:
        shutil.copy2(backup, path)
    return Change(path, "restored")


def _install_uv_shim(
    env: Environment, entries: dict[str, dict[str, str]], path: str, tool: str
) -> Change:
    """``bin/uv``: the env's uv is kept (as protect keeps whatever it replaces) and the
    shim runs it for everything but ``uv pip install|uninstall|sync``."""
    key = os.path.relpath(path, env.prefix)
    backup = _state_dir(env) / "backup" / key
    if key not in entries:
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, backup)
        entries[key] = {"action": "replaced", "backup": str(backup.relative_to(_state_dir(env)))}
    text = shim_text(env, tool, real_uv=str(backup))
    return _install_file(env, entries, path, text, 0o755)


def shimmed_original(env: Environment, name: str) -> str:
    """The original ``bin/<name>`` that protect kept behind a shim ('' if none)."""
    key = os.path.relpath(os.path.join(env.scripts, name), env.prefix)
    entry = _load_manifest(env).get(key, {})
    backup = entry.get("backup")
    return str(_state_dir(env) / backup) if backup else ""


def unprotect(env: Environment) -> list[Change]:
    """Undo exactly what protect did: remove what it created, restore what it replaced."""
    entries = _load_manifest(env)
    changes: list[Change] = []
    state = _state_dir(env)
    for key, entry in sorted(entries.items()):
        if entry.get("action") == "created-dir":
            continue  # below, once the files in it are gone
        undone = _undo_file(env, state, os.path.join(env.prefix, key), entry)
        if undone is not None:
            changes.append(undone)
    for key, entry in sorted(entries.items(), reverse=True):
        if entry.get("action") == "created-dir":
            with contextlib.suppress(OSError):  # only when empty: an admin's file stays
                os.rmdir(os.path.join(env.prefix, key))
                changes.append(Change(os.path.join(env.prefix, key), "removed"))
    shutil.rmtree(state, ignore_errors=True)
    for parent in (state.parent, state.parent.parent):
        try:
            parent.rmdir()  # only when empty: etc/safe-pip, etc
        except OSError:
            break
    return changes
