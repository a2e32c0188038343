"""The per-user directories safe-pip keeps things in (XDG base directories), in one place."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping


def home_dir(environ: Mapping[str, str]) -> str | None:
    """``$HOME`` when absolute, else the user's entry in the password database."""
    home = environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_dir or None
    except (ImportError, KeyError):
        return None


def _base(environ: Mapping[str, str], variable: str, *default: str) -> str | None:
    """``$<variable>`` when absolute (the XDG rule), else ``~/<default>``; None without a home."""
    configured = environ.get(variable, "")
    if os.path.isabs(configured):
        return configured
    home = home_dir(environ)
    return os.path.join(home, *default) if home is not None else None


def cache_dir(environ: Mapping[str, str]) -> str | None:
    """``$XDG_CACHE_HOME/safe-pip`` (default ``~/.cache/safe-pip``); None without a home."""
    base = _base(environ, "XDG_CACHE_HOME", ".cache")
    return os.path.join(base, "safe-pip") if base is not None else None


def state_home(environ: Mapping[str, str]) -> str | None:
    """``$XDG_STATE_HOME``, else ``~/.local/state`` (None without a home directory)."""
    return _base(environ, "XDG_STATE_HOME", ".local", "state")


def data_home(environ: Mapping[str, str]) -> str | None:
    """``$XDG_DATA_HOME``, else ``~/.local/share`` (None without a home directory)."""
    return _base(environ, "XDG_DATA_HOME", ".local", "share")
