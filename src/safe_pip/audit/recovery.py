"""Write-ahead records: the intent written before pip runs, and completing the unfinished.

``intent_fields(before)`` are the fields an intent adds to a record: the env's
distributions before pip ran (``before``: dist-info name -> mtime in ns) and
who is running (``pid``, its start time, so a reader on this host can tell a
running operation from a dead one).  ``unfinished(paths)`` finds, at the end of
each log, intents that no outcome completes; ``recover_unfinished`` writes, for
each whose process is gone, the outcome ``recovered`` with what changed on disk
since the intent (``reconciled_changes``).  docs/audit-log.md.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from safe_pip.audit.reader import COMPLETES, close_buffer, map_file, records_in
from safe_pip.audit.record import new_id, utc_time
from safe_pip.errors import SafePipError

if TYPE_CHECKING:
    from safe_pip.audit.ship import Shipper
    from safe_pip.inventory import Installed

#: how much of the end of each log is searched for unfinished intents
TAIL_BYTES = 1 << 17
_INTENT = re.compile(rb'"id":"([0-9a-f]{32})","kind":"intent"')


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot), or None when it is gone
    (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and brackets: fields after its last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    if fields[:1] in ([b"Z"], [b"X"]):
        return None  # dead, not yet reaped by its parent
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def intent_fields(before: Mapping[str, Installed]) -> dict[str, Any]:
    """What an intent adds: ``before`` (the snapshot to reconcile from), ``pid``, ``pid_start``."""
    pid = os.getpid()
    return {
        "kind": "intent",
        "before": {os.path.basename(item.path): item.stamp[1] for item in before.values()},
        "pid": pid,
        "pid_start": process_start(pid),
    }


def plan_fields(intent_id: str | None, report: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a plan record adds: pip's plan at its pause point (after resolving, before
    changing anything), as ``name==version`` lists, for the intent ``intent_id``."""
    from safe_pip.changes import planned_installs, planned_removals
    from safe_pip.plan import planned_removals as uninstall_plan

    install = sorted(
        _pinned(
            (item.get("metadata") or {}).get("name"), (item.get("metadata") or {}).get("version")
        )
        for item in planned_installs(report).values()
    )
    removed = [*planned_removals(report), *uninstall_plan(report)]
    remove = sorted({f"{item.get('name')}=={item.get('version', '')}" for item in removed})
    return {"kind": "plan", "plan_for": intent_id, "plan": {"install": install, "remove": remove}}


def _pinned(name: object, version: object) -> str:
    """``name==version``; the name alone where the plan has no version (a source tree uv
    has not built yet)."""
    return f"{name}=={version}" if version else str(name)


def is_running(intent: Mapping[str, Any]) -> bool:
    """The intent's safe-pip may still be running: on another host (cannot tell), or its
    process (same pid, same start time) is alive here."""
    if intent.get("host") != os.uname().nodename:
        return True
    pid = intent.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = process_start(pid)
    return started is not None and started == intent.get("pid_start")


def unfinished(paths: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(log path, intent) of the intents no outcome completes, near the end of each log.

    One regex pass over the last TAIL_BYTES of each file; only the lines of
    unfinished intents are parsed.  Unreadable files are skipped.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            buffer = map_file(path)
        except SafePipError:
            continue
        if not buffer:
            continue
        try:
            end = buffer.rfind(b"\n") + 1
            start = 0 if end <= TAIL_BYTES else buffer.find(b"\n", end - TAIL_BYTES) + 1
            open_ids = set(_INTENT.findall(buffer, start, end))
            if open_ids:
                open_ids -= set(COMPLETES.findall(buffer, start, end))
            lines = b"".join(_line_of(buffer, ident, start, end) for ident in open_ids)
        finally:
            close_buffer(buffer)
        found.extend((path, record) for record in records_in(lines))
    return found


def _plan_of(path: str, ident: str) -> Any:
    """The ``plan`` of the plan record for intent ``ident`` near the end of ``path``."""
    try:
        buffer = map_file(path)
    except SafePipError:
        return None
    if not buffer:
        return None
    try:
        end = len(buffer)
        start = max(0, end - TAIL_BYTES)
        hit = buffer.find(b'"plan_for":"' + ident.encode("ascii", "replace") + b'"', start, end)
        line = _line_of(buffer, ident.encode(), start, end, at=hit) if hit >= 0 else b""
    finally:
        close_buffer(buffer)
    records = records_in(line) if line else []
    return records[0].get("plan") if records else None


def _line_of(buffer: Any, ident: bytes, start: int, end: int, at: int = -1) -> bytes:
    """The whole line (with its newline) of the intent ``ident`` (or at ``at``) in [start, end)."""
    hit = at if at >= 0 else buffer.find(b'"id":"' + ident + b'"', start, end)
    first = buffer.rfind(b"\n", start, hit) + 1 if hit > start else start
    last = buffer.find(b"\n", hit, end)
    return bytes(buffer[first : last + 1])


def reconciled_changes(
    intent: Mapping[str, Any], after: Mapping[str, Installed]
) -> dict[str, list[dict[str, Any]]]:
    """What changed on disk since the intent: distributions new or rewritten (another
    dist-info name, or a newer mtime) and distributions gone."""
    from safe_pip.changes import compute_changes
    from safe_pip.inventory import _from_entry

    snapshot = intent.get("before")
    if not isinstance(snapshot, Mapping):
        snapshot = {}
    before: dict[str, Installed] = {}
    for entry, mtime in snapshot.items():
        if not isinstance(entry, str) or not isinstance(mtime, int):
            continue
        now = next((i for i in after.values() if os.path.basename(i.path) == entry), None)
        path = now.path if now is not None else entry
        item = _from_entry(path, entry, (0, mtime))
        if item is not None:
            before[item.key] = item
    # compare by dist-info name and mtime only (the snapshot has no inode)
    current = {key: item._replace(stamp=(0, item.stamp[1])) for key, item in after.items()}
    return compute_changes(before, current, None)


def recover_unfinished(
    paths: Sequence[str],
    after: Mapping[str, Installed],
    locations: Sequence[str],
    ship: Shipper | None = None,
) -> int:
    """Write the ``recovered`` outcome of every unfinished intent in ``paths`` whose
    safe-pip is gone; returns how many.  A record that cannot be written is left for
    the next command (and ``status`` keeps flagging it)."""
    from safe_pip.audit.store import append

    recovered = 0
    for path, intent in unfinished(paths):
        if is_running(intent):
            continue
        outcome = {
            key: value
            for key, value in intent.items()
            if key
            not in ("before", "pid", "pid_start", "prev", "packages", "torn_before", "plan_for")
        }
        plan = _plan_of(path, str(intent.get("id")))
        if plan is not None:
            outcome["plan"] = plan
        outcome.update(
            kind="outcome",
            id=new_id(),
            intent=intent.get("id"),
            outcome="recovered",
            exit_code=None,
            duration_s=None,
            changes=reconciled_changes(intent, after),
            recovered_at=utc_time(),
        )
        try:
            append(outcome, [path, *[p for p in locations if p != path]], fsync=True, ship=ship)
        except SafePipError as error:
            print(
                f"safe-pip: warning: an unfinished operation could not be recovered: "
                f"{error.message}",
                file=sys.stderr,
            )
            continue
        recovered += 1
    return recovered
