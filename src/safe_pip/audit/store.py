"""Writing records: directories and modes, the lock, and ``append``.

``append`` writes each record as one line with one ``write`` on an ``O_APPEND``
descriptor while holding ``<log>.lock``, and chains it to the line before
(``prev``: sha256 of that line).

Start-up matters here (every install appends): the module imports nothing that
the pip path has not already loaded, and takes its lock with ``fcntl.flock``
directly (the lock ``filelock.FileLock`` takes on the same path; filelock itself
is imported only where flock is unavailable, its import alone costs 20-50 ms).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from safe_pip.audit.locations import LOCK_SUFFIX
from safe_pip.audit.record import line_hash, record_packages, redact_record
from safe_pip.errors import AuditError
from safe_pip.userdirs import state_home

if TYPE_CHECKING:
    from safe_pip.audit.ship import Shipper

#: How long ``append`` waits for another safe-pip holding the lock, per location.
LOCK_TIMEOUT_S = 5.0
#: locations whose lock stayed held for LOCK_TIMEOUT_S in this process: not waited for again
_HELD: set[str] = set()

_CHUNK = 1 << 22


def _is_private(directory: str) -> bool:
    """Inside this process's user state dir (``$XDG_STATE_HOME``, ``~/.local/state``):
    directories there are created 0700 and files 0600, as the XDG spec asks."""
    home = state_home(os.environ)
    return home is not None and (
        directory == home or directory.startswith(home.rstrip(os.sep) + os.sep)
    )


def _shared_mode(directory: str) -> int:
    """A file's mode in ``directory``: owner rw, plus the read/write the dir gives group/others.

    So a log in a group-writable env (``0o2775``) is ``0o664`` and every member
    can append; in a ``0o755`` dir it is ``0o644``.
    """
    try:
        dir_mode = os.stat(directory).st_mode
    except OSError:
        return 0o644
    if dir_mode & stat.S_ISVTX and not dir_mode & stat.S_IROTH:
        # a drop box (protect's users dir): each file the writer's, read by the admins' group
        return 0o640
    return 0o600 | (dir_mode & 0o066)


def _make_dirs(directory: str, private: bool) -> None:
    missing: list[str] = []
    probe = directory
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for path in reversed(missing):
        if private:
            mode = 0o700
        else:
            parent_mode = os.stat(os.path.dirname(path)).st_mode
            mode = 0o700 | (parent_mode & (0o077 | stat.S_ISGID | stat.S_ISVTX))
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            continue
        os.chmod(path, mode)  # past the umask


def _open_shared(path: str, flags: int, mode: int) -> int:
    """Open a regular file (never a symlink, FIFO or device), creating it with ``mode``.

    An existing file is opened without O_CREAT, so ``fs.protected_regular`` does
    not refuse a log another user created in a sticky directory.
    """
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    with contextlib.suppress(FileNotFoundError):
        # before opening: a file another user made unwritable for us is refused as theirs too
        if os.lstat(path).st_uid != os.geteuid() and _sticky(os.path.dirname(path) or "."):
            raise OSError(errno.EPERM, "owned by another user in a shared directory", path)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)  # past the umask
        except FileExistsError:
            fd = os.open(path, flags)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    if info.st_uid != os.geteuid() and _sticky(os.path.dirname(path) or "."):
        # in a sticky dir anyone may create a file under any name: someone else's file
        # there is never trusted (it could be made to catch this user's records)
        os.close(fd)
        raise OSError(errno.EPERM, "owned by another user in a shared directory", path)
    return fd


def _sticky(directory: str) -> bool:
    try:
        mode = os.stat(directory).st_mode
    except OSError:
        return False
    # /tmp-like dirs and the drop box; not an env's own log dir, which root may own
    return bool(mode & stat.S_ISVTX) and bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _lock(lock_path: str, mode: int) -> Callable[[], None]:
    """Hold ``lock_path`` exclusively; returns the function that releases it."""
    fd = _open_shared(lock_path, os.O_RDWR, mode)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the Linux hubs safe-pip is for
        os.close(fd)
        return _filelock(lock_path)
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as error:
            if error.errno in (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP):
                os.close(fd)
                return _filelock(lock_path)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise
        if time.monotonic() >= deadline:
            os.close(fd)
            raise OSError(errno.ETIMEDOUT, f"lock held by another process for {LOCK_TIMEOUT_S:g} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.01)

    def release() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    return release


def _filelock(lock_path: str) -> Callable[[], None]:
    """filelock's own lock, for filesystems without flock (it falls back to a soft lock)."""
    import filelock

    lock = filelock.FileLock(lock_path, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise OSError(errno.ETIMEDOUT, "lock held by another process") from error

    def release() -> None:
        lock.release()

    return release


def _last_line(fd: int, size: int) -> tuple[bytes | None, bool]:
    """(the last line without its newline or None for an empty file, file ends with a newline)."""
    if size == 0:
        return None, True
    block = 4096
    position = size
    buffer = b""
    while True:
        count = min(block, position)
        position -= count
        buffer = os.pread(fd, count, position) + buffer
        terminated = buffer.endswith(b"\n")
        body = buffer[:-1] if terminated else buffer
        cut = body.rfind(b"\n")
        if cut >= 0 or position == 0:
            return body[cut + 1 :], terminated
        block = min(block * 4, _CHUNK)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _append_to(path: str, record: Mapping[str, Any], fsync: bool) -> bytes:
    """Append ``record`` to ``path``; returns the line written (without its newline)."""
    directory = os.path.dirname(path) or "."
    private = _is_private(directory)
    _make_dirs(directory, private)
    mode = 0o600 if private else _shared_mode(directory)
    release = _lock(path + LOCK_SUFFIX, mode)
    try:
        fd = _open_shared(path, os.O_RDWR | os.O_APPEND, mode)
        try:
            size = os.fstat(fd).st_size
            last, terminated = _last_line(fd, size)
            chained = {**record, "prev": None if last is None else line_hash(last)}
            if not terminated and last is not None:
                # a torn last line (a writer killed mid-write) stays a line of its own,
                # marked here so that --verify tells it from an edit
                chained["torn_before"] = len(last)
            data = json.dumps(chained, separators=(",", ":"), default=str).encode("ascii")
            _write_durably(fd, size, (b"" if terminated else b"\n") + data + b"\n", fsync)
        finally:
            os.close(fd)
    finally:
        release()
    return data


def _write_durably(fd: int, size: int, data: bytes, fsync: bool) -> None:
    """Write ``data`` at the end (``size``) and, with ``fsync``, wait for the disk; on any
    failure (a full disk, a quota, an I/O error) cut the file back to ``size``, so a
    short write leaves no torn line behind, and raise."""
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


def append(
    record: Mapping[str, Any],
    locations: Sequence[str],
    *,
    fsync: bool = False,
    ship: Shipper | None = None,
) -> str:
    """Append ``record`` to the first location that works; returns its path.

    The record is redacted again and chained (``prev``) to the file's last line.
    Raises AuditError when no location works.  ``fsync`` also waits for the
    disk (see docs/performance.md for what it costs).  ``ship`` also sends the
    line to syslog/the journal (after the local write, whether or not it worked).
    """
    redacted = redact_record(dict(record))
    redacted["packages"] = sorted(record_packages(redacted))
    problems = []
    for path in locations:
        if path in _HELD:
            problems.append(f"{path}: its lock is still held by another process")
            continue
        try:
            line = _append_to(path, redacted, fsync)
        except OSError as error:
            if error.errno == errno.ETIMEDOUT:
                _HELD.add(path)  # one wait per location and process: bounded in all
            problems.append(f"{path}: {error.strerror or error}")
            continue
        if ship is not None:
            ship.ship(redacted, line)
        if problems and any("another user" in problem for problem in problems):
            # say so: the record is not where the admin looks first
            with contextlib.suppress(OSError):
                os.write(2, f"safe-pip: note: {'; '.join(problems)}; recorded in {path}\n".encode())
        return path
    if ship is not None:  # not kept here: the hub's log may still have it
        ship.ship(redacted, json.dumps(redacted, separators=(",", ":"), default=str).encode())
    raise AuditError(
        "cannot write the audit record: " + ("; ".join(problems) or "no location configured"),
        hint="ask the admin to make the env's var/log/safe-pip writable for you, "
        "or to set audit.location in the policy",
    )
