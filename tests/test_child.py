"""``child.Child``: what the probe and uv's plan are started with (no ``subprocess``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from safe_pip.child import Child, ChildTimeout

# real children (a shell, this interpreter): the integration tier
pytestmark = pytest.mark.integration

SH = "/bin/sh"


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


def test_both_streams_are_read_whole_without_a_deadlock() -> None:
    """More than a pipe holds on each stream at once: read together, nothing lost."""
    code = (
        "import sys; sys.stderr.write('e' * 300000); sys.stdout.write('o' * 300000 + '\\u00e9'); "
        "sys.exit(3)"
    )
    before = open_fds()
    child = Child([sys.executable, "-c", code], os.environ, capture=True)
    out, err = child.communicate()
    assert (len(out), out[-1], err) == (300001, "\u00e9", "e" * 300000)
    assert child.returncode == 3 and child.poll() == 3 and child.wait() == 3
    assert open_fds() == before  # both read ends closed


def test_stdin_can_be_empty_and_the_environment_is_the_one_given() -> None:
    child = Child(
        [SH, "-c", 'cat; echo "[$ONLY]" "[$HOME]"; pwd'], {"ONLY": "x"}, capture=True, stdin=False
    )
    out, err = child.communicate(timeout=30)
    assert out.splitlines() == ["[x] []", os.getcwd()] and err == ""


def test_a_timeout_keeps_the_child_and_what_was_read() -> None:
    child = Child([SH, "-c", "echo first; exec sleep 30"], os.environ, capture=True)
    started = time.monotonic()
    with pytest.raises(ChildTimeout):
        child.communicate(timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 10
    assert child.poll() is None
    child.kill()
    out, _ = child.communicate()
    assert out == "first\n" and child.returncode == -9


def test_a_signal_gives_a_negative_code_as_popen_does() -> None:
    child = Child([SH, "-c", "kill -TERM $$"], os.environ, capture=False)
    assert child.wait() == -15 and child.communicate() == ("", "")
    child.send_signal(15)  # ended already: no error


def test_a_program_that_cannot_run_raises_and_leaks_nothing(tmp_path: Path) -> None:
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        Child([str(tmp_path / "missing")], os.environ, capture=True)
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        Child([str(script)], os.environ, capture=True)
    assert open_fds() == before


def test_stdin_is_safe_pips_own_unless_asked_otherwise() -> None:
    """`uv pip install -r -` reads the requirements safe-pip was given on stdin."""
    import subprocess

    code = (
        "import os, sys\n"
        "from safe_pip.child import Child\n"
        "child = Child(['/bin/cat'], os.environ, capture=True)\n"
        "sys.stdout.write(child.communicate()[0].upper())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input="demo-a\n", capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, "DEMO-A\n"), done.stderr


def test_only_the_three_standard_descriptors_reach_the_child() -> None:
    """As subprocess's close_fds: a descriptor safe-pip inherited open stays out of uv."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        child = Child([SH, "-c", "ls /proc/$$/fd"], os.environ, capture=True)
        out, _ = child.communicate(timeout=30)
    finally:
        os.close(read_end)
        os.close(write_end)
    listed = {int(fd) for fd in out.split()}
    assert {0, 1, 2} <= listed and write_end not in listed, (write_end, listed)


def test_a_child_reaped_behind_its_back_ends_without_an_error() -> None:
    """Ctrl-C between waitpid and keeping its answer loses the status: no crash, as
    subprocess (the audit record is still written)."""
    child = Child([SH, "-c", "exit 3"], os.environ, capture=False)
    os.waitpid(child.pid, 0)
    assert child.wait() == 0 and child.poll() == 0


def test_the_timeout_holds_for_a_child_that_closed_its_output() -> None:
    child = Child([SH, "-c", "exec >&- 2>&-; exec sleep 30"], os.environ, capture=True)
    started = time.monotonic()
    with pytest.raises(ChildTimeout):
        child.communicate(timeout=0.3)
    assert time.monotonic() - started < 5
    child.kill()
    assert child.communicate() == ("", "") and child.returncode == -9


def test_sigpipe_and_sigxfsz_are_back_to_their_default_in_the_child() -> None:
    """Python ignores both; subprocess restores them for its children, and so does Child."""
    child = Child([SH, "-c", "grep SigIgn /proc/$$/status"], os.environ, capture=True)
    out, _ = child.communicate(timeout=30)
    if not out:
        pytest.skip("no /proc here")
    ignored = int(out.split()[1], 16)
    assert not ignored & (1 << (13 - 1)) and not ignored & (1 << (25 - 1)), hex(ignored)
