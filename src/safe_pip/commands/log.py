"""``safe-pip log``: the audit records of the target env, as a table or as JSON lines.

Reads every location the policy writes this env's records to (the env's own
log and this user's fallback file), merged by time, oldest first.  A broken
policy does not stop it: it reads the default locations.  ``--verify`` checks
the hash chain of each file instead (exit 14 when broken).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from safe_pip.audit.locations import readable_logs
from safe_pip.audit.reader import RecordFilter, read_all
from safe_pip.audit.record import fixed_width_time, redact_record
from safe_pip.audit.redact import redact_argv
from safe_pip.audit.verify import verify
from safe_pip.commands import target_environment
from safe_pip.errors import AuditError, ExitCode, PolicyError, UsageError
from safe_pip.policy import Policy, load_policy

PROG = "safe-pip"
COMMAND_WIDTH = 60
CHANGES_WIDTH = 40
ARG_WIDTH = 30
MIN_ARG_WIDTH = 12
MAX_PROBLEMS_SHOWN = 20


_EARLIEST = "0001-01-01T00:00:00.000000Z"


def parse_time(text: str, *, end: bool = False) -> str | None:
    """An ISO 8601 date or time as a bound in the records' UTC form.

    A time without a zone is UTC.  A date alone means the start of that day,
    or with ``end`` (``--until``) the end of it, so ``--since D --until D``
    is the whole day D.
    """
    from datetime import date, datetime, timedelta, timezone

    value = text.strip()
    # Python < 3.11 takes only 3 or 6 fraction digits: pad or cut to 6
    value = re.sub(r"(:\d\d)\.(\d+)", lambda m: f"{m[1]}.{(m[2] + '00000')[:6]}", value)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            if end:
                try:
                    moment += timedelta(days=1)
                except OverflowError:
                    return None  # --until 9999-12-31: no upper bound
        else:
            if value.endswith(("Z", "z")):
                value = value[:-1] + "+00:00"
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError as error:
        raise UsageError(
            f"not an ISO 8601 date or time: {text!r}",
            hint="for example 2024-05-01, 2024-05-01T14:30 or 2024-05-01T14:30:00+02:00 "
            "(times without a zone are UTC)",
        ) from error
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00
        return None if end or moment.year > 1 else _EARLIEST
    return fixed_width_time(moment)


def _policy(prefix: str) -> Policy | None:
    try:
        return load_policy(prefix)
    except PolicyError as error:
        print(
            f"{PROG}: warning: {error.message}; reading the default log locations",
            file=sys.stderr,
        )
        return None


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _changes_text(record: Mapping[str, Any]) -> str:
    changes = record.get("changes")
    if not isinstance(changes, Mapping):
        return ""
    parts = []
    for sign, key in (("+", "installed"), ("-", "removed")):
        items = changes.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, Mapping):
                parts.append(f"{sign}{item.get('name', '?')}=={item.get('version', '?')}")
    return " ".join(parts)


def _command_text(record: Mapping[str, Any], width: int = COMMAND_WIDTH) -> str:
    """``pip ...`` as given (redacted), at most ``width`` characters.

    Long values (URLs, paths: arguments with a ``/``) are cut first, the longest
    first, to MIN_ARG_WIDTH and then, if need be, to ``...``, so that the
    requirements stay in view.
    """
    argv = record.get("argv")
    if not isinstance(argv, list):
        return str(record.get("command") or "")
    args = [_shorten(arg, ARG_WIDTH) for arg in redact_argv(str(a) for a in argv)]
    # `safe-pip request` records its own command line; `uv pip ...` (the uv door)
    # records the words after `uv`; the rest are pip's
    program = "safe-pip" if record.get("command") == "request" else "pip"
    if record.get("installer") == "uv" and argv[:1] == ["pip"]:
        program = "uv"
    text = shlex.join([program, *args])
    for floor in (MIN_ARG_WIDTH, 3):
        while len(text) > width:
            values = [i for i, arg in enumerate(args) if "/" in arg and len(arg) > floor]
            if not values:
                break
            longest = max(values, key=lambda i: len(args[i]))
            cut = max(floor, len(args[longest]) - (len(text) - width))
            args[longest] = _shorten(args[longest], cut) if cut > 3 else "..."
            text = shlex.join([program, *args])
    return _shorten(text, width)


def _user_text(record: Mapping[str, Any]) -> str:
    user = str(record.get("user") or record.get("uid") or "?")
    hub_user = record.get("hub_user")
    if hub_user and hub_user != user:
        return f"{user} ({hub_user})"
    return user


def _decision_text(record: Mapping[str, Any]) -> str:
    decision = str(record.get("decision") or "?")
    outcome = record.get("outcome")
    if record.get("kind") == "intent":
        return f"{decision}/incomplete"
    if decision == "allowed" and outcome not in (None, "ok"):
        return f"{decision}/{outcome}"
    return decision


def table_rows(records: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    header = ["TIME (UTC)", "USER", "DECISION", "COMMAND", "CHANGES", "RULE"]
    rows = [header]
    for record in records:
        when = str(record.get("time") or "")[:19].replace("T", " ")
        rows.append(
            [
                when,
                _user_text(record),
                _decision_text(record),
                _command_text(record),
                _shorten(_changes_text(record), CHANGES_WIDTH) or "-",
                str(record.get("rule") or ""),
            ]
        )
    return rows


def format_rows(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def _json_line(record: Mapping[str, Any]) -> str:
    """The record as stored, redacted again if anything in it could be a secret."""
    stored = getattr(record, "line", None)
    if isinstance(stored, bytes) and b"@" not in stored and b"-----BEGIN" not in stored:
        return stored.decode("utf-8", "replace")
    line = json.dumps(record, separators=(",", ":"))
    if "@" in line or "-----BEGIN" in line:
        line = json.dumps(redact_record(record), separators=(",", ":"))
    return line


def _print_json(records: Iterable[Mapping[str, Any]]) -> int:
    """Stream one JSON line per record; returns how many."""
    count = 0
    batch: list[str] = []
    for record in records:
        batch.append(_json_line(record))
        count += 1
        if len(batch) == 1000:
            if not _write("\n".join(batch) + "\n"):
                return count
            batch = []
    if batch:
        _write("\n".join(batch) + "\n")
    return count


def _print_table(records: Iterable[Mapping[str, Any]]) -> int:
    rows = table_rows(records)
    if len(rows) > 1:
        _write(format_rows(rows))
    return len(rows) - 1


def _write(text: str) -> bool:
    """Write to stdout; False when the reader is gone (`safe-pip log | head`), which is fine."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # keep Python's final flush from failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return False
    return True


def _verify(locations: Sequence[str]) -> int:
    existing = [path for path in locations if os.path.exists(path)]
    if not existing:
        print(f"{PROG}: no audit log yet (looked in: {', '.join(locations)})", file=sys.stderr)
        return int(ExitCode.OK)
    broken = False
    for path in existing:
        try:
            intact, problems = verify(path)
        except AuditError as error:
            broken = True
            print(f"{path}: cannot be verified: {error.message}")
            continue
        if intact:
            print(f"{path}: the hash chain is intact")
            for note in problems[:MAX_PROBLEMS_SHOWN]:
                print(f"  note: {note}")
            continue
        broken = True
        print(f"{path}: the hash chain is BROKEN ({len(problems)} problem(s))")
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            print(f"  {problem}")
        if len(problems) > MAX_PROBLEMS_SHOWN:
            print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return int(ExitCode.AUDIT_ERROR if broken else ExitCode.OK)


SUMMARY_SCHEMA = "safe-pip.log-summary/1"
#: the decisions the summary breaks down: what enforcing refuses or would refuse
REFUSALS = ("would-deny", "denied")


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by decision, and of refusals and would-denies by rule, env and user."""
    decisions: dict[str, int] = {}
    groups: dict[str, dict[str, dict[str, int]]] = {"by_rule": {}, "by_env": {}, "by_user": {}}
    total = 0
    for record in records:
        total += 1
        decision = str(record.get("decision") or "?")
        decisions[decision] = decisions.get(decision, 0) + 1
        if decision not in REFUSALS:
            continue
        keys = {
            "by_rule": str(record.get("rule") or "?"),
            "by_env": str(record.get("prefix") or "?"),
            "by_user": _user_text(record),
        }
        for group, key in keys.items():
            counts = groups[group].setdefault(key, dict.fromkeys(REFUSALS, 0))
            counts[decision] += 1
    return {"records": total, "decisions": decisions, **groups}


def format_summary(counts: Mapping[str, Any], period: Mapping[str, str | None]) -> str:
    since, until = period.get("since") or "the first record", period.get("until") or "now"
    decisions = ", ".join(f"{n} {d}" for d, n in sorted(counts["decisions"].items()))
    lines = [f"from {since} to {until}: {counts['records']} record(s): {decisions or 'none'}"]
    titles = {"by_rule": "rule", "by_env": "env", "by_user": "user"}
    for group, title in titles.items():
        rows = counts[group]
        if not rows:
            continue
        lines.append(f"by {title} (would-deny: refused once enforced; denied: refused):")
        ordered = sorted(rows.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        width = max(len(key) for key in rows)
        for key, by in ordered:
            lines.append(
                f"  {key:<{width}}  {by['would-deny']:>5} would-deny  {by['denied']:>5} denied"
            )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env = target_environment(args.python, environ)
    locations = readable_logs(env, _policy(env.prefix), environ)
    if args.verify:
        return _verify(locations)
    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit must be 0 or more, not {args.limit}")
    filters = RecordFilter(
        package=args.package,
        decision=args.decision,
        user=args.user,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until, end=True) if args.until else None,
    )
    reading = read_all(locations, newest=args.limit, filters=filters)
    for why in reading.unreadable.values():
        print(f"{PROG}: warning: {why}; its records are not shown", file=sys.stderr)
    if args.summary:
        counts = summarize(reading.records)
        period = {"since": filters.since, "until": filters.until}
        if args.json:
            _write(json.dumps({"schema": SUMMARY_SCHEMA, "period": period, **counts}) + "\n")
        else:
            _write(format_summary(counts, period))
        shown = counts["records"]
    else:
        shown = _print_json(reading.records) if args.json else _print_table(reading.records)
    for path, count in reading.damaged.items():
        print(f"{PROG}: skipped {count} damaged line(s) in {path}", file=sys.stderr)
    if not shown:
        print(
            f"{PROG}: no matching audit records for {env.prefix} "
            f"(looked in: {', '.join(locations)})",
            file=sys.stderr,
        )
    return int(ExitCode.OK)
