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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from safe_pip.audit.locations import log_locations
from safe_pip.audit.record import record_packages
from safe_pip.errors import AuditError

if TYPE_CHECKING:
    import mmap

    from safe_pip.environment import Environment
    from safe_pip.policy import Policy

_TAIL_BLOCK = 1 << 16
_CHUNK = 1 << 22


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
            when = str(record.get("time") or "")
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
        for line in lines:
            if not line.strip():
                continue
            try:
                record = loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                if line is not partial:
                    damaged += 1
                continue
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
    """The file's bytes (memory-mapped), or None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise AuditError(f"cannot read the audit log {path}: {error.strerror}") from error
    try:
        size = os.fstat(fd).st_size
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


def _newest(buffer: _Buffer, newest: int, selector: _Selector) -> tuple[list[dict[str, Any]], int]:
    found: list[dict[str, Any]] = []
    damaged = 0
    if newest > 0:
        for start, end, unterminated in _windows_backward(buffer):
            records, bad = selector.select(buffer, start, end, unterminated)
            release_pages(buffer, start, end)
            damaged += bad
            found.extend(reversed(records))
            if len(found) >= newest:
                break
    return list(reversed(found[:newest])), damaged


def _forward(
    buffer: _Buffer, selector: _Selector, on_damaged: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    try:
        for start, end, unterminated in windows_forward(buffer):
            records, bad = selector.select(buffer, start, end, unterminated)
            release_pages(buffer, start, end)
            if bad:
                on_damaged(bad)
            yield from records
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


def read_all(
    paths: Sequence[str], *, newest: int | None = None, filters: RecordFilter | None = None
) -> Reading:
    """Records of several log files merged by time (oldest first); see ``Reading``.

    A file that cannot be read is reported in ``unreadable``; the others are
    still read.  The same file named twice (or through a symlink) is read once.
    """
    import heapq

    reading = Reading()
    seen: set[str] = set()
    buffers: list[tuple[str, _Buffer]] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
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
