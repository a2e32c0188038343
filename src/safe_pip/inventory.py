"""The installed distributions of an env, read from site-packages without importing pip.

A scan lists ``*.dist-info`` and ``*.egg-info`` entries (name and version from
the directory name, cheap: one ``scandir`` and one ``stat`` per entry);
``installer_of`` reads one distribution's ``INSTALLER`` and ``details`` also its
``direct_url.json``, only when a caller needs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from safe_pip.environment import normalize_name


@dataclass(frozen=True)
class Installed:
    key: str  # normalised name (PEP 503)
    name: str
    version: str
    path: str  # the .dist-info / .egg-info path
    #: changes when the dist-info is rewritten (a reinstall of the same version)
    stamp: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Details:
    installer: str
    direct_url: Mapping[str, Any] | None

    @property
    def editable(self) -> bool:
        info = (self.direct_url or {}).get("dir_info") or {}
        return bool(info.get("editable"))


def _from_entry(directory: str, entry: str, stamp: tuple[int, int]) -> Installed | None:
    if entry.endswith(".dist-info"):
        stem = entry[: -len(".dist-info")]
        name, sep, version = stem.rpartition("-")
        if not sep:
            return None
    elif entry.endswith(".egg-info"):
        stem = entry[: -len(".egg-info")]
        parts = stem.split("-")
        if len(parts) < 2:
            version = _egg_info_version(os.path.join(directory, entry))
            name = stem
        else:
            name, version = parts[0], parts[1]
    else:
        return None
    if not name:
        return None
    return Installed(normalize_name(name), name, version, os.path.join(directory, entry), stamp)


def _egg_info_version(path: str) -> str:
    target = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    try:
        with open(target, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    except OSError:
        pass
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
            item = _from_entry(directory, entry.name, stamp)
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
        with open(os.path.join(path, "INSTALLER"), "rb") as handle:
            return handle.read(256).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def details(item: Installed) -> Details:
    installer = ""
    direct_url: Mapping[str, Any] | None = None
    if os.path.isdir(item.path):
        installer = installer_of(item.path)
        try:
            with open(os.path.join(item.path, "direct_url.json"), encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict):
                direct_url = data
        except (OSError, ValueError):
            pass
    return Details(installer=installer, direct_url=direct_url)
