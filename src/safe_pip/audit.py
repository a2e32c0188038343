"""The audit log: one JSON line per mutating operation, appended under a lock, read from the end.

Records are built by ``base_record`` (who, where, what was asked; secrets
redacted) and completed by the guard (decision, outcome, changes).  ``append``
writes each as one line with one ``write`` on an ``O_APPEND`` descriptor while
holding ``<log>.lock``, and chains it to the line before (``prev``: sha256 of
that line).  ``log_locations`` says where records go, from the policy's
``audit.location``.  Readers (``read_records``, ``read_all``) map the file and
walk it in windows of whole lines, from the end for ``--limit``; ``--package``
is one regex pass for the name as the ``packages`` field spells it, so only
lines that name it are parsed.  Damaged lines are skipped and counted;
``verify`` checks the chain.  The format is docs/audit-log.md.

Start-up matters here (every install appends): the module imports nothing that
the pip path has not already loaded, and takes its lock with ``fcntl.flock``
directly (the lock ``filelock.FileLock`` takes on the same path; filelock itself
is imported only where flock is unavailable, its import alone costs 20-50 ms).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union

from safe_pip import __version__
from safe_pip.errors import AuditError
from safe_pip.redact import redact_argv, redact_requirement_file_lines, redact_text

if TYPE_CHECKING:
    import mmap

    from safe_pip.environment import Environment
    from safe_pip.pipcli import Operation
    from safe_pip.policy import Policy

#: The record format version (``schema`` in every record); docs/audit-log.md.
SCHEMA = 1
#: The env's own log, relative to its prefix.
ENV_LOG = os.path.join("var", "log", "safe-pip", "audit.jsonl")
LOCK_SUFFIX = ".lock"
#: How long ``append`` waits for another safe-pip holding the lock, per location.
LOCK_TIMEOUT_S = 10.0
#: Lines kept per requirement file in ``requested``.
MAX_FILE_LINES = 500

_TAIL_BLOCK = 1 << 16
_CHUNK = 1 << 22


# --- the record ---------------------------------------------------------------------------


def utc_time(epoch: float | None = None) -> str:
    """``2024-05-01T12:00:03.123456Z``: the fixed-width UTC form every record uses."""
    now = time.time() if epoch is None else epoch
    seconds = int(now)
    micros = round((now - seconds) * 1_000_000)
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


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

    The guard sets ``decision``, ``rule``, ``reason``, ``outcome``, ``exit_code``,
    ``duration_s``, ``changes``, ``requested`` and ``index``; ``append`` sets
    ``prev`` and ``packages``.
    """
    variables = os.environ if environ is None else environ
    uid = os.getuid()
    return {
        "schema": SCHEMA,
        "id": new_id(),
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
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return []
    lines = []
    for line in redact_requirement_file_lines(text):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            lines.append(stripped)
    return lines[:MAX_FILE_LINES]


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


# --- where records go ---------------------------------------------------------------------


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


def prefix_hash(prefix: str) -> str:
    """12 hex digits naming a prefix in per-user file names (``{prefix_hash}``)."""
    return line_hash(os.path.normpath(prefix).encode("utf-8", "surrogateescape"))[:12]


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64].lstrip(".") or "env"


def state_home(environ: Mapping[str, str]) -> str | None:
    """``$XDG_STATE_HOME``, else ``~/.local/state`` (None without a home directory)."""
    configured = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(configured):
        return configured
    home = environ.get("HOME", "")
    if not os.path.isabs(home):
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            return None
    return os.path.join(home, ".local", "state")


def user_log_path(env: Environment, environ: Mapping[str, str]) -> str | None:
    """The per-user file for this env: ``<state home>/safe-pip/<env_name>-<prefix_hash>.jsonl``."""
    home = state_home(environ)
    if home is None:
        return None
    name = f"{_safe_file_name(env.name)}-{prefix_hash(env.prefix)}.jsonl"
    return os.path.join(home, "safe-pip", name)


def log_locations(env: Environment, policy: Policy | None, environ: Mapping[str, str]) -> list[str]:
    """Where this env's records go, in order of preference (``append`` uses the first that works).

    ``audit.location``: ``"env"`` (default; also without a usable policy) ->
    ``<prefix>/var/log/safe-pip/audit.jsonl`` then the per-user file; ``"user"``
    -> the per-user file only; an absolute path -> that path only, with
    ``{env_name}`` and ``{prefix_hash}`` expanded.
    """
    setting = "env" if policy is None else policy.text("audit.location")
    user_file = user_log_path(env, environ)
    if setting == "env":
        locations = [os.path.join(env.prefix, ENV_LOG)]
        if user_file is not None:
            locations.append(user_file)
        return locations
    if setting == "user":
        return [user_file] if user_file is not None else []
    path = setting.replace("{env_name}", _safe_file_name(env.name))
    path = path.replace("{prefix_hash}", prefix_hash(env.prefix))
    return [path]


def _could_open(path: str) -> bool:
    """``path`` is a regular file we may read and write, or could be created (no side effects)."""
    if os.path.lexists(path):
        return (
            os.path.isfile(path) and not os.path.islink(path) and os.access(path, os.R_OK | os.W_OK)
        )
    probe = os.path.dirname(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)


def writable_location(locations: Sequence[str]) -> str | None:
    """The first location ``append`` can most likely write, or None; creates nothing.

    For the ``audit.required`` check before pip runs.  A full disk or a lock
    held for longer than LOCK_TIMEOUT_S can still make ``append`` fail.
    """
    for path in locations:
        if _could_open(path) and _could_open(path + LOCK_SUFFIX):
            return path
    return None


# --- writing ------------------------------------------------------------------------------


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
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
            with contextlib.suppress(OSError):
                os.fchmod(fd, mode)  # past the umask
        except FileExistsError:
            fd = os.open(path, flags)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd


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
        pause = min(pause * 2, 0.05)

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


def _append_to(path: str, record: Mapping[str, Any], fsync: bool) -> None:
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
            data = json.dumps(chained, separators=(",", ":"), default=str).encode("ascii")
            # a torn last line (crash mid-write) stays a line of its own
            _write_all(fd, (b"" if terminated else b"\n") + data + b"\n")
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        release()


def append(record: Mapping[str, Any], locations: Sequence[str], *, fsync: bool = False) -> str:
    """Append ``record`` to the first location that works; returns its path.

    The record is redacted again and chained (``prev``) to the file's last line.
    Raises AuditError when no location works.  ``fsync`` also waits for the
    disk (see docs/performance.md for what it costs).
    """
    redacted = redact_record(dict(record))
    redacted["packages"] = sorted(record_packages(redacted))
    problems = []
    for path in locations:
        try:
            _append_to(path, redacted, fsync)
        except OSError as error:
            problems.append(f"{path}: {error.strerror or error}")
            continue
        return path
    raise AuditError(
        "cannot write the audit record: " + ("; ".join(problems) or "no location configured"),
        hint="ask the admin to make the env's var/log/safe-pip writable for you, "
        "or to set audit.location in the policy",
    )


# --- reading ------------------------------------------------------------------------------

_REQUIREMENT_NAME = r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:[@<>=!~;(]|$)"
_EGG = r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)"
_PREV = rb'"prev":(?:null|"([0-9a-f]{64})")'


def requirement_name(text: str) -> str | None:
    """The project name a requirement string starts with (or its ``#egg=``), normalised."""
    from safe_pip.environment import normalize_name

    stripped = text.strip()
    if stripped.startswith("-"):
        option, _, value = stripped.partition(" ")
        if option not in ("-e", "--editable"):
            return None
        stripped = value.strip()
    egg = re.search(_EGG, stripped)
    if egg:
        return normalize_name(egg.group(1))
    if "://" in stripped.split("@", 1)[0] or stripped.startswith((".", "/", "~")):
        return None
    match = re.match(_REQUIREMENT_NAME, stripped)
    return normalize_name(match.group(1)) if match else None


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


def _windows_forward(buffer: _Buffer) -> Iterator[tuple[int, int, bool]]:
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


def _map(path: str) -> _Buffer | None:
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


def _close(buffer: _Buffer) -> None:
    if not isinstance(buffer, bytes):
        buffer.close()


def _done_with(buffer: _Buffer, start: int, end: int) -> None:
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
            _done_with(buffer, start, end)
            damaged += bad
            found.extend(reversed(records))
            if len(found) >= newest:
                break
    return list(reversed(found[:newest])), damaged


def _forward(
    buffer: _Buffer, selector: _Selector, on_damaged: Callable[[int], None]
) -> Iterator[dict[str, Any]]:
    try:
        for start, end, unterminated in _windows_forward(buffer):
            records, bad = selector.select(buffer, start, end, unterminated)
            _done_with(buffer, start, end)
            if bad:
                on_damaged(bad)
            yield from records
    finally:
        _close(buffer)


def read_records(
    path: str, *, newest: int | None = None, filters: RecordFilter | None = None
) -> tuple[list[dict[str, Any]], int]:
    """(matching records oldest first, number of damaged lines skipped) of one log file.

    With ``newest`` the file is read backwards in growing windows and reading
    stops at the newest ``newest`` matches; otherwise it is scanned forwards.
    Damaged lines are counted among the lines parsed (with ``package``, only
    lines that mention it are).  A missing file has no records.
    """
    buffer = _map(path)
    if buffer is None:
        return [], 0
    selector = _Selector(filters)
    if newest is not None:
        try:
            return _newest(buffer, newest, selector)
        finally:
            _close(buffer)
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
            buffer = _map(path)
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
            _close(buffer)
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


def verify(path: str) -> tuple[bool, list[str]]:
    """Check the hash chain of one log: (intact, problems by line number).

    Each line must hold ``"prev":`` with the sha256 of the line before (null
    for the first line).  Edited, removed, inserted or reordered lines, damaged
    lines and a truncated start all show.  Only the chain is checked, not the
    JSON of each line (an edit anywhere breaks the next line's link anyway).
    """
    buffer = _map(path)
    if buffer is None:
        return True, []
    import hashlib  # OpenSSL's sha256 is several times faster in bulk than the builtin one

    sha256 = hashlib.sha256
    prev_field = re.compile(_PREV)
    problems: list[str] = []
    previous: str | None = None
    number = 0
    try:
        for start, end, unterminated in _windows_forward(buffer):
            lines = buffer[start:end].split(b"\n")
            _done_with(buffer, start, end)
            if not unterminated:
                lines.pop()  # after the window's final newline
            last = len(lines) - 1
            for index, line in enumerate(lines):
                number += 1
                expected = previous
                previous = sha256(line).hexdigest()
                if unterminated and index == last:
                    problems.append(f"line {number}: incomplete (no newline at the end)")
                found = prev_field.search(line)
                if found is None or not (line.startswith(b"{") and line.endswith(b"}")):
                    problems.append(f"line {number}: not a JSON record with a prev field")
                    continue
                prev = found.group(1)
                if (prev.decode("ascii") if prev else None) == expected:
                    continue
                if expected is None:
                    problems.append(
                        f"line {number}: the first line chains to an earlier one "
                        "(records were removed from the start)"
                    )
                else:
                    problems.append(
                        f"line {number}: does not chain to line {number - 1} "
                        "(a line before it was changed, removed or inserted)"
                    )
    finally:
        _close(buffer)
    return not problems, problems
