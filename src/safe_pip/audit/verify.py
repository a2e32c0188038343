"""The hash chain check of ``safe-pip log --verify``."""

from __future__ import annotations

import re
from typing import Any

from safe_pip.audit.reader import close_buffer, map_file, release_pages, windows_forward

_PREV = rb'"prev":(?:null|"([0-9a-f]{64})")'
_TORN = rb'"torn_before":([0-9]{1,12})[,}]'


def verify(path: str) -> tuple[bool, list[str]]:
    """Check the hash chain of one log: (intact, findings by line number).

    Each line must hold ``"prev":`` with the sha256 of the line before (null
    for the first line).  Edited, removed, inserted or reordered lines, damaged
    lines and a truncated start all show.  Only the chain is checked, not the
    JSON of each line (an edit anywhere breaks the next line's link anyway).

    A torn write (a writer killed in the middle of a line) is not an edit: the
    next writer marks it (``torn_before``: the torn line's length) and chains to
    it, and an unfinished last line is a write in progress or not yet marked.
    Those are findings that leave the log intact.
    """
    buffer = map_file(path)
    if buffer is None:
        return True, []
    import hashlib  # OpenSSL's sha256 is several times faster in bulk than the builtin one

    chain = _Chain(hashlib.sha256)
    try:
        for start, end, unterminated in windows_forward(buffer):
            lines = buffer[start:end].split(b"\n")
            release_pages(buffer, start, end)
            if not unterminated:
                lines.pop()  # after the window's final newline
            last = len(lines) - 1
            for index, line in enumerate(lines):
                if unterminated and index == last:
                    chain.unfinished()
                else:
                    chain.check(line)
        chain.end()
    finally:
        close_buffer(buffer)
    return not chain.problems, chain.problems + chain.notes


class _Chain:
    """The walk of ``verify``: one line at a time, the line before remembered."""

    def __init__(self, sha256: Any) -> None:
        self.sha256 = sha256
        self.prev_field = re.compile(_PREV)
        self.torn_field = re.compile(_TORN)
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.previous: str | None = None
        self.number = 0
        #: (number, length) of the line before when it was not a whole record
        self.damaged: tuple[int, int] | None = None

    def unfinished(self) -> None:
        self.number += 1
        self.notes.append(
            f"line {self.number}: unfinished (no newline at the end): a write in "
            "progress, or a torn write the next record will mark"
        )

    def check(self, line: bytes) -> None:
        self.number += 1
        number, expected = self.number, self.previous
        self.previous = self.sha256(line).hexdigest()
        found = self.prev_field.search(line)
        whole = found is not None and line.startswith(b"{") and line.endswith(b"}")
        if self.damaged is not None:
            self._after_damaged(self.torn_field.search(line) if whole else None, number)
        if found is None or not whole:
            self.damaged = (number, len(line))
            return
        prev = found.group(1)
        if (prev.decode("ascii") if prev else None) == expected:
            return
        if expected is None:
            self.problems.append(
                f"line {number}: the first line chains to an earlier one "
                "(records were removed from the start)"
            )
        else:
            self.problems.append(
                f"line {number}: does not chain to line {number - 1} "
                "(a line before it was changed, removed or inserted)"
            )

    def _after_damaged(self, torn: re.Match[bytes] | None, number: int) -> None:
        assert self.damaged is not None
        bad, length = self.damaged
        self.damaged = None
        if torn is not None and int(torn.group(1)) == length:
            self.notes.append(
                f"line {bad}: a torn write (a writer stopped mid-line), "
                f"marked by line {number}; not an edit"
            )
        else:
            self.problems.append(
                f"line {bad}: not a JSON record with a prev field "
                "(an edit, not a marked torn write)"
            )

    def end(self) -> None:
        if self.damaged is not None:
            self.problems.append(f"line {self.damaged[0]}: not a JSON record with a prev field")
