"""The hash chain check of ``safe-pip log --verify``."""

from __future__ import annotations

import re

from safe_pip.audit.reader import close_buffer, map_file, release_pages, windows_forward

_PREV = rb'"prev":(?:null|"([0-9a-f]{64})")'


def verify(path: str) -> tuple[bool, list[str]]:
    """Check the hash chain of one log: (intact, problems by line number).

    Each line must hold ``"prev":`` with the sha256 of the line before (null
    for the first line).  Edited, removed, inserted or reordered lines, damaged
    lines and a truncated start all show.  Only the chain is checked, not the
    JSON of each line (an edit anywhere breaks the next line's link anyway).
    """
    buffer = map_file(path)
    if buffer is None:
        return True, []
    import hashlib  # OpenSSL's sha256 is several times faster in bulk than the builtin one

    sha256 = hashlib.sha256
    prev_field = re.compile(_PREV)
    problems: list[str] = []
    previous: str | None = None
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
        close_buffer(buffer)
    return not problems, problems
