"""The uv door: which ``uv`` command lines safe-pip takes up, and running uv for the rest.

``uv pip install|uninstall|sync`` changes an env: it is decided and recorded as
pip's would be (``guard.run_uv_pip_command``).  Every other uv command (``uv
pip list``, ``uv run``, ``uv venv``, ``uv tool``, ...) runs the env's own uv
unchanged, the way read-only pip commands run pip, except a project command
(``uv sync``, ``add``, ``remove``, ``run``) whose project environment
(``UV_PROJECT_ENVIRONMENT``, or ``VIRTUAL_ENV`` with ``--active``) is a protected
env: uv would make that env match the project's lock, removing what conda
installed, with no record (``project_env_refusal``).
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
#: the PEP 668 marker file
MARKER = "EXTERNALLY-MANAGED"
#: uv's project commands that make the project environment match the lock file
PROJECT_SYNCING = ("sync", "add", "remove", "run")


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


def _is_protected_env(path: str, bound_prefix: str) -> bool:
    """The env the shim guards, a conda env, a PEP 668-marked Python prefix, or an env
    whose pip is a safe-pip shim."""
    real = os.path.realpath(path)
    if bound_prefix and real == os.path.realpath(bound_prefix):
        return True
    if os.path.isdir(os.path.join(real, "conda-meta")):
        return True
    from safe_pip.launcher import is_shim

    if is_shim(os.path.join(real, "bin", "pip")):
        return True  # protected by safe-pip (`protect --shim`), a venv included
    lib = os.path.join(real, "lib")
    try:
        entries = os.listdir(lib)
    except OSError:
        return False
    return any(
        entry.startswith("python") and os.path.isfile(os.path.join(lib, entry, MARKER))
        for entry in entries
    )


def _own_options(argv: Sequence[str]) -> tuple[str, list[str], dict[str, str]]:
    """The command of a uv command line, and uv's own flags and valued options: those
    before the command and after it, up to ``--`` or (for ``uv run``) the command it runs."""
    flags: list[str] = []
    values: dict[str, str] = {}
    seen_command = ""
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            break
        if not arg.startswith("-"):
            if seen_command == "run":
                break  # what `uv run` runs, and that command's own options
            seen_command = seen_command or arg
            index += 1
            continue
        name, equals, value = arg.partition("=")
        if name in _GLOBAL_VALUED:
            if not equals and index + 1 < len(argv):
                value = argv[index + 1]
                index += 1
            values[name] = value
        else:
            flags.append(name)
        index += 1
    return seen_command, flags, values


def _project_roots(values: Mapping[str, str]) -> list[str]:
    """Where uv may read a relative ``UV_PROJECT_ENVIRONMENT`` from: the working
    directory, ``--directory``, ``--project``, and every directory above the working
    directory that holds a ``pyproject.toml`` (the project or workspace root)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    roots = [cwd]
    for option in ("--directory", "--project"):
        if values.get(option):
            roots.append(os.path.join(cwd, os.path.expanduser(values[option])))
    here = cwd
    while True:
        if os.path.isfile(os.path.join(here, "pyproject.toml")):
            roots.append(here)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return roots


def project_env_refusal(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(why, what instead) when ``uv <project command>`` would sync a protected env."""
    from safe_pip.backends.uv_cli import _env_bool
    from safe_pip.target import BOUND_PYTHON_VAR

    command, flags, values = _own_options(argv)
    if command not in PROJECT_SYNCING:
        return None
    if command == "run" and ("--no-sync" in flags or _env_bool(environ.get("UV_NO_SYNC", ""))):
        return None
    bound = environ.get(BOUND_PYTHON_VAR, "")
    bound_prefix = os.path.dirname(os.path.dirname(bound)) if bound else ""
    candidates = []
    if environ.get("UV_PROJECT_ENVIRONMENT"):
        candidates.append(("UV_PROJECT_ENVIRONMENT", environ["UV_PROJECT_ENVIRONMENT"]))
    if "--active" in flags and environ.get("VIRTUAL_ENV"):
        candidates.append(("VIRTUAL_ENV with --active", environ["VIRTUAL_ENV"]))
    roots = _project_roots(values)
    for source, value in candidates:
        paths = [os.path.join(root, os.path.expanduser(value)) for root in roots]
        if any(_is_protected_env(path, bound_prefix) for path in paths):
            return (
                f"`uv {command}` would make {value} ({source}) match the project's lock file: "
                "it removes and replaces what the env holds, conda's packages included, "
                "outside safe-pip and with no record",
                "let uv keep the project in its own environment (unset UV_PROJECT_ENVIRONMENT, "
                "or leave out --active): `uv sync` then makes the project's .venv; to add a "
                "package to this env, `uv pip install <package>` goes through safe-pip",
            )
    return None


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
