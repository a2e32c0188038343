"""Who owns each installed distribution: conda, pip, or safe-pip (from the audit log).

A distribution is conda-owned when a ``conda-meta/*.json`` record lists its
``.dist-info/RECORD`` (or egg-info) among its files, when its ``INSTALLER``
says ``conda`` (or conda-pypi's ``conda-pypi``/``conda-via-whl``), or when its
record's build string is ``pypi_0`` (conda's view of a pip package: not owned).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from safe_pip.conda_records import CondaRecord, RecordSet
from safe_pip.environment import Environment, normalize_name
from safe_pip.inventory import Installed, details

CONDA_INSTALLERS = frozenset({"conda", "conda-pypi", "conda-via-whl"})


@dataclass(frozen=True)
class Owner:
    key: str
    name: str
    version: str
    owner: str  # "conda" or "pip" or "other:<installer>" or "unknown"
    channel: str = ""
    record: CondaRecord | None = None

    @property
    def conda(self) -> bool:
        return self.owner == "conda"

    def describe(self) -> str:
        where = f", {self.channel}" if self.channel else ""
        return f"{self.name} {self.version} ({self.owner}{where})"


def record_index(records: RecordSet, env: Environment) -> dict[str, CondaRecord]:
    """Map an absolute dist-info path to the conda record that installed it."""
    index: dict[str, CondaRecord] = {}
    for record in records.records:
        if record.build.startswith("pypi_"):
            continue  # conda's own note of a pip-installed package
        for rel in record.dist_infos:
            index[os.path.normpath(os.path.join(env.prefix, rel))] = record
    return index


def owner_of(item: Installed, index: Mapping[str, CondaRecord]) -> Owner:
    record = index.get(os.path.normpath(item.path))
    if record is None:
        # the dist-info may be reached through another path (lib64, symlinks)
        record = index.get(os.path.realpath(item.path))
    installer = details(item).installer
    if record is not None:
        return Owner(item.key, item.name, item.version, "conda", record.channel, record)
    if installer in CONDA_INSTALLERS:
        return Owner(item.key, item.name, item.version, "conda")
    if installer == "pip":
        return Owner(item.key, item.name, item.version, "pip")
    return Owner(
        item.key, item.name, item.version, f"other:{installer}" if installer else "unknown"
    )


def owners(
    installed: Mapping[str, Installed], records: RecordSet, env: Environment, names: Iterable[str]
) -> dict[str, Owner]:
    """Owners of the installed distributions among ``names`` (normalised or not)."""
    index = record_index(records, env)
    found: dict[str, Owner] = {}
    for name in names:
        key = normalize_name(name)
        item = installed.get(key)
        if item is not None:
            found[key] = owner_of(item, index)
    return found


def all_owners(
    installed: Mapping[str, Installed], records: RecordSet, env: Environment
) -> dict[str, Owner]:
    return owners(installed, records, env, installed.keys())
