"""The one reader of files safe-pip does not own: regular files only, size-capped, never blocks.

Each parser that reads a file is checked here with a FIFO in its place: the
call must come back (a blocked open or read would hang the test, so each runs
in a thread with a deadline) with the parser's documented error.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from safe_pip.conda_history import read_history
from safe_pip.conda_records import read_records
from safe_pip.errors import InputError, PolicyError
from safe_pip.pipcli import read_requirement_file
from safe_pip.pipconfig import parse_config_text, read_config_file
from safe_pip.policy import load_policy
from safe_pip.readfile import FileTooLarge, NotRegularFile, read_bytes, read_head, read_text

T = TypeVar("T")


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result (or exception), failing if it takes longer than ``seconds``."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_regular_file_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bytes(path, limit=100) == b"x" * 100
    assert read_text(path, limit=100) == "x" * 100
    assert read_head(path, 10) == b"x" * 10


def test_too_large_is_refused_with_the_limit_named(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 2049)
    with pytest.raises(FileTooLarge) as raised:
        read_bytes(path, limit=2048)
    assert "larger than 2 KiB" in str(raised.value.strerror)
    assert read_head(path, 2048) == b"x" * 2048  # a head is not refused


def test_fifo_is_refused_without_blocking(fifo: Path) -> None:
    with pytest.raises(NotRegularFile) as raised:
        within(2, lambda: read_bytes(fifo, limit=1 << 20))
    assert "FIFO" in str(raised.value.strerror)
    with pytest.raises(NotRegularFile):
        within(2, lambda: read_head(fifo, 10))


def test_devices_and_sockets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFile, match="character device"):
        read_bytes("/dev/zero", limit=10)
    sock_path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(NotRegularFile, match="socket"):
            read_bytes(sock_path, limit=10)


def test_directory_and_missing_file_are_the_os_errors(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_bytes(tmp_path, limit=10)
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "missing", limit=10)


def test_history_fifo_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    os.mkfifo(tmp_path / "conda-meta" / "history")
    history = within(2, lambda: read_history(tmp_path))
    assert history.blocks == ()
    assert len(history.problems) == 1 and "FIFO" in history.problems[0]


def test_record_fifo_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "conda-meta").mkdir()
    os.mkfifo(tmp_path / "conda-meta" / "pkg-1.0-0.json")
    records = within(2, lambda: read_records(tmp_path, use_cache=False))
    assert records.records == ()
    assert len(records.problems) == 1 and "FIFO" in records.problems[0]


def test_policy_fifo_is_a_policy_error(fifo: Path) -> None:
    with pytest.raises(PolicyError, match="FIFO"):
        within(2, lambda: load_policy(None, system_path=str(fifo)))


def test_policy_too_large_is_a_policy_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("# padding\n" * 30_000)
    with pytest.raises(PolicyError, match="larger than 256 KiB"):
        load_policy(None, system_path=str(path))


def test_pip_config_fifo_is_an_input_error(fifo: Path) -> None:
    with pytest.raises(InputError, match="FIFO"):
        within(2, lambda: read_config_file(str(fifo), "global"))


def test_requirement_file_fifo_is_left_to_pip(fifo: Path) -> None:
    # -r /dev/stdin or -r <(...): what safe-pip read, pip would not see
    assert within(2, lambda: read_requirement_file(str(fifo))) is None


def test_the_null_device_reads_as_an_empty_file() -> None:
    # PIP_CONFIG_FILE=/dev/null is how pip's configuration is switched off
    assert read_bytes(os.devnull, limit=10) == b""
    assert read_text(os.devnull, limit=10) == ""
    assert read_head(os.devnull, 10) == b""


def test_pip_config_switched_off_with_the_null_device_is_empty() -> None:
    config = read_config_file(os.devnull, "env")
    assert config is not None
    assert config == parse_config_text("", os.devnull, "env")
