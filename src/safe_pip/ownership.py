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
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from safe_pip.conda_records import CondaRecord, RecordSet
from safe_pip.environment import Environment, normalize_name
from safe_pip.inventory import Installed, installer_of

#: ``INSTALLER`` values that mean conda put the distribution there.
CONDA_INSTALLERS = frozenset({"conda", "conda-pypi", "conda-via-whl"})

CONDA = "conda"
PIP = "pip"
SAFE_PIP = "safe-pip"
UNKNOWN = "unknown"


class Owner(NamedTuple):
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
    def conda_package(self) -> str:
        """The conda package's name (``demo-rec``, not the distribution's ``demo_rec``),
        for conda commands: its record's, else the normalised distribution name."""
        if self.record is not None and self.record.name:
            return self.record.name
        return normalize_name(self.name)

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
    from safe_pip.conda_history import canonical_channels  # only when a message names one

    names = canonical_channels([channel])
    return names[0] if names else channel


def is_pip_note(record: CondaRecord) -> bool:
    """conda's record of a package pip installed (build ``pypi_0``), not a conda package."""
    return record.build.startswith("pypi_")


class OwnershipIndex:
    """Answers "who owns this distribution" for one env; build it once per command.

    ``installer``: how to read a distribution's ``INSTALLER`` (default: read the
    file; ``inventory.InstallerCache.installer`` for questions about a whole env).
    """

    def __init__(
        self,
        records: RecordSet,
        env: Environment,
        logged: Mapping[str, str] | None = None,
        installer: Callable[[Installed], str] | None = None,
    ) -> None:
        #: prefix-relative dist-info path -> the conda record that linked it
        self._by_rel: dict[str, CondaRecord] = {}
        for record in records.records:
            if is_pip_note(record):
                continue
            for rel in record.dist_infos:
                self._by_rel.setdefault(rel, record)
        self._prefix = env.prefix.rstrip(os.sep) + os.sep
        self._real_prefix = os.path.realpath(env.prefix).rstrip(os.sep) + os.sep
        #: site dir -> its prefix-relative path (None: not inside the prefix)
        self._rel_dirs: dict[str, str | None] = {}
        #: normalised name -> version that safe-pip's log says it installed last
        self._logged = dict(logged or {})
        self._installer = installer or _read_installer

    def relative(self, path: str) -> str | None:
        """``path`` relative to the env's prefix, '/'-separated (None when outside it)."""
        if path.startswith(self._prefix):
            rel = path[len(self._prefix) :]
        else:
            # the dist-info may be reached through another path (a symlinked prefix):
            # resolve its directory, once per directory
            directory, _, base = path.rpartition(os.sep)
            if directory not in self._rel_dirs:
                real = os.path.realpath(directory) + os.sep
                self._rel_dirs[directory] = (
                    real[len(self._real_prefix) :] if real.startswith(self._real_prefix) else None
                )
            rel_dir = self._rel_dirs[directory]
            if rel_dir is None:
                return None
            rel = rel_dir + base
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def record_for(self, path: str) -> CondaRecord | None:
        """The conda record that installed this dist-info/egg-info path, if any."""
        if not self._by_rel:
            return None
        rel = self.relative(path)
        return self._by_rel.get(rel) if rel is not None else None

    def owner_of(self, item: Installed, rel: str | None = "") -> Owner:
        """``rel``: the item's prefix-relative path when the caller has it already."""
        if rel == "":
            record = self.record_for(item.path)
        else:
            record = self._by_rel.get(rel) if rel is not None else None
        if record is not None:
            return Owner(item.key, item.name, item.version, CONDA, record.channel, record, "record")
        installer = self._installer(item)
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


def _read_installer(item: Installed) -> str:
    return installer_of(item.path) if item.path.endswith(".dist-info") else ""


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
