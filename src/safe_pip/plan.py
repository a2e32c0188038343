"""pip's own plan, checked: what each planned wheel will write, what an uninstall removes.

``preflight`` pauses pip once it has resolved (install: the wheels it is about
to install, with their members; uninstall: the distributions and files its
``UninstallPathSet`` would remove).  This module turns that plan into
``Conflict``s: a distribution conda installed that pip would replace or
remove (by name), and a *file* that a conda record lists, or that another
distribution's RECORD lists, which a planned wheel would overwrite or an
uninstall would delete (named with both owners).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from typing import Any

from safe_pip.conda_files import CondaFiles
from safe_pip.conda_records import RecordSet
from safe_pip.decide import Conflict
from safe_pip.environment import Environment, normalize_name
from safe_pip.inventory import Installed


def record_paths(item: Installed) -> set[str]:
    """Absolute paths a distribution's RECORD lists ({} when it has none)."""
    if not item.path.endswith(".dist-info"):
        return set()
    site = os.path.dirname(item.path)
    try:
        with open(os.path.join(item.path, "RECORD"), encoding="utf-8", errors="replace") as f:
            rows = list(csv.reader(f))
    except (OSError, csv.Error):
        return set()
    return {os.path.normpath(os.path.join(site, row[0])) for row in rows if row and row[0]}


def wheel_destinations(env: Environment, name: str, files: Mapping[str, Any]) -> list[str]:
    """Where pip puts the members of a wheel (and the scripts it generates) in ``env``."""
    paths: list[str] = []
    for member in files.get("wheel") or ():
        top, _, rest = str(member).partition("/")
        if top.endswith(".dist-info"):
            continue
        if top.endswith(".data") and rest:
            scheme, _, inner = rest.partition("/")
            base = {
                "purelib": env.purelib,
                "platlib": env.platlib,
                "scripts": env.scripts,
                "data": env.data,
                "headers": os.path.join(env.data, "include", f"python{env.short_version}", name),
            }.get(scheme)
            if base is not None and inner:
                paths.append(os.path.join(base, inner))
            continue
        paths.append(os.path.join(env.purelib, member))
    paths.extend(os.path.join(env.scripts, str(s)) for s in files.get("scripts") or ())
    return paths


class _Owners:
    """Who owns a file on disk: a conda record, or another distribution's RECORD."""

    def __init__(
        self,
        env: Environment,
        installed: Mapping[str, Installed],
        environ: Any,
        records: RecordSet | None = None,
    ) -> None:
        from safe_pip.conda_records import read_records

        self.env = env
        self.installed = installed
        self.conda = CondaFiles(env.prefix, environ)
        records = records if records is not None else read_records(env.prefix)
        self._records = {r.file: r for r in records.records}
        self._record_sets: dict[str, set[str]] = {}

    def records_of(self, key: str) -> set[str]:
        item = self.installed.get(key)
        if item is None:
            return set()
        if key not in self._record_sets:
            self._record_sets[key] = record_paths(item)
        return self._record_sets[key]

    def conda_owner(self, path: str) -> tuple[str, str, str] | None:
        """(name, version, channel) of the conda package that lists ``path``."""
        rel = self.conda.relative(path)
        record_file = self.conda.owner(rel) if rel is not None else None
        if record_file is None:
            return None
        record = self._records.get(record_file)
        if record is None:
            name = os.path.basename(record_file)[: -len(".json")]
            return name, "", ""
        from safe_pip.ownership import channel_label

        return record.name, record.version, channel_label(record.channel)

    def dist_owner(self, path: str, skip: Iterable[str]) -> Installed | None:
        skipped = set(skip)
        for key, item in self.installed.items():
            if key not in skipped and path in self.records_of(key):
                return item
        return None


def install_conflicts(
    env: Environment,
    report: Mapping[str, Any],
    installed: Mapping[str, Installed],
    environ: Any,
) -> list[Conflict] | None:
    """Files the planned wheels would overwrite that conda or another distribution owns.

    None when the plan does not say which files a wheel writes (then nothing can be
    checked, and the caller fails closed).
    """
    owners: _Owners | None = None
    conflicts: list[Conflict] = []
    for item in report.get("install") or []:
        if not isinstance(item, dict):
            continue
        files = item.get("safe_pip_files")
        if not isinstance(files, dict):
            if item.get("safe_pip_files_error") or "safe_pip_files" in item:
                return None
            continue  # an old report without files: checked by name only
        metadata = item.get("metadata") or {}
        name, version = str(metadata.get("name", "")), str(metadata.get("version", ""))
        existing = [p for p in wheel_destinations(env, name, files) if os.path.lexists(p)]
        if not existing:
            continue
        if owners is None:
            owners = _Owners(env, installed, environ)
        for owner, paths in _file_owners(owners, normalize_name(name), existing).items():
            conflicts.append(
                Conflict(*owner, version, files=tuple(paths), by=f"{name} {version} (pip)")
            )
    return conflicts


def _file_owners(
    owners: _Owners, key: str, paths: Iterable[str]
) -> dict[tuple[str, str, str], list[str]]:
    """(name, version, channel or "pip") -> the paths among ``paths`` it owns, for files
    that belong neither to distribution ``key`` itself nor to nobody."""
    hits: dict[tuple[str, str, str], list[str]] = {}
    for path in paths:
        if path in owners.records_of(key):
            continue  # the distribution being upgraded or reinstalled: its own file
        conda = owners.conda_owner(path)
        if conda is not None:
            # a conda package of the same name is the name check's, which knows it by its
            # dist-info: one without a dist-info (a bare module) is caught only here
            if normalize_name(conda[0]) != key or key not in owners.installed:
                hits.setdefault(conda, []).append(path)
            continue
        other = owners.dist_owner(path, (key,))
        if other is not None:
            hits.setdefault((other.name, other.version, "pip"), []).append(path)
    return hits


def planned_removals(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The distributions an uninstall plan removes (name, version, path, files)."""
    if not report:
        return []
    return [i for i in report.get("uninstall") or [] if isinstance(i, dict) and i.get("name")]


def uninstall_conflicts(
    env: Environment,
    report: Mapping[str, Any],
    installed: Mapping[str, Installed],
    environ: Any,
) -> list[Conflict]:
    """conda-owned distributions the plan removes, and conda's files it would delete."""
    from safe_pip.conda_records import read_records
    from safe_pip.ownership import owners

    removals = planned_removals(report)
    names = [str(i["name"]) for i in removals]
    records = read_records(env.prefix)
    found = owners(installed, records, env, names)
    conflicts = [
        Conflict(o.conda_package, o.version, o.channel_name, None, requested=True)
        for o in found.values()
        if o.conda
    ]
    by_name = {key for key, o in found.items() if o.conda}
    rest = [i for i in removals if normalize_name(str(i["name"])) not in by_name]
    if not rest:
        return conflicts
    listing = _Owners(env, installed, environ, records)
    files = listing.conda
    for item in rest:
        hits: dict[tuple[str, str, str], list[str]] = {}
        for path in item.get("files") or []:
            rel = files.relative(str(path))
            if rel is None or rel.split("/")[-2:-1] == ["__pycache__"]:
                continue
            conda = listing.conda_owner(str(path))
            if conda is not None:
                hits.setdefault(conda, []).append(str(path))
        for owner, paths in hits.items():
            by = f"{item['name']} {item.get('version', '')} (pip)"
            conflicts.append(
                Conflict(owner[0], owner[1], owner[2], None, files=tuple(paths), by=by)
            )
    return conflicts
