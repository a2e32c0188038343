"""``%pip`` (and ``%uv``) in IPython and Jupyter, through safe-pip.

IPython's own ``%pip`` runs ``<kernel python> -m pip``, which never reaches an
env's pip shim: in a protected env it meets the PEP 668 marker.  This
extension replaces ``%pip`` with a magic that runs safe-pip bound to the
kernel's own interpreter (``sys.executable``), through the shell as IPython's
does (live output, ``_exit_code``): the same decisions, messages, exit status
and audit records as the env's ``bin/pip``.  Read-only pip commands (``%pip
list``) take IPython's own route, as safe-pip itself would pass them on.

Load it with ``%load_ext safe_pip.ipython``, or in a config file with
``c.InteractiveShellApp.extensions = ["safe_pip.ipython"]``;
``safe-pip protect`` writes that into the env's IPython config, with
``c.SafePip.command``, the command line that starts the hub's safe-pip.

``%uv pip install|uninstall|sync`` goes through safe-pip's uv door (``safe-pip
uv ...``, the code of an env's ``uv`` shim): the same decisions, carried out by
uv, and recorded; uv's other commands run as IPython's own ``%uv`` would run
them.

Imported inside the kernel: nothing here imports more than the standard
library and safe-pip's lean start-up modules.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any

from safe_pip.target import BOUND_PYTHON_VAR, DOOR_VAR, MAGIC

RESTART_NOTE = "Note: you may need to restart the kernel to use updated packages."
#: sets the binding for safe-pip in any shell (IPython runs ``$SHELL``, not always sh)
ENV_COMMAND = "/usr/bin/env" if os.path.exists("/usr/bin/env") else "env"
#: ``uv pip`` commands that change an env
UV_MUTATING = ("install", "uninstall", "sync")


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:  # an unbalanced quote: pip (or safe-pip) will say so
        return line.split()


def goes_through_safe_pip(words: list[str]) -> bool:
    """False for the pip command lines safe-pip would pass on to pip untouched."""
    from safe_pip.cli import split_own_command
    from safe_pip.passthrough import needs_parsing

    return split_own_command(words) is not None or needs_parsing(words)


def pip_shell_command(line: str, command: list[str], python: str) -> str:
    """The shell command ``%pip <line>`` runs in the kernel whose interpreter is ``python``."""
    if not goes_through_safe_pip(_words(line)):
        return " ".join([shlex.quote(python), "-m", "pip", line])  # IPython's own
    binding = [ENV_COMMAND, f"{BOUND_PYTHON_VAR}={python}", f"{DOOR_VAR}={MAGIC}"]
    return " ".join([*(shlex.quote(arg) for arg in [*binding, *command]), line])


def uv_shell_command(line: str, command: list[str], python: str) -> str:
    """The shell command ``%uv <line>`` runs in the kernel whose interpreter is ``python``:
    ``uv pip install|uninstall|sync`` through safe-pip's uv door, the rest as IPython's."""
    words = _words(line)
    if len(words) < 2 or words[0] != "pip" or words[1] not in UV_MUTATING:
        return " ".join([shlex.quote(python), "-m", "uv", line])  # IPython's own
    return pip_shell_command(f"uv {line}", command, python)


def _configured_command(shell: Any) -> list[str]:
    config = shell.config
    section = config.get("SafePip", {})
    command = section.get("command") if hasattr(section, "get") else None
    if command:
        return [str(arg) for arg in command]
    from safe_pip.launcher import tool_command

    return tool_command(sys.executable)


def load_ipython_extension(shell: Any) -> None:
    """Register ``%pip`` and ``%uv`` in ``shell`` (IPython's InteractiveShell)."""
    command = _configured_command(shell)
    python = sys.executable

    def pip(line: str) -> None:
        shell.system(pip_shell_command(line, command, python))
        changed = any(word in ("install", "uninstall") for word in _words(line))
        if changed and shell.user_ns.get("_exit_code") == 0:
            print(RESTART_NOTE)

    def uv(line: str) -> None:
        shell.system(uv_shell_command(line, command, python))
        words = _words(line)
        changed = words[:1] == ["pip"] and any(w in UV_MUTATING for w in words[1:2])
        if changed and shell.user_ns.get("_exit_code") == 0:
            print(RESTART_NOTE)

    pip.__doc__ = "Run pip for the kernel's env, through safe-pip (the hub's policy)."
    uv.__doc__ = "Run uv for the kernel's env; `%uv pip install` goes through safe-pip."
    shell.register_magic_function(pip, "line", "pip")
    shell.register_magic_function(uv, "line", "uv")
