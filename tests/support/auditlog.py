"""Reading an audit log in tests: the records of each operation, as a reader pairs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log (intents and outcomes), each of which must be one JSON object."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def operations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per operation, in file order: its outcome, or its intent when no outcome
    completes it (schema 2 writes an intent before pip runs, pip's plan at its pause point
    and an outcome after)."""
    completed = {r.get("intent") for r in records if r.get("kind") == "outcome"}
    return [
        r
        for r in records
        if r.get("kind") != "plan" and not (r.get("kind") == "intent" and r.get("id") in completed)
    ]


def operations_in(path: Path) -> list[dict[str, Any]]:
    return operations(log_lines(path))
