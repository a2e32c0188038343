"""What an audit record holds: who, where, what was asked (redacted), and the names it is about.

Records are built by ``base_record`` and completed by the guard (decision,
outcome, changes); ``store.append`` redacts them again (``redact_record``), sets
``packages`` (``record_packages``) and chains them (``prev``: ``line_hash`` of
the line before).  The format is docs/audit-log.md.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from safe_pip import __version__
from safe_pip.audit.redact import iter_redacted_requirement_lines, redact_argv, redact_text

if TYPE_CHECKING:
    import datetime

    from safe_pip.environment import Environment
    from safe_pip.pipcli import Operation

#: The record format version (``schema`` in every record); docs/audit-log.md.
SCHEMA = 2
#: Lines kept per requirement file in ``requested``.
MAX_FILE_LINES = 500


def utc_time(epoch: float | None = None) -> str:
    """``2024-05-01T12:00:03.123456Z``: the fixed-width UTC form every record uses."""
    now = time.time() if epoch is None else epoch
    seconds = int(now)
    micros = round((now - seconds) * 1_000_000)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def fixed_width_time(moment: datetime.datetime) -> str:
    """A UTC ``datetime`` in the records' fixed-width form (a 4-digit year, also before 1000)."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z"
    )


def new_id() -> str:
    """A random UUID (version 4) as 32 hex digits, without importing ``uuid``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def login_name(uid: int, environ: Mapping[str, str]) -> str:
    """The login name of ``uid`` (the real uid), else ``$USER``/``$LOGNAME``, else the uid."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return environ.get("USER") or environ.get("LOGNAME") or str(uid)


def base_record(
    env: Environment,
    argv: Sequence[str],
    command: str,
    *,
    environ: Mapping[str, str] | None = None,
    when: float | None = None,
) -> dict[str, Any]:
    """A record with every field of the schema; who/where/what filled in, the rest at defaults.

    ``when`` (epoch seconds, default now) is the record's ``time``: when safe-pip
    took the command up, not when pip finished.

    ``kind`` is ``outcome`` (an ``intent`` is written before pip runs, see
    docs/audit-log.md); ``intent`` names the intent an outcome completes.
    The guard sets ``decision``, ``rule``, ``reason``, ``outcome``, ``exit_code``,
    ``duration_s``, ``changes``, ``requested`` and ``index``; ``append`` sets
    ``prev`` and ``packages``.
    """
    variables = os.environ if environ is None else environ
    uid = os.getuid()
    return {
        "schema": SCHEMA,
        "id": new_id(),
        "kind": "outcome",
        "intent": None,
        "time": utc_time(when),
        "prev": None,
        "safe_pip": __version__,
        "user": login_name(uid, variables),
        "uid": uid,
        "host": os.uname().nodename,
        "hub_user": variables.get("JUPYTERHUB_USER") or None,
        "prefix": env.prefix,
        "env_name": env.name,
        "env_kind": str(env.kind),
        "python": env.version,
        "pip_version": env.pip_version,
        # the installer that carried the operation out (backends): pip or uv
        "installer": "pip",
        "installer_version": env.pip_version,
        "command": command,
        "argv": redact_argv(argv),
        "requested": [],
        "index": {"index_url": None, "extra_index_urls": [], "find_links": [], "no_index": False},
        "decision": None,
        "rule": None,
        "reason": "",
        "outcome": None,
        "exit_code": None,
        "duration_s": None,
        "changes": {"installed": [], "removed": []},
        "packages": [],
    }


def _strings(value: object) -> list[str]:
    if value is None or value is False:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _requirement_file_lines(path: str) -> list[str]:
    from safe_pip.pipcli import read_requirement_file

    text = read_requirement_file(path)
    if text is None:
        return []  # unreadable, or not a regular file (reading /dev/stdin would consume it)
    lines: list[str] = []
    for line in iter_redacted_requirement_lines(text):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(stripped)
            if len(lines) == MAX_FILE_LINES:
                break
    return lines


def redacted_requested(op: Operation) -> list[str]:
    """What the user asked for, redacted: requirement arguments, ``-e X``, and ``-r FILE``
    followed by that file's requirement lines (comments dropped, at most MAX_FILE_LINES)."""
    requested = [redact_text(arg) for arg in op.args]
    requested.extend("-e " + redact_text(e) for e in _strings(op.get("editables")))
    for path in _strings(op.get("requirements")):
        requested.append("-r " + redact_text(path))
        if "://" not in path:
            requested.extend(_requirement_file_lines(path))
    return requested


def index_options(op: Operation) -> dict[str, Any]:
    """Where pip looks for packages (effective options), redacted."""
    index_url = op.get("index_url")
    return {
        "index_url": redact_text(str(index_url)) if index_url else None,
        "extra_index_urls": [redact_text(u) for u in _strings(op.get("extra_index_urls"))],
        "find_links": [redact_text(u) for u in _strings(op.get("find_links"))],
        "no_index": bool(op.get("no_index", False)),
    }


def redact_record(value: Any) -> Any:
    """Every string in a record, redacted again: whatever a caller forgot never lands."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact_record(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_record(item) for item in value]
    return value


@functools.cache
def _sha256_function() -> Callable[[bytes], Any]:
    # the builtin module loads in 0.2 ms, hashlib (OpenSSL) in 3-8 ms
    for module in ("_sha2", "_sha256"):
        try:
            function: Callable[[bytes], Any] = __import__(module).sha256
            return function
        except (ImportError, AttributeError):
            continue
    import hashlib  # pragma: no cover - builds without the builtin hashes

    return hashlib.sha256  # pragma: no cover


def line_hash(line: bytes) -> str:
    """sha256 (hex) of one log line without its newline: the next record's ``prev``."""
    return str(_sha256_function()(line).hexdigest())


def requirement_name(text: str) -> str | None:
    """The project name a requirement line names (also ``-e X``), normalised: pip's reading
    (``names.requirement_line_name``)."""
    from safe_pip.names import requirement_line_name

    return requirement_line_name(text)


def change_names(record: Mapping[str, Any]) -> set[str]:
    """Normalised names of the distributions a record's ``changes`` installed or removed."""
    from safe_pip.environment import normalize_name

    names: set[str] = set()
    changes = record.get("changes")
    if not isinstance(changes, Mapping):
        return names
    for key in ("installed", "removed"):
        items = changes.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    names.add(normalize_name(item["name"]))
    return names


def record_packages(record: Mapping[str, Any]) -> set[str]:
    """Normalised names a record is about: its changes and what was requested.

    ``append`` stores them sorted in the record's ``packages`` field, which
    ``--package`` searches.
    """
    names = change_names(record)
    requested = record.get("requested")
    if isinstance(requested, list):
        for text in requested:
            if isinstance(text, str):
                name = requirement_name(text)
                if name:
                    names.add(name)
    return names
