"""Who owns each installed distribution: conda, pip, or safe-pip (from the audit log).

A distribution is **conda-owned** when

- a ``conda-meta/*.json`` record lists its ``.dist-info/RECORD`` (or its
  egg-info) among its ``files``: conda linked it, and conda will remove or
  replace exactly those files on its next change; or
- its ``INSTALLER`` says ``conda`` (a conda package whose record lost the
  dist-info), or ``conda-pypi``/``conda-via-whl`` (conda-pypi turned a wheel
  into a conda package).

A record whose build string is ``pypi_0`` (``pypi_<n>``) is conda's own note of
a package pip installed: it does not make the distribution conda's.  Anything
else belongs to its ``INSTALLER`` (``pip``, ``uv``, ...); a pip-installed
distribution the audit log accounts for (same name and version) is
**safe-pip**'s.

Speed: the records come from ``conda_records.read_records`` (cached); the index
from dist-info path to record is one dict built from them, and ``INSTALLER`` is
read only for distributions no record owns, so asking about the few names of one
install costs a few lookups, and about a whole env one small read per
distribution that conda does not list.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from safe_pip.conda_records import CondaRecord, RecordSet
from safe_pip.environment import Environment, normalize_name
from safe_pip.inventory import Installed, installer_of

#: ``INSTALLER`` values that mean conda put the distribution there.
CONDA_INSTALLERS = frozenset({"conda", "conda-pypi", "conda-via-whl"})

CONDA = "conda"
PIP = "pip"
SAFE_PIP = "safe-pip"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Owner:
    key: str
    name: str
    version: str
    #: "conda", "pip", "safe-pip", "other:<installer>" or "unknown"
    owner: str
    channel: str = ""
    record: CondaRecord | None = None
    #: why it is conda's: "record", or "INSTALLER <value>"
    evidence: str = ""

    @property
    def conda(self) -> bool:
        return self.owner == CONDA

    @property
    def channel_name(self) -> str:
        """The channel as conda names it (``conda-forge``, ``defaults``, or a URL)."""
        return channel_label(self.channel)

    def describe(self) -> str:
        where = f", {self.channel_name}" if self.channel else ""
        return f"{self.name} {self.version} ({self.owner}{where})"


def channel_label(channel: str) -> str:
    """``https://conda.anaconda.org/conda-forge`` -> ``conda-forge`` (for messages)."""
    if not channel:
        return ""
    from safe_pip.export import canonical_channels  # only when a message names a channel

    names = canonical_channels([channel])
    return names[0] if names else channel


def is_pip_note(record: CondaRecord) -> bool:
    """conda's record of a package pip installed (build ``pypi_0``), not a conda package."""
    return record.build.startswith("pypi_")


class OwnershipIndex:
    """Answers "who owns this distribution" for one env; build it once per command."""

    def __init__(
        self,
        records: RecordSet,
        env: Environment,
        logged: Mapping[str, str] | None = None,
    ) -> None:
        self._by_path: dict[str, CondaRecord] = {}
        prefix = env.prefix
        for record in records.records:
            if is_pip_note(record):
                continue
            for rel in record.dist_infos:
                self._by_path[os.path.normpath(os.path.join(prefix, rel))] = record
        self._real_prefix = os.path.realpath(prefix)
        self._prefix = prefix
        #: normalised name -> version that safe-pip's log says it installed last
        self._logged = dict(logged or {})

    def record_for(self, path: str) -> CondaRecord | None:
        """The conda record that installed this dist-info/egg-info path, if any."""
        record = self._by_path.get(os.path.normpath(path))
        if record is None and self._by_path:
            # the dist-info may be reached through another path (a symlinked prefix)
            real = os.path.realpath(path)
            if real.startswith(self._real_prefix + os.sep):
                rel = real[len(self._real_prefix) + 1 :]
                record = self._by_path.get(os.path.normpath(os.path.join(self._prefix, rel)))
        return record

    def owner_of(self, item: Installed) -> Owner:
        record = self.record_for(item.path)
        if record is not None:
            return Owner(item.key, item.name, item.version, CONDA, record.channel, record, "record")
        installer = installer_of(item.path) if os.path.isdir(item.path) else ""
        if installer in CONDA_INSTALLERS:
            return Owner(
                item.key, item.name, item.version, CONDA, evidence=f"INSTALLER {installer}"
            )
        if installer == PIP:
            if self._logged.get(item.key) == item.version:
                return Owner(item.key, item.name, item.version, SAFE_PIP)
            return Owner(item.key, item.name, item.version, PIP)
        return Owner(
            item.key, item.name, item.version, f"other:{installer}" if installer else UNKNOWN
        )


def owners(
    installed: Mapping[str, Installed],
    records: RecordSet,
    env: Environment,
    names: Iterable[str],
    logged: Mapping[str, str] | None = None,
) -> dict[str, Owner]:
    """Owners of the installed distributions among ``names`` (normalised or not)."""
    index = OwnershipIndex(records, env, logged)
    found: dict[str, Owner] = {}
    for name in names:
        key = normalize_name(name)
        item = installed.get(key)
        if item is not None and key not in found:
            found[key] = index.owner_of(item)
    return found


def all_owners(
    installed: Mapping[str, Installed],
    records: RecordSet,
    env: Environment,
    logged: Mapping[str, str] | None = None,
) -> dict[str, Owner]:
    return owners(installed, records, env, installed.keys(), logged)
