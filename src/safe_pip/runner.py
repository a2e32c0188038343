"""Running the real pip: ``<target python> -m pip ...`` as a subprocess.

Guarded commands run pip as a child so that safe-pip can record the outcome
afterwards (pass-through commands ``exec`` pip instead: see passthrough.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from safe_pip.errors import TargetError
from safe_pip.passthrough import pip_command, pip_environ

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess


class Running(Protocol):
    """A child being waited for: ``subprocess.Popen`` or ``child.Child``."""

    @property
    def returncode(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, signal: int) -> None: ...


R = TypeVar("R", bound=Running)


#: The user site is off for the pip that safe-pip runs: ``~/.local`` can then neither
#: satisfy an install into the env ("Requirement already satisfied") nor catch one
#: (pip's fallback to a user install).  pip and the build backends it starts honour it.
class PipRun(NamedTuple):
    exit_code: int
    duration_s: float
    interrupted: bool


def run_pip(python: str, pip_args: Sequence[str], environ: Mapping[str, str]) -> PipRun:
    """Run pip as a child with the terminal's streams; Ctrl-C reaches pip, we wait for it."""
    import time

    started = time.monotonic()
    try:
        child = start_child(pip_command(python, pip_args), env=pip_environ(environ))
    except OSError as error:
        raise TargetError(f"cannot run {python}: {error.strerror}") from error
    code, interrupted = wait_for(child)
    return PipRun(exit_code=code, duration_s=time.monotonic() - started, interrupted=interrupted)


#: signals handled like Ctrl-C while pip runs: passed on to pip, waited for, recorded
FORWARDED_SIGNALS = ("SIGTERM", "SIGHUP")
_children: list[Running] = []
_caught: list[int] = []


def _forward(signum: int, _frame: object) -> None:
    import contextlib

    _caught.append(signum)
    for child in _children:
        if child.returncode is None:
            with contextlib.suppress(OSError):
                child.send_signal(signum)


@contextlib.contextmanager
def forwarded_signals() -> Iterator[None]:
    """Within: SIGTERM and SIGHUP (a pod evicted, a terminal closed) reach pip and safe-pip
    keeps waiting for it, so the outcome is recorded (main thread only); the handlers
    before are back after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in FORWARDED_SIGNALS if hasattr(signal, name)]
    _caught.clear()
    _children.clear()
    previous = {number: signal.signal(number, _forward) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _caught.clear()
        _children.clear()


def start_child(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen``, and the child is the one forwarded signals reach."""
    import subprocess

    child: subprocess.Popen[bytes] = subprocess.Popen(command, **options)
    return started(child)


def started(child: R) -> R:
    """``child`` (just started) is the one forwarded signals reach."""
    _children.append(child)
    if _caught:  # asked to stop while safe-pip was getting ready: the child stops at once
        with contextlib.suppress(OSError):
            child.send_signal(_caught[0])
    return child


def wait_for(child: Running, interrupted: bool = False) -> tuple[int, bool]:
    """Wait for pip; Ctrl-C reached it too (same foreground group), so keep waiting.

    Returns (exit code, interrupted); death by a signal N is reported as 128 + N.
    Once pip is done, a further Ctrl-C is ignored: what is left is writing the
    audit record of what pip did, which must not be lost.
    """
    import contextlib
    import signal
    import threading

    while True:
        try:
            code = child.wait()
            break
        except KeyboardInterrupt:
            interrupted = True
            with contextlib.suppress(OSError):
                child.send_signal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if code < 0:
        interrupted = interrupted or code == -signal.SIGINT
        code = 128 - code
    return code, interrupted or bool(_caught)
