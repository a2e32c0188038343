"""One pip run, checked between resolution and installation.

For an allowed install, safe-pip runs the real pip of the target interpreter
with a small bootstrap that wraps pip's ``install_given_reqs``: once pip has
resolved (and written its ``--report``), it asks safe-pip over a pipe and
installs only on "go".  What pip installs is therefore exactly what was checked:
there is no second resolution.  Without the hook point (a pip whose internals
moved), the bootstrap says so before doing anything and safe-pip fails closed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safe_pip.changes import read_report
from safe_pip.errors import TargetError
from safe_pip.runner import PipRun, pip_environ, wait_for

FDS_VAR = "SAFE_PIP_PREFLIGHT_FDS"

BOOTSTRAP = r"""
import os, sys

def _safe_pip_bootstrap():
    answer_fd, ask_fd = (int(x) for x in os.environ.pop("SAFE_PIP_PREFLIGHT_FDS").split(","))
    try:
        from pip._internal.commands import install as install_module
        original = install_module.install_given_reqs
    except (ImportError, AttributeError):
        os.write(ask_fd, b"nohook\n")
        return 2

    def checked_install(*args, **kwargs):
        os.write(ask_fd, b"check\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = os.read(answer_fd, 64)
            if not chunk:
                break
            reply += chunk
        if reply.strip() != b"go":
            from pip._internal.exceptions import InstallationError
            raise InstallationError("safe-pip refused this installation; nothing was installed")
        return original(*args, **kwargs)

    install_module.install_given_reqs = checked_install
    from pip._internal.cli.main import main
    sys.argv[0] = "pip"
    return main(sys.argv[1:])

sys.exit(_safe_pip_bootstrap())
"""


@dataclass(frozen=True)
class CheckedRun:
    run: PipRun
    #: pip's report (None if pip stopped before resolving)
    report: dict[str, Any] | None
    #: the verdict the check gave, None if pip never asked
    verdict: object
    hook_missing: bool = False


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.strip()


def run_checked(
    python: str,
    pip_args: Sequence[str],
    report_path: str,
    environ: Mapping[str, str],
    check: Callable[[dict[str, Any] | None], tuple[bool, object]],
) -> CheckedRun:
    """Run ``pip install`` with the bootstrap; ``check(report)`` returns (go, verdict)."""
    ask_read, ask_write = os.pipe()
    answer_read, answer_write = os.pipe()
    env = pip_environ(environ)
    env[FDS_VAR] = f"{answer_read},{ask_write}"
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            [python, "-c", BOOTSTRAP, *pip_args],
            env=env,
            pass_fds=(answer_read, ask_write),
        )
    except OSError as error:
        for fd in (ask_read, ask_write, answer_read, answer_write):
            os.close(fd)
        raise TargetError(f"cannot run {python}: {error.strerror}") from error
    os.close(ask_write)
    os.close(answer_read)
    report = None
    verdict: object = None
    hook_missing = False
    interrupted = False
    try:
        request = _read_line(ask_read)
        if request == b"check":
            report = read_report(report_path)
            go, verdict = check(report)
            with contextlib.suppress(BrokenPipeError):
                os.write(answer_write, b"go\n" if go else b"stop\n")
        elif request == b"nohook":
            hook_missing = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        os.close(ask_read)
        os.close(answer_write)
    code, interrupted = wait_for(child, interrupted)
    if report is None:
        report = read_report(report_path)
    return CheckedRun(
        run=PipRun(code, time.monotonic() - started, interrupted),
        report=report,
        verdict=verdict,
        hook_missing=hook_missing,
    )
