"""Shipping records to the hub's log infrastructure: syslog (RFC 5424) and the systemd journal.

Every record written to the local log is also sent, as the same JSON line, to
the places the policy names (``audit.syslog``, ``audit.journal``).  Collectors
(rsyslog, syslog-ng, journald, then Loki, Elasticsearch or a SIEM) take the
structured data as labels, so it holds only low-cardinality identifiers
(``LABELS``); the user, the env's prefix and the packages are in the message,
the JSON record.  Sending never waits longer than ``timeout`` seconds in all;
a failure never touches the local record: it is counted in the user's state
dir (``failures_file``) and ``safe-pip status`` shows the count.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from safe_pip.atomicwrite import write_atomic
from safe_pip.userdirs import state_home

#: the SD-ID of the structured data (32473: the enterprise number RFC 5612 reserves
#: for examples and documentation)
SD_ID = "safe-pip@32473"
#: record fields that are structured data (and journal fields): few values each
LABELS = ("schema", "kind", "command", "decision", "rule", "outcome", "env_kind")
#: syslog facility 13, "log audit"; severity info (6), or warning (4) for a refusal
FACILITY = 13
JOURNAL_SOCKET = "/run/systemd/journal/socket"
#: the longest the shipping of one record may take, over every destination
SHIP_TIMEOUT_S = 0.5
_APP = "safe-pip"
_SCHEMES = ("unix", "udp", "tcp")


def parse_target(text: str) -> tuple[str, str, int] | None:
    """``unix:/dev/log``, ``udp:HOST:PORT`` or ``tcp:HOST:PORT`` -> (scheme, where, port);
    None when it is none of those (``policy`` says so to the admin)."""
    scheme, _, rest = text.partition(":")
    if scheme == "unix" and rest.startswith("/"):
        return scheme, rest, 0
    if scheme in ("udp", "tcp"):
        host, _, port = rest.rpartition(":")
        host = host.strip("[]")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return scheme, host, int(port)
    return None


def _sd_value(value: object) -> str:
    text = "-" if value is None else str(value)
    # RFC 5424 6.3.3: '"', '\' and ']' are escaped inside PARAM-VALUE
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(record: Mapping[str, Any], line: bytes, *, hostname: str, pid: int) -> bytes:
    """One RFC 5424 message: the labels as structured data, the JSON line as MSG."""
    severity = 4 if record.get("decision") == "denied" else 6
    params = " ".join(f'{key}="{_sd_value(record.get(key))}"' for key in LABELS)
    msgid = str(record.get("kind") or "outcome")
    header = (
        f"<{FACILITY * 8 + severity}>1 {_rfc3339(record.get('time'))} {hostname[:255] or '-'} "
        f"{_APP} {pid} {msgid} [{SD_ID} {params}] "
    )
    return header.encode("ascii", "replace") + line


def _rfc3339(value: object) -> str:
    text = str(value or "")
    return text if len(text) == 27 and text.endswith("Z") else "-"


def journal_message(record: Mapping[str, Any], line: bytes) -> bytes:
    """The journal's native datagram: ``FIELD=value`` lines (the JSON line has none)."""
    fields = [
        b"MESSAGE=" + line,
        b"SYSLOG_IDENTIFIER=" + _APP.encode(),
        b"SYSLOG_FACILITY=%d" % FACILITY,
        b"PRIORITY=%d" % (4 if record.get("decision") == "denied" else 6),
    ]
    for key in LABELS:
        value = str(record.get(key) if record.get(key) is not None else "-")
        fields.append(f"SAFE_PIP_{key.upper()}={value}".encode("ascii", "replace"))
    return b"\n".join(fields) + b"\n"


def _send(target: tuple[str, str, int], message: bytes, timeout: float) -> None:
    scheme, where, port = target
    if scheme == "unix":
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_UNIX, kind) as sock:
                sock.settimeout(timeout)
                try:
                    sock.connect(where)
                except OSError as error:
                    if kind == socket.SOCK_DGRAM and error.errno == 91:  # EPROTOTYPE
                        continue
                    raise
                # a stream socket needs a frame end; a datagram is one message
                sock.sendall(message if kind == socket.SOCK_DGRAM else message + b"\n")
                return
        return
    family_info = socket.getaddrinfo(where, port, type=socket.SOCK_STREAM)[0]
    if scheme == "udp":
        with socket.socket(family_info[0], socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(message, family_info[4])
        return
    with socket.create_connection((where, port), timeout=timeout) as sock:
        # RFC 6587 octet counting: "LENGTH SP MESSAGE"
        sock.sendall(b"%d " % len(message) + message)


class Shipper:
    """Where records go besides the local log (from the policy); ``ship`` never raises."""

    def __init__(
        self,
        syslog: str = "",
        journal: bool = False,
        *,
        environ: Mapping[str, str] | None = None,
        timeout: float = SHIP_TIMEOUT_S,
        journal_socket: str = JOURNAL_SOCKET,
    ) -> None:
        self.syslog = parse_target(syslog) if syslog else None
        self.journal = journal
        self.environ = os.environ if environ is None else environ
        self.timeout = timeout
        self.journal_socket = journal_socket

    def __bool__(self) -> bool:
        return self.syslog is not None or self.journal

    def ship(self, record: Mapping[str, Any], line: bytes) -> None:
        """Send ``line`` (the record as written locally) everywhere; an intent goes without
        ``before`` (the env's snapshot, for a local recovery, kilobytes the hub needs not)."""
        deadline = time.monotonic() + self.timeout
        if "before" in record:
            parsed = json.loads(line)
            parsed.pop("before", None)
            line = json.dumps(parsed, separators=(",", ":")).encode("ascii")
        errors: list[str] = []
        if self.syslog is not None:
            message = syslog_message(record, line, hostname=socket.gethostname(), pid=os.getpid())
            try:
                _send(self.syslog, message, max(deadline - time.monotonic(), 0.01))
            except OSError as error:
                errors.append(f"syslog {':'.join(map(str, self.syslog))}: {error}")
        if self.journal and os.path.exists(self.journal_socket):
            try:
                target = ("unix", self.journal_socket, 0)
                _send(target, journal_message(record, line), max(deadline - time.monotonic(), 0.01))
            except OSError as error:
                errors.append(f"journal: {error}")
        if errors:
            count_failure(self.environ, "; ".join(errors))


def shipper_for(policy: Any, environ: Mapping[str, str]) -> Shipper | None:
    """The policy's shipping (``audit.syslog``, ``audit.journal``), or None when it ships
    nowhere."""
    shipper = Shipper(policy.text("audit.syslog"), policy.flag("audit.journal"), environ=environ)
    return shipper if shipper else None


def failures_file(environ: Mapping[str, str]) -> str | None:
    home = state_home(environ)
    return None if home is None else os.path.join(home, "safe-pip", "shipping-failures.json")


def read_failures(environ: Mapping[str, str]) -> dict[str, Any]:
    """``{"count": N, "last_error": ..., "last_time": ...}`` (count 0 when none)."""
    path = failures_file(environ)
    try:
        with open(path or "", encoding="utf-8") as handle:
            data = json.loads(handle.read(65536))
    except (OSError, ValueError):
        return {"count": 0, "last_error": None, "last_time": None}
    if not isinstance(data, dict) or not isinstance(data.get("count"), int):
        return {"count": 0, "last_error": None, "last_time": None}
    return data


def count_failure(environ: Mapping[str, str], error: str) -> None:
    """Add one to the user's count of records not shipped (best effort, never raises)."""
    from safe_pip.audit.record import utc_time

    path = failures_file(environ)
    if path is None:
        return
    data = read_failures(environ)
    data = {"count": data["count"] + 1, "last_error": error[:500], "last_time": utc_time()}
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps(data), mode=0o600, dir_mode=0o700)
