"""Running the real pip: ``<target python> -m pip ...`` as a subprocess.

Pass-through commands replace safe-pip's process with pip (streams, colours,
progress bars and the exit code are pip's own).  Guarded commands run pip as a
child so that safe-pip can record the outcome afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from safe_pip.environment import BOUND_PYTHON_VAR
from safe_pip.errors import TargetError
from safe_pip.pipcli import PIP_SUBPROCESS_MARKER


@dataclass(frozen=True)
class PipRun:
    exit_code: int
    duration_s: float
    interrupted: bool


def pip_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment pip runs with: the user's own, less safe-pip's binding."""
    env = dict(environ)
    env.pop(BOUND_PYTHON_VAR, None)
    # safe-pip has already chosen the interpreter: pip must not re-run itself under
    # PIP_PYTHON or a config file's `python =`
    env[PIP_SUBPROCESS_MARKER] = "1"
    return env


def pip_command(python: str, pip_args: Sequence[str]) -> list[str]:
    return [python, "-m", "pip", *pip_args]


def exec_pip(python: str, pip_args: Sequence[str], environ: Mapping[str, str]) -> None:
    """Become pip (never returns)."""
    argv = pip_command(python, pip_args)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(python, argv, pip_environ(environ))
    except OSError as error:
        raise TargetError(f"cannot run {python}: {error.strerror}") from error


def run_pip(python: str, pip_args: Sequence[str], environ: Mapping[str, str]) -> PipRun:
    """Run pip as a child with the terminal's streams; Ctrl-C reaches pip, we wait for it."""
    started = time.monotonic()
    try:
        child = subprocess.Popen(pip_command(python, pip_args), env=pip_environ(environ))
    except OSError as error:
        raise TargetError(f"cannot run {python}: {error.strerror}") from error
    code, interrupted = wait_for(child)
    return PipRun(exit_code=code, duration_s=time.monotonic() - started, interrupted=interrupted)


def wait_for(child: subprocess.Popen[bytes], interrupted: bool = False) -> tuple[int, bool]:
    """Wait for pip; Ctrl-C reached it too (same foreground group), so keep waiting.

    Returns (exit code, interrupted); death by a signal N is reported as 128 + N.
    """
    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
            with contextlib.suppress(OSError):
                child.send_signal(signal.SIGINT)
    if code < 0:
        interrupted = interrupted or code == -signal.SIGINT
        code = 128 - code
    return code, interrupted


def capture_pip(
    python: str, pip_args: Sequence[str], environ: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run pip quietly and capture its output (preflight, inspection)."""
    return subprocess.run(
        pip_command(python, pip_args),
        env=pip_environ(environ),
        capture_output=True,
        text=True,
        check=False,
    )
