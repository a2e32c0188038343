"""Drift: how far an env has moved from what conda's records and the audit log explain.

- ``unexplained``: installed distributions that neither a conda record nor the
  audit log accounts for (layered by a pip that left no record);
- ``user_site``: distributions in the user site-packages this env would import;
- ``overwritten``: conda-owned distributions whose files pip replaced (the record
  is there, its dist-info is gone or now says ``INSTALLER: pip``);
- ``layered``: pip changes followed by conda changes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from safe_pip.conda_records import RecordSet
from safe_pip.environment import Environment, EnvKind, normalize_name
from safe_pip.inventory import Installed, details, scan
from safe_pip.ownership import all_owners

#: what ensurepip/venv put into a fresh non-conda env
BOOTSTRAP_DISTS = frozenset({"pip", "setuptools", "wheel"})

_HEADER = re.compile(rb"^==> ?(.+?) ?<==\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Drift:
    unexplained: list[dict[str, str]] = field(default_factory=list)
    user_site: list[dict[str, str]] = field(default_factory=list)
    overwritten: list[dict[str, str]] = field(default_factory=list)
    layered: bool = False
    last_pip_change: str | None = None
    last_conda_change: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "unexplained": self.unexplained,
            "user_site": self.user_site,
            "overwritten": self.overwritten,
            "layered": self.layered,
            "last_pip_change": self.last_pip_change,
            "last_conda_change": self.last_conda_change,
        }


def last_history_time(prefix: str, tail_bytes: int = 65536) -> str | None:
    """The time of the newest ``==> time <==`` header, read from the end of the file."""
    path = os.path.join(prefix, "conda-meta", "history")
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - tail_bytes))
            data = handle.read()
    except OSError:
        return None
    headers = _HEADER.findall(data)
    if not headers:
        return None
    return str(headers[-1].decode("utf-8", "replace").strip())


def _iso(conda_time: str) -> str:
    """conda writes 'YYYY-MM-DD HH:MM:SS' (local time, no zone); compare on that shape."""
    return conda_time.replace(" ", "T")


def _dist_key(dist_info: str) -> str:
    """'lib/.../six-1.16.0.dist-info' -> 'six'."""
    base = os.path.basename(dist_info.rstrip("/"))
    for suffix in (".dist-info", ".egg-info"):
        if base.endswith(suffix):
            return normalize_name(base[: -len(suffix)].split("-")[0])
    return ""


def compute_drift(
    env: Environment,
    installed: Mapping[str, Installed],
    records: RecordSet,
    log_records: Iterable[Mapping[str, Any]],
) -> Drift:
    owners = all_owners(installed, records, env)
    explained_by_log: set[str] = set()
    last_pip: str | None = None
    for record in log_records:
        changes = record.get("changes") or {}
        touched = False
        for item in changes.get("installed", []) or []:
            if isinstance(item, dict) and item.get("name"):
                explained_by_log.add(normalize_name(str(item["name"])))
                touched = True
        if changes.get("removed"):
            touched = True
        if touched and record.get("time"):
            last_pip = max(last_pip or "", str(record["time"]))

    unexplained = []
    for key, item in sorted(installed.items()):
        owner = owners.get(key)
        if owner is not None and owner.conda:
            continue
        if key in explained_by_log:
            continue
        if not env.is_conda and key in BOOTSTRAP_DISTS:
            continue
        unexplained.append(
            {
                "name": item.name,
                "version": item.version,
                "owner": owner.owner if owner else "unknown",
            }
        )
        # a pip install that left no record still tells us roughly when
        if owner is not None and owner.owner == "pip":
            try:
                stamp = os.stat(item.path).st_mtime
            except OSError:
                continue
            import datetime

            when = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
            text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            last_pip = max(last_pip or "", text)

    user_site: list[dict[str, str]] = []
    if env.user_site_enabled and env.user_site and os.path.isdir(env.user_site):
        for _key, item in sorted(scan([env.user_site]).items()):
            user_site.append({"name": item.name, "version": item.version, "path": item.path})

    overwritten = []
    for conda_record in records.records:
        if conda_record.build.startswith("pypi_") or not conda_record.dist_infos:
            continue
        paths = [os.path.join(env.prefix, rel) for rel in conda_record.dist_infos]
        present = [p for p in paths if os.path.exists(p)]
        key = _dist_key(conda_record.dist_infos[0]) or normalize_name(conda_record.name)
        now = installed.get(key)
        if not present:
            if now is not None:
                overwritten.append(
                    {
                        "name": conda_record.name,
                        "conda_version": conda_record.version,
                        "installed_version": now.version,
                        "how": "replaced",
                    }
                )
            continue
        for path in present:
            if os.path.isdir(path):
                info = details(Installed(key, conda_record.name, conda_record.version, path))
                if info.installer == "pip":
                    overwritten.append(
                        {
                            "name": conda_record.name,
                            "conda_version": conda_record.version,
                            "installed_version": conda_record.version,
                            "how": "files rewritten by pip",
                        }
                    )
                    break

    last_conda = (
        last_history_time(env.prefix)
        if env.kind in (EnvKind.CONDA_ENV, EnvKind.CONDA_BASE)
        else None
    )
    layered = bool(last_pip and last_conda and _iso(last_conda) > last_pip[:19])
    return Drift(unexplained, user_site, overwritten, layered, last_pip, last_conda)
