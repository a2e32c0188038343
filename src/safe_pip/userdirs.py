"""The per-user directories safe-pip keeps things in (XDG base directories)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping


def _xdg(environ: Mapping[str, str], variable: str, default: tuple[str, ...]) -> str | None:
    configured = environ.get(variable, "")
    if configured and os.path.isabs(configured):
        return os.path.join(configured, "safe-pip")
    home = environ.get("HOME") or os.path.expanduser("~")
    if not os.path.isabs(home):
        return None
    return os.path.join(home, *default, "safe-pip")


def cache_dir(environ: Mapping[str, str]) -> str | None:
    """``$XDG_CACHE_HOME/safe-pip`` (default ``~/.cache/safe-pip``); None without a home."""
    return _xdg(environ, "XDG_CACHE_HOME", (".cache",))
