"""The installed distributions of an env, read from site-packages without importing pip.

A scan lists ``*.dist-info`` and ``*.egg-info`` entries (name and version from
the directory name, cheap); ``details`` reads ``INSTALLER`` and
``direct_url.json`` of one distribution when a caller needs them.
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


def scan(site_dirs: Iterable[str]) -> dict[str, Installed]:
    """Installed distributions by normalised name (the first site dir wins, as on sys.path)."""
    found: dict[str, Installed] = {}
    for directory in dict.fromkeys(site_dirs):
        try:
            with os.scandir(directory) as iterator:
                entries = sorted(iterator, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                info = entry.stat()
                stamp = (info.st_ino, info.st_mtime_ns)
            except OSError:
                stamp = (0, 0)
            item = _from_entry(directory, entry.name, stamp)
            if item is not None and item.key not in found:
                found[item.key] = item
    return found


def details(item: Installed) -> Details:
    installer = ""
    direct_url: Mapping[str, Any] | None = None
    if os.path.isdir(item.path):
        try:
            with open(os.path.join(item.path, "INSTALLER"), encoding="utf-8") as handle:
                installer = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            pass
        try:
            with open(os.path.join(item.path, "direct_url.json"), encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict):
                direct_url = data
        except (OSError, ValueError):
            pass
    return Details(installer=installer, direct_url=direct_url)
