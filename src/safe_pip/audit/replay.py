"""What an audit log adds up to: the one replay of records' ``changes``.

``replay(records)`` applies, in order, the changes of every record whose
``changes`` are what really happened on disk (``changes_are_real``), and
returns the net pip state (``NetState``): per distribution, its newest change.
``safe-pip export`` (the pip section), drift (what the log explains) and the
read-only request all read the log through ``reader`` and replay it here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from safe_pip.environment import normalize_name

#: outcomes after which a record's ``changes`` describe what really happened on disk
CHANGED_OUTCOMES = frozenset({"ok", "failed", "interrupted", "recovered"})
#: decisions after which pip ran: allowed, or refused only in warn mode
RAN_DECISIONS = frozenset({"allowed", "would-deny"})
#: the record schemas this version reads (docs/audit-log.md)
READ_SCHEMAS = frozenset({1, 2})
_MAX_PROBLEMS = 20


def changes_are_real(record: Mapping[str, Any]) -> bool:
    """True when the record's ``changes`` are what really happened on disk: an allowed
    operation that ran (or was recovered), of a schema this version reads."""
    # an escaped write (verify-after) is denied, but what pip did in the env is real
    ran = record.get("decision") in RAN_DECISIONS or record.get("rule") == "escaped-write"
    return (
        ran
        and record.get("outcome") in CHANGED_OUTCOMES
        and record.get("schema") in READ_SCHEMAS
        and isinstance(record.get("changes"), Mapping)
    )


class Change(NamedTuple):
    """The newest change of one distribution."""

    #: the record's ``time``
    time: str
    #: the ``installed`` item, or None when the distribution was removed
    item: Mapping[str, Any] | None
    #: the index of its record in ``NetState.records`` (-1 for a removal)
    record: int


class NetState:
    """The replay's result: ``changes`` (normalised name -> newest ``Change``),
    ``records`` (the records that installed something still present, in order)
    and ``problems`` (malformed records skipped; at most 20 kept, all counted)."""

    def __init__(self) -> None:
        self.changes: dict[str, Change] = {}
        self.records: list[Mapping[str, Any]] = []
        self.problems: list[str] = []
        self.problem_count = 0
        self.other_schemas = 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(text)

    def installed(self) -> dict[str, tuple[Mapping[str, Any], int]]:
        """Normalised name -> (its ``installed`` item, index of its record), for what is there."""
        return {
            key: (change.item, change.record)
            for key, change in self.changes.items()
            if change.item is not None
        }

    def versions(self) -> dict[str, tuple[str, str | None]]:
        """Normalised name -> (time of its newest change, version or None once removed)."""
        return {
            key: (change.time, None if change.item is None else str(change.item.get("version")))
            for key, change in self.changes.items()
        }

    def apply(self, record: object, number: int) -> None:  # noqa: C901 - checks each field of an untrusted record
        """Apply one record (the ``number``-th, for problems): removals, then installs."""
        if not isinstance(record, Mapping):
            self.problem(f"audit record {number}: not a JSON object; skipped")
            return
        if (
            record.get("decision") not in RAN_DECISIONS
            or record.get("outcome") not in CHANGED_OUTCOMES
        ):
            return
        if record.get("schema") not in READ_SCHEMAS:
            self.other_schemas += 1
            return
        changes = record.get("changes")
        if changes is None:
            return
        if not isinstance(changes, Mapping):
            self.problem(f"audit record {number}: 'changes' is not an object; skipped")
            return
        removed = changes.get("removed") or []
        installed = changes.get("installed") or []
        if not isinstance(removed, list) or not isinstance(installed, list):
            self.problem(f"audit record {number}: 'changes' lists are malformed; skipped")
            return
        when = str(record.get("time") or "")
        # removals first: an upgrade may list the old version as removed and the new one
        # as installed
        for item in removed:
            name = item.get("name") if isinstance(item, Mapping) else None
            if not isinstance(name, str) or not name:
                self.problem(f"audit record {number}: a removed item without a name")
                continue
            self.changes[normalize_name(name)] = Change(when, None, -1)
        index = len(self.records)
        used = False
        for item in installed:
            if not isinstance(item, Mapping):
                self.problem(f"audit record {number}: an installed item is not an object")
                continue
            name, version = item.get("name"), item.get("version")
            if not isinstance(name, str) or not name or not isinstance(version, str):
                self.problem(f"audit record {number}: an installed item without name/version")
                continue
            self.changes[normalize_name(name)] = Change(when, item, index)
            used = True
        if used:
            self.records.append(record)

    def all_problems(self) -> list[str]:
        problems = list(self.problems)
        if self.other_schemas:
            schemas = ", ".join(str(s) for s in sorted(READ_SCHEMAS))
            problems.append(
                f"{self.other_schemas} audit record(s) of a schema other than {schemas} skipped"
            )
        if self.problem_count > len(self.problems):
            problems.append(f"... and {self.problem_count - len(self.problems)} more problems")
        return problems


def replay(records: Iterable[object], state: NetState | None = None) -> NetState:
    """Apply every record's real changes in order (onto ``state``, or a new one)."""
    net = NetState() if state is None else state
    for number, record in enumerate(records, 1):
        net.apply(record, number)
    return net
