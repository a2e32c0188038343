"""The one reader of audit log files.

Readers (``read_records``, ``read_all``) map the file and walk it in windows of
whole lines, from the end for ``--limit``; ``--package`` is one regex pass for
the name as the ``packages`` field spells it, so only lines that name it are
parsed.  Damaged lines are skipped and counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from safe_pip.audit.locations import log_locations
from safe_pip.audit.record import change_names, record_packages
from safe_pip.environment import normalize_name
from safe_pip.errors import AuditError
from safe_pip.lazyre import lazy

if TYPE_CHECKING:
    import mmap

    from safe_pip.environment import Environment
    from safe_pip.policy import Policy

_TAIL_BLOCK = 1 << 16
_CHUNK = 1 << 22


_FIXED_TIME = lazy(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def comparable_time(value: object) -> str | None:
    """A record's ``time`` in the fixed-width UTC form, where text order is time order
    (so ``--since``/``--until`` compare real times); None when it is not a time."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    if _FIXED_TIME.fullmatch(value):
        return value
    from datetime import datetime, timezone

    from safe_pip.audit.record import fixed_width_time

    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return fixed_width_time(moment)


class RecordFilter:
    """What ``safe-pip log`` selects; times are UTC in the records' form (``utc_time``).

    ``user`` matches ``user`` or ``hub_user``; ``since`` is inclusive, ``until``
    exclusive.  (A plain class: a dataclass costs a millisecond at import.)
    """

    __slots__ = ("decision", "package", "package_key", "since", "until", "user")

    def __init__(
        self,
        *,
        package: str | None = None,
        decision: str | None = None,
        user: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        self.package = package
        self.decision = decision
        self.user = user
        self.since = since
        self.until = until
        #: the package normalised (PEP 503), as records' ``packages`` spell it
        self.package_key: str | None = None
        if package is not None:
            from safe_pip.environment import normalize_name

            self.package_key = normalize_name(package)

    def __repr__(self) -> str:
        names = ("package", "decision", "user", "since", "until")
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"RecordFilter({fields})"

    def matches(self, record: Mapping[str, Any]) -> bool:
        if self.decision is not None and record.get("decision") != self.decision:
            return False
        if self.user is not None and self.user not in (record.get("user"), record.get("hub_user")):
            return False
        if self.since is not None or self.until is not None:
            when = comparable_time(record.get("time"))
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when >= self.until:
                return False
        if self.package_key is not None:
            packages = record.get("packages")
            if not isinstance(packages, list):
                packages = list(record_packages(record))
            return self.package_key in packages
        return True


class Record(dict[str, Any]):
    """A record as read: the parsed dict, plus ``line``, its bytes as stored
    (so ``log --json`` can print it without encoding it again)."""

    __slots__ = ("line",)

    line: bytes


#: the file's bytes: a read-only mmap, or the bytes themselves where mmap fails
_Buffer = Union[bytes, "mmap.mmap"]


class _Selector:
    """Cheap byte tests before ``json.loads``: no false negatives, few false positives.

    ``--package`` searches the literal ``"<normalised name>"`` (as ``packages``
    holds it) with one regex pass over each window, and parses only the lines
    it hits.
    """

    def __init__(self, filters: RecordFilter | None) -> None:
        self.filters = filters
        self.pattern: re.Pattern[bytes] | None = None
        self.needles: list[tuple[bytes, ...]] = []
        if filters is None:
            return
        if filters.package_key:
            quoted = json.dumps(filters.package_key).encode("ascii")
            self.pattern = re.compile(re.escape(quoted))
        if filters.decision:
            self.needles.append((json.dumps(filters.decision).encode("ascii"),))
        if filters.user:
            self.needles.append(
                (
                    json.dumps(filters.user).encode("ascii"),
                    json.dumps(filters.user, ensure_ascii=False).encode("utf-8", "replace"),
                )
            )

    def select(
        self, buffer: _Buffer, start: int, end: int, unterminated: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """(matching records in file order, damaged lines) of the whole lines in [start, end).

        ``unterminated``: the window ends with a line without its newline, which
        may still be being written; it is not counted as damaged.
        """
        partial: bytes | None = None
        if self.pattern is None:
            lines = buffer[start:end].split(b"\n")
            if unterminated:
                partial = lines[-1]
        else:
            lines = []
            done = start
            for match in self.pattern.finditer(buffer, start, end):
                hit = match.start()
                if hit < done:
                    continue
                line_start = buffer.rfind(b"\n", start, hit) + 1 or start
                line_end = buffer.find(b"\n", hit, end)
                if line_end < 0:
                    line_end = end
                lines.append(buffer[line_start:line_end])
                done = line_end
            if unterminated and done == end and lines:
                partial = lines[-1]
        if self.needles:
            lines = [line for line in lines if all(_any_in(n, line) for n in self.needles)]
        return self._parse(lines, partial)

    def _parse(self, lines: list[bytes], partial: bytes | None) -> tuple[list[dict[str, Any]], int]:
        records: list[dict[str, Any]] = []
        damaged = 0
        loads = json.loads
        # whole runs of lines (no byte filter): a torn line the next record marks is no damage
        contiguous = self.pattern is None and not self.needles
        torn = -1
        for line in lines:
            if not line.strip():
                continue
            try:
                record = loads(line)
            except (ValueError, RecursionError):  # not JSON; nested deeper than Python goes
                record = None
            if not isinstance(record, dict):
                if line is not partial:
                    damaged += 1
                    torn = len(line) if contiguous else -1
                continue
            if torn >= 0 and record.get("torn_before") == torn:
                damaged -= 1  # a writer stopped mid-line, marked by this record: not damage
            torn = -1
            if self.filters is None or self.filters.matches(record):
                kept = Record(record)
                kept.line = line
                records.append(kept)
        return records, damaged


def _any_in(needles: tuple[bytes, ...], line: bytes) -> bool:
    return any(needle in line for needle in needles)


def windows_forward(buffer: _Buffer) -> Iterator[tuple[int, int, bool]]:
    """(start, end, ends unterminated): consecutive runs of whole lines, about _CHUNK long."""
    size = len(buffer)
    ragged = size > 0 and buffer[size - 1 : size] != b"\n"
    start = 0
    while start < size:
        end = min(start + _CHUNK, size)
        if end < size:
            cut = buffer.rfind(b"\n", start, end)
            if cut < 0:
                cut = buffer.find(b"\n", end)
                end = size if cut < 0 else cut + 1
            else:
                end = cut + 1
        yield start, end, ragged and end == size
        start = end


def _windows_backward(buffer: _Buffer) -> Iterator[tuple[int, int, bool]]:
    """Like ``_windows_forward``, from the end of the file back, growing from _TAIL_BLOCK."""
    size = len(buffer)
    ragged = size > 0 and buffer[size - 1 : size] != b"\n"
    end = size
    block = _TAIL_BLOCK
    while end > 0:
        start = 0 if end <= block else buffer.rfind(b"\n", 0, end - block) + 1
        yield start, end, ragged and end == size
        end = start
        block = min(block * 2, _CHUNK)


def map_file(path: str) -> _Buffer | None:
    """The file's bytes (memory-mapped), or None when it does not exist.

    Raises AuditError when it cannot be read or is not a regular file (opened
    without blocking, so a FIFO there never stalls a reader).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise AuditError(f"cannot read the audit log {path}: {error.strerror}") from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            # a FIFO would block a reader forever, a device would never end
            raise AuditError(f"cannot read the audit log {path}: not a regular file")
        size = info.st_size
        if size == 0:
            return b""
        import mmap

        try:
            return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            with open(fd, "rb", closefd=False) as handle:
                return handle.read()
    except OSError as error:
        raise AuditError(f"cannot read the audit log {path}: {error.strerror}") from error
    finally:
        os.close(fd)


def close_buffer(buffer: _Buffer) -> None:
    if not isinstance(buffer, bytes):
        buffer.close()


def release_pages(buffer: _Buffer, start: int, end: int) -> None:
    """Unmap the whole pages of [start, end) once read: the file stays in the page cache,
    but the process does not keep 1.6 GB of a million-record log resident."""
    if isinstance(buffer, bytes):
        return
    import mmap

    page = mmap.PAGESIZE
    first = -(-start // page) * page
    last = end // page * page
    if last > first and hasattr(buffer, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            buffer.madvise(mmap.MADV_DONTNEED, first, last - first)


#: an outcome's reference to the intent it completes (schema 2)
COMPLETES = lazy(rb'"intent":"([0-9a-f]{32})"')
#: intents held back by a forward read, waiting for their outcome, before they are shown
_MAX_PENDING = 10_000


def _completions(buffer: _Buffer, start: int, end: int) -> set[str]:
    """Ids of the intents that outcomes in [start, end) complete (all lines, not only
    those the filters keep: an outcome filtered out still completes its intent)."""
    return {ident.decode("ascii") for ident in COMPLETES.findall(buffer, start, end)}


def _completed(buffer: _Buffer, ident: str, start: int, end: int) -> bool:
    """An outcome in [start, end) completes the intent ``ident``."""
    return buffer.find(b'"intent":"' + ident.encode("ascii", "replace") + b'"', start, end) >= 0


def _is_intent(record: Mapping[str, Any]) -> bool:
    return record.get("kind") == "intent"


def _is_plan(record: Mapping[str, Any]) -> bool:
    """pip's plan, between an intent and its outcome: never one of the operations shown."""
    return record.get("kind") == "plan"


def _newest(buffer: _Buffer, newest: int, selector: _Selector) -> tuple[list[dict[str, Any]], int]:
    """The newest ``newest`` operations: outcomes, and intents nothing completes (yet)."""
    found: list[dict[str, Any]] = []
    damaged = 0
    size = len(buffer)
    if newest > 0:
        for start, end, unterminated in _windows_backward(buffer):
            records, bad = selector.select(buffer, start, end, unterminated)
            damaged += bad
            # an outcome is written after its intent: search from the intent's window on
            found.extend(
                r
                for r in reversed(records)
                if not _is_plan(r)
                and not (_is_intent(r) and _completed(buffer, str(r.get("id")), start, size))
            )
            release_pages(buffer, start, end)
            if len(found) >= newest:
                break
    return list(reversed(found[:newest])), damaged


def _forward(
    buffer: _Buffer, selector: _Selector, on_damaged: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    """Every operation in file order; an intent is held back until it is known whether an
    outcome completes it, so the unfinished ones come last."""
    pending: dict[str, dict[str, Any]] = {}
    try:
        for start, end, unterminated in windows_forward(buffer):
            records, bad = selector.select(buffer, start, end, unterminated)
            if bad:
                on_damaged(bad)
            for record in records:
                if _is_intent(record):
                    pending[str(record.get("id"))] = record
                elif not _is_plan(record):
                    yield record
            # one more pass over the window only while intents wait for their outcome
            completions = _completions(buffer, start, end) if pending else set()
            release_pages(buffer, start, end)
            for ident in completions if pending else ():
                pending.pop(ident, None)
            while len(pending) > _MAX_PENDING:  # bounded memory: the oldest shown as unfinished
                yield pending.pop(next(iter(pending)))
        yield from pending.values()
    finally:
        close_buffer(buffer)


def read_records(
    path: str, *, newest: int | None = None, filters: RecordFilter | None = None
) -> tuple[list[dict[str, Any]], int]:
    """(matching records oldest first, number of damaged lines skipped) of one log file.

    With ``newest`` the file is read backwards in growing windows and reading
    stops at the newest ``newest`` matches; otherwise it is scanned forwards.
    Damaged lines are counted among the lines parsed (with ``package``, only
    lines that mention it are).  A missing file has no records.
    """
    buffer = map_file(path)
    if buffer is None:
        return [], 0
    selector = _Selector(filters)
    if newest is not None:
        try:
            return _newest(buffer, newest, selector)
        finally:
            close_buffer(buffer)
    damaged = [0]

    def count(bad: int) -> None:
        damaged[0] += bad

    records = list(_forward(buffer, selector, count))
    return records, damaged[0]


def _time_of(record: Mapping[str, Any]) -> str:
    return str(record.get("time") or "")


class Reading:
    """What ``read_all`` found.

    ``records`` is an iterator (oldest first; consume it once): without
    ``newest`` the files are streamed, so a million matches never sit in memory
    at once.  ``damaged`` (lines skipped, by file) is complete once ``records``
    is exhausted; ``unreadable`` (files that exist but cannot be read, with why)
    is complete at once.
    """

    def __init__(self) -> None:
        self.records: Iterator[dict[str, Any]] = iter(())
        self.damaged: dict[str, int] = {}
        self.unreadable: dict[str, str] = {}

    def counter(self, path: str) -> Callable[[int], None]:
        def count(bad: int) -> None:
            self.damaged[path] = self.damaged.get(path, 0) + bad

        return count


def _distinct(paths: Sequence[str]) -> list[str]:
    """``paths`` without a second name (or a symlink) for a file already listed."""
    seen: set[str] = set()
    distinct = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            distinct.append(path)
    return distinct


def read_all(
    paths: Sequence[str], *, newest: int | None = None, filters: RecordFilter | None = None
) -> Reading:
    """Records of several log files merged by time (oldest first); see ``Reading``.

    A file that cannot be read is reported in ``unreadable``; the others are
    still read.  The same file named twice (or through a symlink) is read once.
    """
    import heapq

    reading = Reading()
    buffers: list[tuple[str, _Buffer]] = []
    for path in _distinct(paths):
        try:
            buffer = map_file(path)
        except AuditError as error:
            reading.unreadable[path] = error.message
            continue
        if buffer is not None:
            buffers.append((path, buffer))
    selector = _Selector(filters)
    if newest is None:
        streams = [_forward(b, selector, reading.counter(p)) for p, b in buffers]
        reading.records = heapq.merge(*streams, key=_time_of)
        return reading
    per_file = []
    for path, buffer in buffers:
        try:
            records, bad = _newest(buffer, newest, selector)
        finally:
            close_buffer(buffer)
        per_file.append(records)
        if bad:
            reading.counter(path)(bad)
    merged = list(heapq.merge(*per_file, key=_time_of))
    reading.records = iter(merged[-newest:] if newest > 0 else [])
    return reading


def read_env_records(
    env: Environment,
    policy: Policy | None,
    environ: Mapping[str, str],
    *,
    newest: int | None = None,
    filters: RecordFilter | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(records oldest first, damaged lines by file) of an env, from every location the
    policy writes its records to; files that cannot be read are skipped (``read_all``
    says which).

    Denied attempts on an env the user cannot write went to the per-user file,
    so it is read with the env's own log.  Other users' per-user files are theirs.
    """
    reading = read_all(log_locations(env, policy, environ), newest=newest, filters=filters)
    records = list(reading.records)
    return records, reading.damaged


# --- the records that decide the net pip state (export, drift) ------------------------------

#: the ``"name"`` members of a JSON line (change items are the only objects with one)
#: (an escaped quote ends the match early: such a name has a backslash and is never skipped)
_NAME_MEMBER_RE = lazy(rb'"name"\s*:\s*"([^"]*)"')
#: bytes of log read at a time by ``deciding_records``
_DECIDING_CHUNK = 1 << 18


class _Selection:
    """The state of ``deciding_records`` while it walks a log backwards."""

    def __init__(self) -> None:
        self.decided: set[str] = set()  # normalised names whose newest change is known
        self.decided_raw: set[bytes] = set()  # their spellings as found in lines
        self.normalized: dict[bytes, str | None] = {}
        self.found: list[dict[str, Any]] = []
        self.damaged_at: list[int] = []

    def settled(self, names: list[bytes]) -> bool:
        """True when every name has a newer real change already (spellings are learnt)."""
        if self.decided_raw.issuperset(names):
            return True
        for raw in names:
            if raw in self.decided_raw:
                continue
            if raw not in self.normalized:
                # a name with an escape is not compared: its line is always parsed
                self.normalized[raw] = (
                    None if b"\\" in raw else normalize_name(raw.decode("utf-8", "replace"))
                )
            key = self.normalized[raw]
            if key is None or key not in self.decided:
                return False
            self.decided_raw.add(raw)
        return True

    def take(self, line: bytes, offset: int, names: list[bytes]) -> None:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON; nested deeper than Python goes
            record = None
        if not isinstance(record, dict):
            self.damaged_at.append(offset)
            return
        from safe_pip.audit.replay import changes_are_real

        if changes_are_real(record):
            self.found.append(record)
            self.decided.update(change_names(record))
            self.settled(names)  # learn the spellings now decided

    def lines(self, chunk: bytes, base: int) -> None:
        """Every line of ``chunk`` (whole lines, newline-terminated), newest first."""
        end = len(chunk)
        while end > 0:
            start = chunk.rfind(b"\n", 0, end - 1) + 1
            line = chunk[start : end - 1]
            end = start
            names = _NAME_MEMBER_RE.findall(line)
            if self.settled(names) and line[:1] == b"{" and line[-1:] == b"}":
                continue
            if line.strip():
                self.take(line, base + start, names)


def _whole_records(chunk: bytes) -> bool:
    """Every line of the chunk looks like one JSON object (``{...}``), none is blank."""
    return (
        chunk[:1] == b"{"
        and chunk[-2:] == b"}\n"
        and chunk.count(b"\n") == chunk.count(b"}\n{") + 1
    )


def deciding_records(data: _Buffer) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of one JSON Lines log that decide the net pip state, oldest first,
    and the numbers of the damaged lines met.

    Replaying the records returned gives the same ``pip_requirements`` as
    replaying every record of the file: the file is walked from its end, in
    chunks of whole lines, and a line is parsed only when it names a
    distribution (a ``"name"`` member, which only change items have) whose
    newest real change has not been seen yet, or when it does not look like
    one whole JSON object.  A chunk whose names are all settled and whose lines
    all look whole is skipped with two byte counts and one regex pass.  An
    unterminated last line (a record being written) is ignored.
    """
    selection = _Selection()
    end = len(data)
    if end and data[end - 1 : end] != b"\n":
        end = data.rfind(b"\n") + 1  # drop the unterminated last line
    while end > 0:
        start = 0 if end <= _DECIDING_CHUNK else data.rfind(b"\n", 0, end - _DECIDING_CHUNK) + 1
        chunk = data[start:end]
        release_pages(data, start, end)  # bounded memory on a log of any size
        if not (selection.settled(_NAME_MEMBER_RE.findall(chunk)) and _whole_records(chunk)):
            selection.lines(chunk, start)
        end = start
    selection.found.reverse()
    numbers: list[int] = []
    line, position = 1, 0
    for offset in sorted(selection.damaged_at):
        line += data[position:offset].count(b"\n")
        position = offset
        numbers.append(line)
    return selection.found, numbers


class Deciding:
    """What ``read_deciding`` found: ``records`` (oldest first, merged by time),
    ``damaged`` (line numbers skipped, by file) and ``unreadable`` (file: why)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.damaged: dict[str, list[int]] = {}
        self.unreadable: dict[str, str] = {}


def read_deciding(paths: Sequence[str]) -> Deciding:
    """The records of several log files that decide the env's net pip state
    (``deciding_records`` of each), merged by time; the same file named twice is read once."""
    import heapq

    found = Deciding()
    per_file: list[list[dict[str, Any]]] = []
    for path in _distinct(paths):
        try:
            buffer = map_file(path)
        except AuditError as error:
            found.unreadable[path] = error.message
            continue
        if buffer is None:
            continue
        try:
            records, damaged = deciding_records(buffer)
        finally:
            close_buffer(buffer)
        if damaged:
            found.damaged[path] = damaged
        if records:
            per_file.append(records)
    if len(per_file) == 1:
        found.records = per_file[0]
    else:
        found.records = list(heapq.merge(*per_file, key=_time_of))
    return found


def records_in(data: bytes) -> list[dict[str, Any]]:
    """The records among whole lines (``data`` ends with a newline); damaged ones skipped."""
    records, _damaged = _Selector(None).select(data, 0, len(data), False)
    return records
