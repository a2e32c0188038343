"""The one way safe-pip reads a file it does not own: regular files only, size-capped.

Every file safe-pip parses (the policy, pip's configuration, ``-r`` files,
``conda-meta/``, dist-info metadata, its own caches) may be written by someone
else: a FIFO or a device there would block a read forever, and a huge file
would take the memory.  ``read_bytes``:

* stats the path and refuses anything but a regular file *before* opening it
  (opening some devices has effects of its own);
* opens with ``O_NONBLOCK`` (a FIFO swapped in after the stat does not block
  the open) and ``fstat``s the descriptor again (nor the read);
* reads at most ``limit`` bytes, and refuses a longer file (also one that
  grows while it is read).

The null device (``/dev/null``, the usual way to switch a file off, as in
``PIP_CONFIG_FILE=/dev/null``) reads as an empty file.

Refusals are ``OSError`` subclasses with a readable ``strerror``, so callers
that already handle "cannot read" handle them too.  ``FileNotFoundError`` and
``IsADirectoryError`` pass through as the OS gives them.
"""

from __future__ import annotations

import errno
import io
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "FileTooLarge",
    "MiB",
    "NotRegularFile",
    "open_regular",
    "read_bytes",
    "read_head",
    "read_text",
]

MiB = 1 << 20


class NotRegularFile(OSError):
    """The path is a FIFO, a socket or a device: never read."""


class FileTooLarge(OSError):
    """The file is larger than the reader's limit."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_regular(mode: int, path: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    kind = _kind(mode)
    raise NotRegularFile(errno.EINVAL, f"{kind}, not a regular file; not read", path)


def _too_large(path: str, limit: int) -> FileTooLarge:
    return FileTooLarge(
        errno.EFBIG, f"larger than {_human(limit)}, the most safe-pip reads of it", path
    )


def _human(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _is_null_device(st: os.stat_result) -> bool:
    if not stat.S_ISCHR(st.st_mode):
        return False
    try:
        return st.st_rdev == os.stat(os.devnull).st_rdev
    except OSError:
        return False


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary mode, if it is a regular file (else NotRegularFile).

    The null device opens as an empty file.  For readers that seek (the end of a
    log); ``read_bytes`` for the others.
    """
    name = os.fspath(path)
    st = os.stat(name)
    if _is_null_device(st):
        return io.BytesIO()
    _check_regular(st.st_mode, name)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(name, flags | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(os.fstat(fd).st_mode, name)  # swapped between the stat and the open
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_bytes(path: str | os.PathLike[str], *, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them (else FileTooLarge)."""
    with open_regular(path) as handle:
        if isinstance(handle, io.BytesIO):  # the null device
            return b""
        if os.fstat(handle.fileno()).st_size > limit:
            raise _too_large(os.fspath(path), limit)
        # one byte past the limit tells a file that fits from one that grew while read
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise _too_large(os.fspath(path), limit)
    return data


def read_head(path: str | os.PathLike[str], size: int) -> bytes:
    """The first ``size`` bytes (or fewer) of the regular file ``path``."""
    with open_regular(path) as handle:
        return handle.read(size)


def read_text(
    path: str | os.PathLike[str], *, limit: int, encoding: str = "utf-8", errors: str = "strict"
) -> str:
    """``read_bytes`` decoded; a ``UnicodeDecodeError`` is the caller's to report."""
    return read_bytes(path, limit=limit).decode(encoding, errors)
