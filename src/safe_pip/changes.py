"""What a pip run really changed: installed distributions before and after, enriched
from pip's installation report (``--report``) and each new ``direct_url.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from safe_pip.audit.redact import redact_url
from safe_pip.inventory import Installed, details
from safe_pip.names import canonical as normalize_name


def read_report(path: str) -> dict[str, Any] | None:
    """pip's installation report, or None when pip did not get to write it."""
    from safe_pip.readfile import MiB, read_bytes

    try:
        data = json.loads(read_bytes(path, limit=64 * MiB))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


#: Key of a plan (pip's report format) listing what the installer removes outright
#: (``uv pip sync``, see ``backends``): ``{name, version}`` items.
PLANNED_REMOVALS = "safe_pip_remove"


def planned_removals(plan: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The plan's outright removals, as ``{name, version}`` items."""
    items = (plan or {}).get(PLANNED_REMOVALS) or []
    return [
        {"name": str(item.get("name", "")), "version": str(item.get("version", ""))}
        for item in items
        if isinstance(item, dict) and item.get("name")
    ]


def planned_installs(report: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The report's ``install`` items by normalised name."""
    planned: dict[str, dict[str, Any]] = {}
    if not report:
        return planned
    for item in report.get("install", []) or []:
        if not isinstance(item, dict):
            continue
        metadata = item.get("metadata") or {}
        name = str(metadata.get("name", ""))
        if name:
            planned[normalize_name(name)] = item
    return planned


def _hashes(archive: Mapping[str, Any]) -> dict[str, str]:
    hashes = {str(k): str(v) for k, v in (archive.get("hashes") or {}).items()}
    legacy = archive.get("hash")
    if isinstance(legacy, str) and "=" in legacy:
        algorithm, _, value = legacy.partition("=")
        hashes.setdefault(algorithm, value)
    return hashes


def source_of(
    download_info: Mapping[str, Any] | None, is_direct: bool, index_url: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(source, hashes) from a PEP 610 direct URL / report download_info."""
    if not download_info:
        source: dict[str, str] = {"kind": "unknown"}
        if index_url:
            source = {"kind": "index", "index_url": redact_url(index_url)}
        return source, {}
    url = str(download_info.get("url", ""))
    vcs = download_info.get("vcs_info")
    if isinstance(vcs, dict):
        return (
            {
                "kind": "vcs",
                "vcs": str(vcs.get("vcs", "")),
                "url": redact_url(url),
                "commit": str(vcs.get("commit_id", "")),
            },
            {},
        )
    directory = download_info.get("dir_info")
    if isinstance(directory, dict):
        path = url[len("file://") :] if url.startswith("file://") else url
        kind = "editable" if directory.get("editable") else "file"
        return {"kind": kind, "path": path}, {}
    archive = download_info.get("archive_info")
    hashes = _hashes(archive) if isinstance(archive, dict) else {}
    if url.startswith("file://"):
        return {"kind": "file", "path": url[len("file://") :]}, hashes
    if is_direct:
        return {"kind": "url", "url": redact_url(url)}, hashes
    source = {"kind": "index", "url": redact_url(url)}
    if index_url:
        source["index_url"] = redact_url(index_url)
    return source, hashes


def compute_changes(
    before: Mapping[str, Installed],
    after: Mapping[str, Installed],
    report: Mapping[str, Any] | None,
    index_url: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``{"installed": [...], "removed": [...]}``: what is really on disk now.

    An upgrade is an ``installed`` item (the new version); ``removed`` lists only
    distributions that are gone.  With pip's report, only the distributions it
    planned count: another safe-pip installing into the same env meanwhile
    changes the scans too, and those changes are in that run's record.
    """
    planned = planned_installs(report)
    if report is not None:
        keys = set(planned) | {normalize_name(i["name"]) for i in planned_removals(report)}
        before = {key: item for key, item in before.items() if key in keys}
        after = {key: item for key, item in after.items() if key in keys}
    installed: list[dict[str, Any]] = []
    for key, item in sorted(after.items()):
        old = before.get(key)
        if old is not None and (old.version, old.path, old.stamp) == (
            item.version,
            item.path,
            item.stamp,
        ):
            continue
        entry: dict[str, Any] = {"name": item.name, "version": item.version}
        plan = planned.get(key)
        if plan is not None:
            source, hashes = source_of(
                plan.get("download_info"), bool(plan.get("is_direct")), index_url
            )
            entry["requested"] = bool(plan.get("requested"))
            metadata = plan.get("metadata") or {}
            entry["name"] = str(metadata.get("name", item.name))
        else:
            source, hashes = source_of(details(item).direct_url, True, index_url)
            entry["requested"] = False
        entry["source"] = source
        entry["hashes"] = hashes
        installed.append(entry)
    removed = [
        {"name": item.name, "version": item.version}
        for key, item in sorted(before.items())
        if key not in after
    ]
    return {"installed": installed, "removed": removed}


def only_requested(
    changes: Mapping[str, list[dict[str, Any]]], requirements: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The changes of a ``pip uninstall`` of ``requirements`` (names, maybe with
    specifiers): it installs nothing and removes only what it was asked to; anything
    else the scans saw another run did."""
    from safe_pip.audit.record import requirement_name

    keys = {requirement_name(text) for text in requirements}
    removed = [
        item
        for item in changes.get("removed", [])
        if normalize_name(str(item.get("name", ""))) in keys
    ]
    return {"installed": [], "removed": removed}
