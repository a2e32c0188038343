"""Shipping records to syslog and the journal: the messages, and a real rsyslogd receiving
every record of safe-pip runs over UDP, TCP and a unix socket."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from safe_pip.audit.ship import (
    LABELS,
    SD_ID,
    Shipper,
    journal_message,
    parse_target,
    read_failures,
    syslog_message,
)
from support.auditlog import log_lines
from support.prefixes import Prefix
from support.run import Runner

RECORD = {
    "schema": 2,
    "kind": "outcome",
    "time": "2026-05-01T12:00:03.123456Z",
    "command": "install",
    "decision": "denied",
    "rule": "user-site",
    "outcome": "denied",
    "env_kind": "conda-env",
    "user": "alice",
}
LINE = json.dumps(RECORD, separators=(",", ":")).encode()


def test_targets() -> None:
    assert parse_target("unix:/dev/log") == ("unix", "/dev/log", 0)
    assert parse_target("udp:logs.example.org:514") == ("udp", "logs.example.org", 514)
    assert parse_target("tcp:[::1]:601") == ("tcp", "::1", 601)
    for bad in ("", "unix:dev/log", "udp:host", "tcp:host:0", "tcp:host:70000", "http://x"):
        assert parse_target(bad) is None, bad


def test_rfc5424_message() -> None:
    message = syslog_message(RECORD, LINE, hostname="jupyter-alice", pid=42)
    header, _, body = message.partition(b"] ")
    assert body == LINE  # the record itself, as written to the local log
    assert header.startswith(
        b"<108>1 2026-05-01T12:00:03.123456Z jupyter-alice safe-pip 42 outcome ["
    )
    assert f"[{SD_ID} ".encode() in header
    # only the low-cardinality fields are structured data; the user is in the body only
    assert b'decision="denied" rule="user-site"' in header and b"alice" not in header.split(b"[")[1]
    assert len(LABELS) == header.count(b'="')
    quoted = syslog_message({**RECORD, "rule": 'a"b]c\\'}, LINE, hostname="h", pid=1)
    assert b'rule="a\\"b\\]c\\\\"' in quoted


def test_journal_message_and_a_journal_socket(tmp_path: Path) -> None:
    message = journal_message(RECORD, LINE)
    fields = dict(line.split(b"=", 1) for line in message.splitlines())
    assert fields[b"MESSAGE"] == LINE and fields[b"SYSLOG_IDENTIFIER"] == b"safe-pip"
    assert fields[b"SAFE_PIP_DECISION"] == b"denied" and fields[b"PRIORITY"] == b"4"
    path = str(tmp_path / "journal.socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journald:
        journald.bind(path)
        environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
        Shipper(journal=True, environ=environ, journal_socket=path).ship(RECORD, LINE)
        assert journald.recv(65536) == message
    assert read_failures(environ)["count"] == 0


def test_a_dead_destination_is_counted_quickly(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    Shipper(f"tcp:127.0.0.1:{port}", environ=environ).ship(RECORD, LINE)
    Shipper(f"unix:{tmp_path}/nothing", environ=environ).ship(RECORD, LINE)
    assert time.monotonic() - started < 1.5
    failures = read_failures(environ)
    assert failures["count"] == 2 and "syslog" in failures["last_error"]


# --- a real rsyslogd --------------------------------------------------------------------------

RSYSLOG_CONF = """
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{unix}" UseSpecialParser="off" ParseHostname="on")
template(name="fields" type="string"
         string="%app-name%|%msgid%|%pri%|%structured-data%|%msg%\\n")
*.* action(type="omfile" file="{received}" template="fields")
"""


class Rsyslog:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.received = work / "received.log"
        self.unix = work / "log.sock"
        self.udp = _free_port(socket.SOCK_DGRAM)
        self.tcp = _free_port(socket.SOCK_STREAM)

    def messages(self, count: int, seconds: float = 20) -> list[tuple[str, ...]]:
        """The first ``count`` messages received: (app, msgid, pri, sd, msg) each."""
        deadline = time.monotonic() + seconds
        while True:
            lines = self.received.read_text().splitlines() if self.received.exists() else []
            if len(lines) >= count or time.monotonic() > deadline:
                return [tuple(line.split("|", 4)) for line in lines]
            time.sleep(0.05)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rsyslogd() -> str:
    """rsyslogd, installed with apt-get (Debian's package) where it is missing."""
    found = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if found is None:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "rsyslog"],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    assert found, "rsyslogd is not installed and apt-get could not install it"
    return found


@pytest.fixture(scope="session")
def rsyslog(shared_session_tmp: Path) -> Iterator[Rsyslog]:
    """rsyslogd on loopback (UDP, TCP) and a unix socket of its own, writing what it receives
    to a file; stopped by its pid."""
    server = Rsyslog(shared_session_tmp / "rsyslog")
    server.work.mkdir()
    conf = server.work / "rsyslog.conf"
    conf.write_text(
        RSYSLOG_CONF.format(
            work=server.work,
            udp=server.udp,
            tcp=server.tcp,
            unix=server.unix,
            received=server.received,
        )
    )
    process = subprocess.Popen(
        [_rsyslogd(), "-n", "-f", str(conf), "-i", str(server.work / "rsyslogd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not server.unix.exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "rsyslogd did not start"
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_rsyslog_receives_every_record(
    rsyslog: Rsyslog,
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    """Each transport: an install (intent + outcome) and a refusal reach rsyslogd as RFC 5424
    messages whose MSG is the record written locally."""
    prefix = prefix_factory("conda-env", name="shipped")
    log = prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    environ: dict[str, str | None] = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    targets = [
        f"udp:127.0.0.1:{rsyslog.udp}",
        f"tcp:127.0.0.1:{rsyslog.tcp}",
        f"unix:{rsyslog.unix}",
    ]
    sent = 0
    for number, target in enumerate(targets):
        policy = f'version = 1\n[audit]\nsyslog = "{target}"\n'
        done = run(
            [
                *safe_pip_bin,
                "install",
                "--no-index",
                "--find-links",
                str(wheelhouse),
                f"demo-a=={1 + number % 2}.0",
            ],
            env=environ,
            system_policy=policy,
        )
        assert done.returncode == 0, done.stderr
        refused = run(
            [*safe_pip_bin, "install", "--user", "six"], env=environ, system_policy=policy
        )
        assert refused.returncode == 10
        sent += 4
        received = rsyslog.messages(sent)
        assert len(received) == sent, (target, received)
        local = log_lines(log)[-4:]
        for record, (app, msgid, pri, sd, msg) in zip(local, received[-4:]):
            shipped = json.loads(msg)
            # the same JSON (an intent without its snapshot of the env, which stays local)
            assert shipped == {k: v for k, v in record.items() if k != "before"}
            assert (app, msgid) == ("safe-pip", record["kind"])
            assert pri == ("108" if record["decision"] == "denied" else "110")
            assert sd.startswith(f"[{SD_ID} ") and f'decision="{record["decision"]}"' in sd
        assert [r["kind"] for r in local] == ["intent", "plan", "outcome", "outcome"]
    status = run([*safe_pip_bin, "status"], env=environ)
    assert "not delivered" not in status.stdout


def test_a_dead_syslog_never_loses_the_local_record(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    prefix = prefix_factory("conda-env", name="unshipped")
    environ: dict[str, str | None] = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    policy = f'version = 1\n[audit]\nsyslog = "tcp:127.0.0.1:{_free_port(socket.SOCK_STREAM)}"\n'
    done = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        env=environ,
        system_policy=policy,
    )
    assert done.returncode == 0, done.stderr
    records = log_lines(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")
    assert [r["kind"] for r in records] == ["intent", "plan", "outcome"]
    assert records[-1]["outcome"] == "ok"
    status = run([*safe_pip_bin, "status", "--json"], env=environ)
    assert json.loads(status.stdout)["audit"]["not_shipped"]["count"] == 3
