"""The one way safe-pip replaces a file: a temporary file next to it, then ``os.replace``.

Readers see the old file or the new one, never a part of either.  The temporary
file is created exclusively (``mkstemp``: no symlink is followed) and removed
when anything fails.
"""

from __future__ import annotations

import contextlib
import os


def _default_mode(path: str) -> int:
    """What a plain ``open(path, "w")`` would leave: the file's mode, else 0o666 less umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(
    path: str,
    text: str,
    *,
    mode: int | None = None,
    dir_mode: int | None = None,
    durable: bool = False,
) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one step.

    ``mode``: the new file's permissions (default: as a plain write would leave
    them).  ``dir_mode``: create the parent directories with this mode if they
    are missing.  ``durable``: fsync the data before the rename.  Raises
    ``OSError``; callers decide whether a failed write matters.
    """
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if dir_mode is not None:
        os.makedirs(directory, mode=dir_mode, exist_ok=True)
    final_mode = _default_mode(target) if mode is None else mode
    import tempfile  # not on the start-up path of commands that write nothing

    handle, temp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
    )
    try:
        data = text.encode("utf-8", "surrogateescape")  # bytes read from disk go back as read
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temp, final_mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
