"""Running pip as a child, and the checked run's pipe protocol, with fake children
(no process is started): exit codes, signals, Ctrl-C, the go/stop answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from safe_pip import passthrough, preflight, runner
from safe_pip.errors import TargetError
from safe_pip.passthrough import pip_command
from safe_pip.target import BOUND_PYTHON_VAR, PIP_SUBPROCESS_MARKER


@pytest.fixture(autouse=True)
def keep_sigint() -> Iterator[None]:
    """wait_for ignores Ctrl-C once pip is done: give pytest its handler back."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


class Child:
    """A finished child: ``wait`` returns ``codes`` in turn (an exception is raised)."""

    def __init__(self, *codes: int | BaseException) -> None:
        self.codes = list(codes)
        self.signals: list[int] = []

    def wait(self) -> int:
        code = self.codes.pop(0)
        if isinstance(code, BaseException):
            raise code
        return code

    def send_signal(self, number: int) -> None:
        self.signals.append(number)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0, (0, False)),
        (1, (1, False)),
        (-signal.SIGKILL, (137, False)),
        (-signal.SIGINT, (130, True)),
    ],
)
def test_exit_codes_and_deaths_by_signal(code: int, expected: tuple[int, bool]) -> None:
    assert runner.wait_for(Child(code)) == expected  # type: ignore[arg-type]


def test_ctrl_c_reaches_pip_and_the_guard_waits_for_it() -> None:
    child = Child(KeyboardInterrupt(), KeyboardInterrupt(), 1)
    assert runner.wait_for(child) == (1, True)  # type: ignore[arg-type]
    assert child.signals == [signal.SIGINT, signal.SIGINT]
    # once pip is done, a further Ctrl-C cannot stop the record from being written
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_the_user_site_is_off_for_the_pip_safe_pip_runs() -> None:
    environ = {"PATH": "/bin", "PYTHONNOUSERSITE": ""}
    assert passthrough.without_user_site(environ) == {"PATH": "/bin", "PYTHONNOUSERSITE": "1"}
    assert environ["PYTHONNOUSERSITE"] == ""  # the caller's mapping is left alone


def test_run_pip_runs_the_targets_pip_unbound(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []

    def popen(argv: list[str], env: dict[str, str]) -> Child:
        started.append((argv, env))
        return Child(3)

    monkeypatch.setattr(subprocess, "Popen", popen)
    environ = {"PATH": "/bin", BOUND_PYTHON_VAR: "/e/bin/python"}
    run = runner.run_pip("/e/bin/python", ["install", "x"], environ)
    assert (run.exit_code, run.interrupted) == (3, False) and run.duration_s >= 0
    [(argv, env)] = started
    assert argv == pip_command("/e/bin/python", ["install", "x"])
    assert BOUND_PYTHON_VAR not in env and env[PIP_SUBPROCESS_MARKER] == "1"


def test_run_pip_turns_a_missing_interpreter_into_a_target_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def popen(*_args: object, **_kwargs: object) -> Child:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(TargetError, match="cannot run /nope/python"):
        runner.run_pip("/nope/python", ["install", "x"], {})


# --- the checked run: a fake child that speaks the bootstrap's side of the pipe ----------


class BootstrapChild:
    """Does what the bootstrap does once pip has resolved: writes the report, asks on
    the pipe, and installs (exit 0) on "go" or fails (exit 1) on "stop"."""

    def __init__(
        self,
        said: bytes,
        report: Mapping[str, Any] | None,
        argv: Sequence[str],
        env: Mapping[str, str],
        pass_fds: tuple[int, int],
    ) -> None:
        self.argv = list(argv)
        answer_read, ask_write = (int(fd) for fd in env[preflight.FDS_VAR].split(","))
        assert (answer_read, ask_write) == pass_fds
        self.answer = os.dup(answer_read)  # the child's copy outlives the parent's close
        if report is not None:
            Path(env[preflight.REPORT_VAR]).write_text(json.dumps(report))
        os.write(ask_write, said + b"\n")
        self.reply = b""

    def wait(self) -> int:
        while not self.reply.endswith(b"\n"):
            chunk = os.read(self.answer, 64)
            if not chunk:
                break
            self.reply += chunk
        os.close(self.answer)
        return 0 if self.reply.strip() == b"go" else 1

    def send_signal(self, number: int) -> None:  # pragma: no cover - not interrupted here
        raise AssertionError(number)


def checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, said: bytes, go: bool
) -> tuple[preflight.CheckedRun, list[BootstrapChild], list[object]]:
    report = {"version": "1", "install": [{"metadata": {"name": "demo-a", "version": "1.0"}}]}
    children: list[BootstrapChild] = []
    seen: list[object] = []

    def popen(argv: list[str], env: dict[str, str], pass_fds: tuple[int, int]) -> BootstrapChild:
        children.append(BootstrapChild(said, report, argv, env, pass_fds))
        return children[-1]

    def check(got: dict[str, Any] | None) -> tuple[bool, object]:
        seen.append(got)
        return go, "the verdict"

    monkeypatch.setattr(subprocess, "Popen", popen)
    run = preflight.run_checked(
        "/e/bin/python", ["install", "demo-a"], str(tmp_path / "report.json"), {}, check
    )
    return run, children, seen


def test_go_lets_pip_install_what_was_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run, [child], seen = checked(monkeypatch, tmp_path, preflight.ASK, go=True)
    assert child.argv == preflight.checked_command("/e/bin/python", ["install", "demo-a"])
    assert child.reply == b"go\n" and run.run.exit_code == 0
    assert run.asked and not run.hook_missing and run.verdict == "the verdict"
    assert seen == [run.report] and run.report is not None
    assert run.report["install"][0]["metadata"]["name"] == "demo-a"


def test_stop_stops_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run, [child], _ = checked(monkeypatch, tmp_path, preflight.ASK, go=False)
    assert child.reply == b"stop\n" and run.run.exit_code == 1 and run.asked


def test_a_pip_without_the_hook_point_is_said_so_and_nothing_is_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run, _, seen = checked(monkeypatch, tmp_path, preflight.NO_HOOK, go=True)
    assert run.hook_missing and not run.asked and seen == [] and run.verdict is None


def test_the_bootstrap_is_valid_python_that_never_imports_from_the_working_directory() -> None:
    compile(preflight.BOOTSTRAP, "<bootstrap>", "exec")
    assert 'sys.path[0] == ""' in preflight.BOOTSTRAP
    assert preflight.checked_command("/p", ["install", "x"]) == [
        "/p",
        "-c",
        preflight.BOOTSTRAP,
        "install",
        "x",
    ]


class Running(Child):
    """A child still running (``returncode`` None) until it has been signalled."""

    returncode: int | None = None


def test_sigterm_and_sighup_reach_pip_and_are_recorded_as_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = Running(-signal.SIGTERM)
    monkeypatch.setattr("subprocess.Popen", lambda *_a, **_k: child)
    before = signal.getsignal(signal.SIGTERM)
    with runner.forwarded_signals():
        assert runner.start_child(["pip"]) is child  # type: ignore[comparison-overlap]
        os.kill(os.getpid(), signal.SIGTERM)  # a pod evicted: safe-pip gets it and lives
        os.kill(os.getpid(), signal.SIGHUP)
        assert child.signals == [signal.SIGTERM, signal.SIGHUP]
        assert runner.wait_for(child) == (143, True)
    assert signal.getsignal(signal.SIGTERM) == before  # handed back afterwards


def test_a_signal_before_pip_starts_stops_it_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    child = Running(-signal.SIGTERM)
    monkeypatch.setattr("subprocess.Popen", lambda *_a, **_k: child)
    with runner.forwarded_signals():
        os.kill(os.getpid(), signal.SIGTERM)  # while the intent is being written
        runner.start_child(["pip"])
        assert child.signals == [signal.SIGTERM]
        assert runner.wait_for(child) == (143, True)
