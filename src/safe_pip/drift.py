"""Drift: how far an env has moved from what conda's records and the audit log explain.

- ``unexplained``: installed distributions that neither conda nor the audit log
  accounts for (a pip run around safe-pip; ``owner`` says what installed it);
- ``user_site``: distributions in the user site-packages that this env's Python
  imports (user site enabled for it and ``PYTHONNOUSERSITE`` unset);
- ``overwritten``: conda packages whose files pip changed while conda's record
  stayed: replaced by another version, reinstalled (the dist-info now says
  ``INSTALLER: pip``), laid over by a second copy (``--ignore-installed``), or
  removed;
- ``layered``: conda changed the env after pip did (pip changes followed by
  conda changes), which is how envs break; the fix is a rebuild from a spec
  (``safe-pip export``).

What the audit log explains is its net pip state (name, version and time of the
newest change of each distribution).  Reading a large log on every ``status``
would cost seconds, so the state of each log file is cached in
``$XDG_CACHE_HOME/safe-pip/`` with the file's identity, size and last bytes:
while the log only grows, only the new lines are read; anything else (a new
inode, a shorter file, changed bytes) reads the file again, through
``audit.reader.read_deciding`` (which parses only the records that decide the
state), replayed by ``audit.replay``.  A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import os
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, BinaryIO, NamedTuple

from safe_pip.atomicwrite import write_atomic
from safe_pip.conda_records import CondaRecord, RecordSet
from safe_pip.environment import Environment
from safe_pip.inventory import Installed, InstallerCache, distribution_key, scan_all
from safe_pip.ownership import CONDA_INSTALLERS, Owner, OwnershipIndex, is_pip_note
from safe_pip.userdirs import cache_dir
from safe_pip.values import field, frozen

#: what ensurepip/venv put into a fresh non-conda env
BOOTSTRAP_DISTS = frozenset({"pip", "setuptools", "wheel"})

_CACHE_FORMAT = "safe-pip/audit-state"
_CACHE_VERSION = 1
_TAIL = 256


@frozen
class Drift:
    unexplained: list[dict[str, str]] = field(default_factory=list)
    user_site: list[dict[str, str]] = field(default_factory=list)
    overwritten: list[dict[str, str]] = field(default_factory=list)
    layered: bool = False
    #: the oldest pip change still in effect, and the newest conda change (UTC, ISO 8601)
    first_pip_change: str | None = None
    last_conda_change: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "unexplained": self.unexplained,
            "user_site": self.user_site,
            "overwritten": self.overwritten,
            "layered": self.layered,
            "first_pip_change": self.first_pip_change,
            "last_conda_change": self.last_conda_change,
        }


# --- time -------------------------------------------------------------------------------


def _utc_text(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _audit_epoch(text: str) -> float | None:
    """``2024-05-01T12:00:03.123456Z`` (UTC) -> seconds since the epoch."""
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except (ValueError, OverflowError):
        return None


def _conda_epoch(text: str) -> float | None:
    """conda's ``YYYY-MM-DD HH:MM:SS`` (the local time of the machine that wrote it)."""
    try:
        return time.mktime(time.strptime(text.strip()[:19], "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return None


def last_history_time(prefix: str, tail_bytes: int = 65536) -> str | None:
    """The time of the newest ``==> time <==`` header, read from the end of the file."""
    from safe_pip.conda_history import MAX_HISTORY_BYTES, header_timestamp
    from safe_pip.readfile import open_regular

    path = os.path.join(prefix, "conda-meta", "history")
    headers: list[str] = []
    try:
        with open_regular(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            while True:
                start = max(0, size - tail_bytes)
                handle.seek(start)
                lines = handle.read(size - start).splitlines()[1 if start else 0 :]
                for raw in lines:
                    line = raw.decode("utf-8", "replace").strip()
                    timestamp = header_timestamp(line) if line.startswith("==>") else None
                    if timestamp is not None:
                        headers.append(timestamp)
                if headers or start == 0 or tail_bytes >= MAX_HISTORY_BYTES:
                    break
                tail_bytes *= 4  # a very long last block
    except OSError:
        return None
    return headers[-1] if headers else None


# --- the audit log's net state ----------------------------------------------------------------

#: normalised name -> (time of the newest change, version, or None when removed)
LogState = dict[str, tuple[str, "str | None"]]


def _replayed(records: list[dict[str, Any]], state: LogState) -> None:
    """``state`` updated with the net changes of ``records`` (newer than what it holds)."""
    from safe_pip.audit.replay import replay

    state.update(replay(records).versions())


def _full_state(path: str) -> LogState:
    from safe_pip.audit.reader import read_deciding

    state: LogState = {}
    _replayed(read_deciding([path]).records, state)
    return state


def _cache_path(log: str, environ: Mapping[str, str]) -> str | None:
    base = cache_dir(environ)
    if base is None:
        return None
    real = os.path.realpath(log)
    return os.path.join(base, f"audit-state-{zlib.crc32(os.fsencode(real)):08x}.json")


def _load_cache(path: str, log: str) -> dict[str, Any] | None:
    from safe_pip.readfile import MiB, read_bytes

    try:
        data = json.loads(read_bytes(path, limit=64 * MiB))
    except (OSError, ValueError, RecursionError):
        return None
    if not (
        isinstance(data, dict)
        and data.get("format") == _CACHE_FORMAT
        and data.get("version") == _CACHE_VERSION
        and data.get("log") == os.path.realpath(log)
        and isinstance(data.get("state"), dict)
        and isinstance(data.get("size"), int)
        and isinstance(data.get("tail"), str)
    ):
        return None
    return data


def _store_cache(path: str, document: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError, ValueError):
        write_atomic(path, json.dumps(document, separators=(",", ":")), mode=0o600, dir_mode=0o700)


def _whole_lines(handle: BinaryIO, size: int) -> int:
    """The size of the file's part that ends with a newline."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        handle.seek(start)
        newline = handle.read(end - start).rfind(b"\n")
        if newline != -1:
            return start + newline + 1
        end = start
    return 0


def log_file_state(log: str, environ: Mapping[str, str], *, use_cache: bool = True) -> LogState:
    """The net state one audit log file describes (cached; see the module docstring)."""
    try:
        handle = open(log, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return {}
    with handle:
        info = os.fstat(handle.fileno())
        # only whole lines: a record being written is read next time
        size = _whole_lines(handle, info.st_size)
        identity = [info.st_dev, info.st_ino]
        cache_file = _cache_path(log, environ) if use_cache else None
        cached = _load_cache(cache_file, log) if cache_file else None
        state: LogState | None = None
        if cached is not None and cached.get("identity") == identity and cached["size"] <= size:
            start = cached["size"]
            handle.seek(max(0, start - _TAIL))
            tail = handle.read(min(start, _TAIL)).hex()
            if tail == cached["tail"]:
                state = {
                    str(k): (str(v[0]), v[1] if isinstance(v[1], str) else None)
                    for k, v in cached["state"].items()
                    if isinstance(v, list) and len(v) == 2
                }
                if size > start:
                    handle.seek(start)
                    from safe_pip.audit.reader import records_in

                    _replayed(records_in(handle.read(size - start)), state)
                else:
                    return state
    if state is None:
        try:
            state = _full_state(log) if size else {}
        except (OSError, ValueError):
            return {}
    if cache_file is not None:
        try:
            with open(log, "rb") as handle:
                handle.seek(max(0, size - _TAIL))
                tail = handle.read(min(size, _TAIL)).hex()
        except OSError:
            return state
        _store_cache(
            cache_file,
            {
                "format": _CACHE_FORMAT,
                "version": _CACHE_VERSION,
                "log": os.path.realpath(log),
                "identity": identity,
                "size": size,
                "tail": tail,
                "state": {k: list(v) for k, v in state.items()},
            },
        )
    return state


def log_state(logs: Sequence[str], environ: Mapping[str, str]) -> LogState:
    """The net state of several log files of one env (the newest change of a name wins)."""
    merged: LogState = {}
    seen: set[str] = set()
    for log in logs:
        real = os.path.realpath(log)
        if real in seen:
            continue
        seen.add(real)
        for key, value in log_file_state(log, environ).items():
            if key not in merged or value[0] > merged[key][0]:
                merged[key] = value
    return merged


# --- drift ------------------------------------------------------------------------------------


def user_site_imported(env: Environment, environ: Mapping[str, str]) -> bool:
    """Whether this env's Python puts the user site-packages on ``sys.path``."""
    return bool(
        env.user_site_enabled
        and env.user_site
        and not environ.get("PYTHONNOUSERSITE")
        and os.path.isdir(env.user_site)
    )


@frozen
class DriftFacts:
    """What drift is classified from, gathered from disk by ``gather_drift``."""

    is_conda: bool
    #: every dist-info of the env's site dirs (``inventory.scan_all``), in scan order
    installed: tuple[Installed, ...]
    records: tuple[CondaRecord, ...]
    logged: LogState
    #: dist-info path -> its prefix-relative path (None: outside the prefix)
    relative: Mapping[str, str | None]
    #: dist-info path -> who owns it (for the first copy of each name)
    owners: Mapping[str, Owner]
    #: dist-info path -> its ``INSTALLER`` (for the dist-infos conda records list)
    installers: Mapping[str, str]
    #: the user site-packages' distributions this env's Python imports
    user_site: tuple[Installed, ...] = ()
    #: the newest ``conda-meta/history`` header (conda's local time text)
    last_conda_change: str | None = None
    #: the env's baseline (``safe-pip protect``, ``status --accept-drift``): name -> version
    baseline: Mapping[str, str] = field(default_factory=dict)


def gather_drift(
    env: Environment,
    installed: Iterable[Installed],
    records: RecordSet,
    logged: LogState,
    environ: Mapping[str, str],
) -> DriftFacts:
    """Read what drift needs: owners, ``INSTALLER`` files, the user site, conda's history,
    the baseline."""
    from safe_pip.baseline import read_baseline

    everything = tuple(installed)
    versions = {key: value[1] for key, value in logged.items() if value[1] is not None}
    installers = InstallerCache(env.prefix, environ)
    index = OwnershipIndex(records, env, versions, installers.installer)
    relative = {item.path: index.relative(item.path) for item in everything}
    owners: dict[str, Owner] = {}
    for item in _first_copies(everything).values():
        owners[item.path] = index.owner_of(item, relative[item.path])
    listed = {rel for record in records.records for rel in record.dist_infos}
    read = {
        item.path: installers.installer(item)
        for item in everything
        if relative[item.path] in listed
    }
    installers.save()
    user_site = tuple(scan_all([env.user_site])) if user_site_imported(env, environ) else ()
    return DriftFacts(
        is_conda=env.is_conda,
        installed=everything,
        records=records.records,
        logged=logged,
        relative=relative,
        owners=owners,
        installers=read,
        user_site=user_site,
        last_conda_change=last_history_time(env.prefix) if env.is_conda else None,
        baseline=read_baseline(env.prefix).versions,
    )


def _first_copies(installed: Iterable[Installed]) -> dict[str, Installed]:
    """The first dist-info of each name (the one Python imports)."""
    first: dict[str, Installed] = {}
    for item in installed:
        first.setdefault(item.key, item)
    return first


def _stamp_time(item: Installed) -> float | None:
    """When a dist-info was written (seconds), when known."""
    return item.stamp[1] / 1e9 if item.stamp[1] else None


def _unexplained(facts: DriftFacts) -> tuple[list[dict[str, str]], list[float], list[str]]:
    """Distributions neither conda nor the log explains; pip times; log times of the rest."""
    unexplained: list[dict[str, str]] = []
    pip_times: list[float] = []
    log_times: list[str] = []  # ISO 8601 UTC: they sort as text
    for key, item in _first_copies(facts.installed).items():
        owner = facts.owners[item.path]
        if owner.conda:
            continue
        logged = facts.logged.get(key)
        if logged is not None and logged[1] == item.version:
            log_times.append(logged[0])
            continue
        if facts.baseline.get(key) == item.version:
            continue  # as it was when the admin took the env as it is
        if not facts.is_conda and key in BOOTSTRAP_DISTS:
            continue
        unexplained.append({"name": item.name, "version": item.version, "owner": owner.owner})
        when = _stamp_time(item)
        if owner.owner != "unknown" and when is not None:
            # a pip run that left no record still tells roughly when
            pip_times.append(when)
    return sorted(unexplained, key=lambda u: u["name"].lower()), pip_times, log_times


class _Copies(NamedTuple):
    """The installed dist-infos, looked up three ways."""

    by_rel: dict[str, Installed]
    first: dict[str, Installed]
    by_key: dict[str, list[Installed]]


def _copies(facts: DriftFacts) -> _Copies:
    by_rel: dict[str, Installed] = {}
    by_key: dict[str, list[Installed]] = {}
    for item in facts.installed:
        rel = facts.relative.get(item.path)
        if rel is not None:
            by_rel[rel] = item
        by_key.setdefault(item.key, []).append(item)
    return _Copies(by_rel, _first_copies(facts.installed), by_key)


def _overwritten_one(
    facts: DriftFacts, record: CondaRecord, rel: str, copies: _Copies
) -> tuple[dict[str, str], Installed | None] | None:
    """How pip changed one dist-info of a conda record (and the pip copy's dist-info)."""
    entry = {"name": record.name, "conda_version": record.version}
    mine = copies.by_rel.get(rel)
    if mine is None:
        now = copies.first.get(_dist_key(rel) or distribution_key(record.name))
        if now is None:
            return {**entry, "installed_version": "", "how": "removed"}, None
        return {**entry, "installed_version": now.version, "how": "replaced"}, now
    others = [c for c in copies.by_key[mine.key] if c is not mine]
    if others:
        how = "another copy installed over it"
        return {**entry, "installed_version": others[0].version, "how": how}, None
    installer = facts.installers.get(mine.path, "")
    if installer and installer not in CONDA_INSTALLERS:
        how = f"reinstalled by {installer}"
        return {**entry, "installed_version": mine.version, "how": how}, mine
    return None


def _overwritten(facts: DriftFacts) -> tuple[list[dict[str, str]], list[float]]:
    """conda packages whose files pip changed while conda's record stayed; pip times."""
    copies = _copies(facts)
    overwritten: list[dict[str, str]] = []
    pip_times: list[float] = []
    for record in facts.records:
        if is_pip_note(record):
            continue
        for rel in record.dist_infos:
            found = _overwritten_one(facts, record, rel, copies)
            if found is None:
                continue
            overwritten.append(found[0])
            when = _stamp_time(found[1]) if found[1] is not None else None
            if when is not None:
                pip_times.append(when)
    return overwritten, pip_times


def classify_drift(facts: DriftFacts) -> Drift:
    """Drift from gathered facts.  Pure."""
    unexplained, pip_times, log_times = _unexplained(facts)
    overwritten, overwrite_times = _overwritten(facts)
    pip_times += overwrite_times
    conda_text = facts.last_conda_change
    conda_epoch = _conda_epoch(conda_text) if conda_text else None
    if log_times:
        when = _audit_epoch(min(log_times))
        if when is not None:
            pip_times.append(when)
    first_pip = min(pip_times) if pip_times else None
    layered = bool(first_pip is not None and conda_epoch is not None and conda_epoch > first_pip)
    return Drift(
        unexplained,
        [{"name": i.name, "version": i.version, "path": i.path} for i in facts.user_site],
        overwritten,
        layered,
        _utc_text(first_pip) if first_pip is not None else None,
        _utc_text(conda_epoch) if conda_epoch is not None else None,
    )


def compute_drift(
    env: Environment,
    installed: Iterable[Installed],
    records: RecordSet,
    logged: LogState,
    environ: Mapping[str, str],
) -> Drift:
    """``installed``: every dist-info of the env's site dirs (``inventory.scan_all``)."""
    return classify_drift(gather_drift(env, installed, records, logged, environ))


def _dist_key(dist_info: str) -> str:
    """'lib/.../six-1.16.0.dist-info' -> 'six'."""
    base = dist_info.rstrip("/").rpartition("/")[2]
    for suffix in (".dist-info", ".egg-info"):
        if base.endswith(suffix):
            return distribution_key(base[: -len(suffix)].split("-")[0])
    return ""
