"""The uv door: which ``uv`` command lines safe-pip takes up, and running uv for the rest.

``uv pip install|uninstall|sync`` changes an env: it is decided and recorded as
pip's would be (``guard.run_uv_pip_command``).  Every other uv command (``uv
pip list``, ``uv run``, ``uv venv``, ``uv tool``, ...) runs the env's own uv
unchanged, the way read-only pip commands run pip.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from safe_pip.errors import TargetError

#: uv's global options that take a value (so the value is not read as the command)
_GLOBAL_VALUED = frozenset(
    {
        "--cache-dir",
        "--directory",
        "--project",
        "--config-file",
        "--color",
        "--python-preference",
        "--allow-insecure-host",
        "--preview-features",
    }
)
GUARDED = ("install", "uninstall", "sync")


def guarded_part(argv: Sequence[str]) -> list[str] | None:
    """For ``uv [global options] pip <install|uninstall|sync> ...``: the arguments after
    ``pip`` (the global options moved after the command, where uv accepts them too);
    None for any other uv command."""
    words: list[int] = []
    index = 0
    while index < len(argv) and len(words) < 2:
        arg = argv[index]
        if arg == "--":
            return None
        if arg.startswith("-"):
            index += 2 if arg in _GLOBAL_VALUED else 1
            continue
        words.append(index)
        index += 1
    if len(words) < 2 or argv[words[0]] != "pip" or argv[words[1]] not in GUARDED:
        return None
    first, second = words
    before = [*argv[:first], *argv[first + 1 : second]]
    return [argv[second], *before, *argv[second + 1 :]]


def real_uv(environ: Mapping[str, str]) -> str:
    """The uv to run for commands safe-pip does not take up."""
    from safe_pip.backends.uv import REAL_UV_VAR, find_uv

    path = environ.get(REAL_UV_VAR, "")
    if path and os.access(path, os.X_OK):
        return path
    return find_uv(None)


def become_uv(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run uv in this process's place (returns only on failure)."""
    from safe_pip.backends.uv import REAL_UV_VAR
    from safe_pip.target import BOUND_PYTHON_VAR

    binary = real_uv(environ)
    env = {k: v for k, v in environ.items() if k not in (REAL_UV_VAR, BOUND_PYTHON_VAR)}
    bound = environ.get(BOUND_PYTHON_VAR)
    if bound and "pip" in argv[:1]:
        # `uv pip list` and the like, through the env's shim: about that env
        env.setdefault("UV_PYTHON", bound)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(binary, [binary, *argv], env)
    except OSError as error:
        raise TargetError(f"cannot run {binary}: {error.strerror}") from error
    return 0  # pragma: no cover - exec does not return
