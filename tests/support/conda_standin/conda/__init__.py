"""A stand-in for conda, for conda-store-server in tests only (conda is not on PyPI).

See ../README.md.  Each module holds what conda-store-server uses of it at
start-up; any other name it imports is a placeholder that fails when called.
"""

from __future__ import annotations

from typing import Callable

__version__ = "0.0.0"


def missing(name: str) -> Callable[..., object]:
    """A module ``__getattr__``: any other name is a function that raises."""

    def placeholder(*args: object, **kwargs: object) -> object:
        raise NotImplementedError(f"the stand-in for conda has no {name}")

    return placeholder
