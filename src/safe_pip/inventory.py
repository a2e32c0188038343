"""The installed distributions of an env, read from site-packages without importing pip.

A scan lists ``*.dist-info`` and ``*.egg-info`` entries (name and version from
the directory name, cheap: one ``scandir`` and one ``stat`` per entry);
``installer_of`` reads one distribution's ``INSTALLER`` and ``details`` also its
``direct_url.json``, only when a caller needs them.

``InstallerCache`` remembers the ``INSTALLER`` of every dist-info of an env by
the dist-info's stamp (inode, mtime), so that a question about every
distribution (``safe-pip status``) reads only the ones that changed: pip and
conda both write a new dist-info directory when they (re)install.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from safe_pip.atomicwrite import write_atomic
from safe_pip.lazyre import lazy
from safe_pip.readfile import MiB, read_bytes, read_head
from safe_pip.userdirs import cache_dir
from safe_pip.values import frozen

_SEPARATORS = lazy(r"[-_.]+")
_PLAIN_NAME = lazy(r"[a-z0-9]+\Z")


def distribution_key(name: str) -> str:
    """PEP 503 normalisation (``Foo_Bar.baz`` -> ``foo-bar-baz``), fast for the common case."""
    if _PLAIN_NAME.match(name):
        return name
    return _SEPARATORS.sub("-", name).lower()


class Installed(NamedTuple):
    key: str  # normalised name (PEP 503)
    name: str
    version: str
    path: str  # the .dist-info / .egg-info path
    #: (inode, mtime_ns): changes when the dist-info is rewritten (a reinstall)
    stamp: tuple[int, int] = (0, 0)


@frozen
class Details:
    installer: str
    direct_url: Mapping[str, Any] | None


def _from_entry(path: str, entry: str, stamp: tuple[int, int]) -> Installed | None:
    if entry.endswith(".dist-info"):
        name, sep, version = entry[:-10].rpartition("-")
        if not sep:
            return None
    elif entry.endswith(".egg-info"):
        stem = entry[:-9]
        parts = stem.split("-")
        if len(parts) < 2:
            version = _egg_info_version(path)
            name = stem
        else:
            name, version = parts[0], parts[1]
    else:
        return None
    if not name:
        return None
    return Installed(distribution_key(name), name, version, path, stamp)


def _egg_info_version(path: str) -> str:
    target = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        head = read_head(target, 64 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""
    for line in head.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            break
    return ""


def scan_all(site_dirs: Iterable[str]) -> list[Installed]:
    """Every ``.dist-info``/``.egg-info`` entry, in ``sys.path`` order (site dirs in the
    order given, entries sorted by name).  One name may appear more than once: pip's
    ``--ignore-installed`` and ``--target`` into site-packages leave a second copy."""
    found: list[Installed] = []
    for directory in dict.fromkeys(site_dirs):
        try:
            with os.scandir(directory) as iterator:
                entries = sorted(
                    (e for e in iterator if e.name.endswith((".dist-info", ".egg-info"))),
                    key=lambda e: e.name,
                )
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat()
                stamp = (info.st_ino, info.st_mtime_ns)
            except OSError:
                stamp = (0, 0)
            item = _from_entry(entry.path, entry.name, stamp)
            if item is not None:
                found.append(item)
    return found


def scan(site_dirs: Iterable[str]) -> dict[str, Installed]:
    """Installed distributions by normalised name (the first site dir wins, as on sys.path)."""
    found: dict[str, Installed] = {}
    for item in scan_all(site_dirs):
        found.setdefault(item.key, item)
    return found


def installer_of(path: str) -> str:
    """The ``INSTALLER`` of a ``.dist-info`` directory ('' when absent or unreadable)."""
    try:
        return read_head(os.path.join(path, "INSTALLER"), 256).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def details(item: Installed) -> Details:
    installer = ""
    direct_url: Mapping[str, Any] | None = None
    if os.path.isdir(item.path):
        installer = installer_of(item.path)
        try:
            data = json.loads(read_bytes(os.path.join(item.path, "direct_url.json"), limit=MiB))
            if isinstance(data, dict):
                direct_url = data
        except (OSError, ValueError, RecursionError):
            pass
    return Details(installer=installer, direct_url=direct_url)


_CACHE_FORMAT = "safe-pip/installers"
_CACHE_VERSION = 1
#: a stamp this recent may hide a second change within the clock's resolution
_RACY_NS = 2_000_000_000


class InstallerCache:
    """``INSTALLER`` of each dist-info of one env, kept in ``$XDG_CACHE_HOME/safe-pip/``
    by the dist-info's stamp; ``save`` writes it back when something changed."""

    def __init__(self, prefix: str, environ: Mapping[str, str]) -> None:
        self._prefix = os.path.realpath(prefix)
        self._file = _cache_file(self._prefix, environ)
        self._old: dict[str, list[Any]] = self._load() if self._file else {}
        self._new: dict[str, list[Any]] = {}
        self._changed = False
        self._fresh = time.time_ns() - _RACY_NS

    def _load(self) -> dict[str, list[Any]]:
        assert self._file is not None
        try:
            data = json.loads(read_bytes(self._file, limit=64 * MiB))
        except (OSError, ValueError, RecursionError):
            return {}
        if not (
            isinstance(data, dict)
            and data.get("format") == _CACHE_FORMAT
            and data.get("version") == _CACHE_VERSION
            and data.get("prefix") == self._prefix
            and isinstance(data.get("entries"), dict)
        ):
            return {}
        return data["entries"]  # type: ignore[no-any-return]

    def installer(self, item: Installed) -> str:
        if not item.path.endswith(".dist-info"):
            return ""
        ino, mtime = item.stamp
        known = self._old.get(item.path)
        if (
            isinstance(known, list)
            and len(known) == 3
            and known[0] == ino
            and known[1] == mtime
            and isinstance(known[2], str)
        ):
            self._new[item.path] = known
            return known[2]
        value = installer_of(item.path)
        if mtime and mtime < self._fresh:
            self._new[item.path] = [ino, mtime, value]
        self._changed = True
        return value

    def save(self) -> None:
        """Write the entries asked about in this run (the others are gone or unasked)."""
        if self._file is None or not (self._changed or len(self._new) != len(self._old)):
            return
        document = {
            "format": _CACHE_FORMAT,
            "version": _CACHE_VERSION,
            "prefix": self._prefix,
            "entries": self._new,
        }
        with contextlib.suppress(OSError, ValueError):
            text = json.dumps(document, separators=(",", ":"))
            write_atomic(self._file, text, mode=0o600, dir_mode=0o700)


def _cache_file(prefix: str, environ: Mapping[str, str]) -> str | None:
    base = cache_dir(environ)
    if base is None:
        return None
    return os.path.join(base, f"installers-{zlib.crc32(os.fsencode(prefix)):08x}.json")
