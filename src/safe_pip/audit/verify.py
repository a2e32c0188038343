"""The hash chain check of ``safe-pip log --verify``."""

from __future__ import annotations

import re

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

    sha256 = hashlib.sha256
    prev_field = re.compile(_PREV)
    torn_field = re.compile(_TORN)
    problems: list[str] = []
    notes: list[str] = []
    previous: str | None = None
    #: (number, length) of the line before when it was not a whole record
    damaged: tuple[int, int] | None = None
    number = 0
    try:
        for start, end, unterminated in windows_forward(buffer):
            lines = buffer[start:end].split(b"\n")
            release_pages(buffer, start, end)
            if not unterminated:
                lines.pop()  # after the window's final newline
            last = len(lines) - 1
            for index, line in enumerate(lines):
                number += 1
                expected = previous
                previous = sha256(line).hexdigest()
                if unterminated and index == last:
                    notes.append(
                        f"line {number}: unfinished (no newline at the end): a write in "
                        "progress, or a torn write the next record will mark"
                    )
                    break
                found = prev_field.search(line)
                whole = found is not None and line.startswith(b"{") and line.endswith(b"}")
                torn = torn_field.search(line) if whole else None
                if damaged is not None:
                    if torn is not None and int(torn.group(1)) == damaged[1]:
                        notes.append(
                            f"line {damaged[0]}: a torn write (a writer stopped mid-line), "
                            f"marked by line {number}; not an edit"
                        )
                    else:
                        problems.append(
                            f"line {damaged[0]}: not a JSON record with a prev field "
                            "(an edit, not a marked torn write)"
                        )
                    damaged = None
                if found is None or not whole:
                    damaged = (number, len(line))
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
        if damaged is not None:
            problems.append(f"line {damaged[0]}: not a JSON record with a prev field")
    finally:
        close_buffer(buffer)
    return not problems, problems + notes
