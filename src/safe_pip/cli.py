"""The command line: safe-pip's own commands, and every pip command line.

``main(argv, environ)`` is pure of ``sys.argv``; ``entrypoint()`` is the thin
console-script wrapper.  Errors are turned into messages and exit codes here
and only here (``errors.exit_code_for``).
"""

from __future__ import annotations

import os
import sys

from safe_pip.errors import ExitCode, SafePipError, UsageError, exit_code_for

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

PROG = "safe-pip"
OWN_COMMANDS = ("status", "protect", "unprotect", "log", "export", "devenv", "policy", "request")


def _print_error(error: SafePipError) -> None:
    print(f"{PROG}: error: {error.message}", file=sys.stderr)
    if error.hint:
        print(f"{PROG}: tip: {error.hint}", file=sys.stderr)


def split_own_command(argv: Sequence[str]) -> tuple[str, list[str]] | None:
    """``status ...``, ``--python X status ...`` and ``--python=X status ...`` are ours."""
    args = list(argv)
    if args and args[0] in OWN_COMMANDS:
        return args[0], args[1:]
    if len(args) >= 3 and args[0] == "--python" and args[2] in OWN_COMMANDS:
        return args[2], ["--python", args[1], *args[3:]]
    if len(args) >= 2 and args[0].startswith("--python=") and args[1] in OWN_COMMANDS:
        return args[1], [args[0], *args[2:]]
    return None


def _about(argv: Sequence[str], environ: Mapping[str, str]) -> int | None:
    """``safe-pip``, ``--help``, ``--version`` under safe-pip's own name (not as an env's
    ``pip`` shim or ``%pip``, where they stay pip's: see ``door``); else None."""
    if len(argv) > 1:
        return None
    from safe_pip.door import SAFE_PIP, door

    if door(environ) != SAFE_PIP:
        return None
    from safe_pip.commands import about

    if not argv or argv[0] in about.HELP_WORDS:
        return about.show_help()
    if argv[0] in about.VERSION_WORDS:
        return about.show_version(environ)
    return None


def _require_working_directory() -> None:
    """Relative paths mean nothing once the working directory is gone: say so, plainly."""
    try:
        os.getcwd()
    except OSError as error:
        raise UsageError(
            f"the current directory cannot be used: {error.strerror or error}",
            hint="cd to a directory that exists, then run the command again",
        ) from None


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    env_vars: Mapping[str, str] = os.environ if environ is None else environ
    return _reporting_errors(lambda: _dispatch(argv, env_vars))


def uv_main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """What the ``uv`` shim runs (``argv`` after ``uv``): ``uv pip install|uninstall|sync``
    goes through safe-pip, every other uv command runs the env's own uv."""
    env_vars: Mapping[str, str] = os.environ if environ is None else environ
    return _reporting_errors(lambda: _uv_door(argv, env_vars))


def _uv_door(argv: Sequence[str], env_vars: Mapping[str, str]) -> int:
    from safe_pip.backends import uv_door

    pip_command = uv_door.guarded_part(argv)
    if pip_command is None:
        refusal = uv_door.project_env_refusal(argv, env_vars)
        if refusal is not None:
            from safe_pip import guard

            return guard.refuse_uv_command(argv, env_vars, *refusal)
        return uv_door.become_uv(argv, env_vars)
    _require_working_directory()
    from safe_pip import guard

    _QUICK_EXIT[0] = True
    return guard.run_uv_pip_command(pip_command, env_vars)


def _dispatch(argv: Sequence[str], env_vars: Mapping[str, str]) -> int:
    if argv and argv[0] == "uv":
        # `safe-pip uv ...` (pip has no command `uv`): the uv door, as the `uv` shim and %uv
        return _uv_door(argv[1:], env_vars)
    about = _about(argv, env_vars)
    if about is not None:
        return about
    own = split_own_command(argv)
    if own is None:
        from safe_pip import passthrough

        if not passthrough.needs_parsing(argv, env_vars):
            return passthrough.become_pip(argv, env_vars)
        leading = passthrough.leading_python(argv)
        if leading is not None:
            return passthrough.become_pip(leading[1], env_vars, leading[0], "--python")
    _require_working_directory()
    if own is not None:
        from safe_pip import commands

        return commands.run(own[0], own[1], env_vars)
    from safe_pip import guard

    _QUICK_EXIT[0] = True
    return guard.run_pip_command(argv, env_vars)


def _reporting_errors(action: Callable[[], int]) -> int:
    """Run ``action``; errors become a message and their exit code (here and only here)."""
    try:
        return action()
    except SafePipError as error:
        _print_error(error)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `safe-pip log | head`: the reader went away; not an error of ours
        return int(ExitCode.OK)
    except Exception as error:  # the unexpected: show the traceback, fail closed
        import traceback

        traceback.print_exc()
        print(
            f"{PROG}: internal error ({type(error).__name__}) in safe-pip itself. "
            "Please report this with the traceback above.",
            file=sys.stderr,
        )
        return exit_code_for(error)


#: set once a pip or uv command line has been taken up (decided, run, recorded): its
#: process may end without the interpreter's clean-up (``_exit``)
_QUICK_EXIT = [False]


def _exit(code: int) -> None:
    """End the process with ``code``.  After a guarded pip or uv command, everything is
    written (records with ``os.write``, the streams flushed here), so the process skips
    the interpreter's clean-up of some 300 modules, about 5 ms on every install."""
    if _QUICK_EXIT[0]:
        import contextlib  # loaded already by then

        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing reaches it
                stream.flush()
        os._exit(code)
    sys.exit(code)


def entrypoint() -> None:
    _exit(main(sys.argv[1:]))


def uv_entrypoint() -> None:
    _exit(uv_main(sys.argv[1:]))
