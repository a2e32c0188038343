"""Read-only pip commands go straight to pip: find the interpreter, become pip.

A command line that names neither ``install`` nor ``uninstall`` (pip matches
command names exactly) and no ``--python`` cannot change an environment, so it
is passed on without parsing, without the policy and without importing more
than this module needs: safe-pip sits in front of every ``pip list``.
"""

from __future__ import annotations

import os
import sys

from safe_pip.errors import TargetError
from safe_pip.target import BOUND_PYTHON_VAR, PIP_SUBPROCESS_MARKER, resolve_target

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MUTATING_WORDS = ("install", "uninstall")


#: prefixes of ``--src``/``--source``/``--source-dir``: where pip checks out ``-e`` VCS
#: requirements, also for ``pip wheel`` and ``pip download`` (judged as a destination)
SRC_PREFIXES = ("--sr", "--so")


#: pip and uv run with the user site-packages disabled (``~/.local`` neither satisfies
#: nor receives an install)
NO_USER_SITE_VAR = "PYTHONNOUSERSITE"


def without_user_site(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a guarded pip or uv run: the user site-packages disabled."""
    return {**environ, NO_USER_SITE_VAR: "1"}


def needs_parsing(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    """False when the command line certainly is a read-only pip command that writes
    into no env (no --src: ``PIP_SRC`` in ``environ`` counts too)."""
    if environ is not None and environ.get("PIP_SRC"):
        return True
    return any(arg in MUTATING_WORDS or arg.startswith(("--py", *SRC_PREFIXES)) for arg in argv)


def leading_python(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """``--python X rest`` / ``--python=X rest`` of a read-only command: (X, rest).

    The common spelling is split off without the full parser; anything else
    (abbreviations, --python later on) returns None and is parsed.
    """
    if len(argv) >= 2 and argv[0] == "--python":
        python, rest = argv[1], list(argv[2:])
    elif argv and argv[0].startswith("--python="):
        python, rest = argv[0][len("--python=") :], list(argv[1:])
    else:
        return None
    if not python or python.startswith("-") or needs_parsing(rest):
        return None
    return python, rest


def become_pip(
    argv: Sequence[str],
    environ: Mapping[str, str],
    python: str | None = None,
    source: str = "",
) -> int:
    """Run the target's pip in this process's place (returns only on failure)."""
    target = resolve_target(python, source, environ)
    # with no interpreter chosen here, PIP_PYTHON and `python =` stay pip's to honour
    exec_pip(target.python, argv, environ, chosen=python is not None)
    return 0  # pragma: no cover - exec does not return


#: Variables that change which interpreter runs or where it imports from.  safe-pip
#: probes the target with ``-I`` (which ignores them), so pip must not see them
#: either: pip then acts on the interpreter that was probed, and its build
#: subprocesses import what that interpreter imports.
INTERPRETER_VARIABLES = (
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONUSERBASE",
    "PYTHONPLATLIBDIR",
    "PYTHONEXECUTABLE",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "PYTHONSAFEPATH",
    # one more distutils config file for setuptools builds (buildconfig.py)
    "DIST_EXTRA_CONFIG",
)


def interpreter_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables that change the interpreter (see above)."""
    return {k: v for k, v in environ.items() if k not in INTERPRETER_VARIABLES}


def pip_environ(environ: Mapping[str, str], *, chosen: bool = True) -> dict[str, str]:
    """The environment pip runs with: the user's own, less safe-pip's binding and
    the variables that would make pip's interpreter differ from the one probed.

    ``chosen``: safe-pip has already chosen the interpreter from --python,
    PIP_PYTHON or a config file's ``python =``, so pip must not re-run itself.
    """
    env = interpreter_environ(environ)
    env.pop(BOUND_PYTHON_VAR, None)
    if chosen:
        env[PIP_SUBPROCESS_MARKER] = "1"
    return env


#: ``python -m pip``, except that the working directory is never on ``sys.path``:
#: with ``-c`` it is ``sys.path[0]`` (``''``), dropped before anything is imported
#: (``-P`` would do it from Python 3.11 only).  pip's own ``__main__`` then runs.
RUN_PIP = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "import runpy\n"
    "runpy.run_module('pip', run_name='__main__', alter_sys=True)\n"
)


def pip_command(python: str, pip_args: Sequence[str]) -> list[str]:
    return [python, "-c", RUN_PIP, *pip_args]


def exec_pip(
    python: str, pip_args: Sequence[str], environ: Mapping[str, str], *, chosen: bool = True
) -> None:
    """Become pip (never returns)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(python, pip_command(python, pip_args), pip_environ(environ, chosen=chosen))
    except OSError as error:
        raise TargetError(f"cannot run {python}: {error.strerror}") from error
