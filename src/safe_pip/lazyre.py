"""Regular expressions compiled on first use.

Compiling a pattern costs 0.1 to 1 ms, and a module's patterns compiled at import
are paid by every safe-pip command that imports it, used or not (about 10 ms on a
guarded install).  ``lazy(pattern, flags)`` stands in for ``re.compile(pattern,
flags)``: the same object to the type checker, compiled on its first use.  Not
even ``re`` is imported before then (with ``enum``, a few milliseconds of the start
of every guarded command): give flags inline, ``(?i)``, ``(?a)``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import AnyStr


class _Lazy:
    """Compiles on the first attribute asked for, then holds the compiled pattern's
    methods itself: later calls cost what a compiled pattern's do (no ``__getattr__``)."""

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._pattern = pattern
        self._flags = flags

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        import re

        compiled = re.compile(self._pattern, self._flags)
        for attribute in _PATTERN_ATTRIBUTES:
            setattr(self, attribute, getattr(compiled, attribute))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy({self._pattern!r}, {self._flags})"


_PATTERN_ATTRIBUTES = (
    "match",
    "fullmatch",
    "search",
    "sub",
    "subn",
    "split",
    "findall",
    "finditer",
    "pattern",
    "flags",
    "groups",
    "groupindex",
)


def lazy(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, compiled when first used."""
    return _Lazy(pattern, int(flags))  # type: ignore[return-value]


__all__ = ["lazy"]
