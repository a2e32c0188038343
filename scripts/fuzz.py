#!/usr/bin/env python3
"""Run each parser's fuzz target for a while; record inputs tried and crashes in docs/fuzzing.md.

    .venv/bin/python scripts/fuzz.py --seconds 180              # every target
    .venv/bin/python scripts/fuzz.py --seconds 60 history redact
    .venv/bin/python scripts/fuzz.py --seconds 5 --no-record   # a smoke run

The targets and the properties they check are tests/support/fuzz_targets.py
(the unit tier runs each for a few dozen examples).  Each target runs in its own
process.  With atheris installed (``pip install -e '.[fuzz]'``) the input is
coverage-guided: libFuzzer's bytes drive the target's hypothesis strategy
(``fuzz_one_input``); without it, random bytes do.  A failing input is printed
(the value the strategy drew), counted, and the run goes on.  The results table
between the markers in docs/fuzzing.md is replaced; the rest of the page is not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "fuzzing.md"
BEGIN = "<!-- fuzz-results: written by scripts/fuzz.py -->"
END = "<!-- /fuzz-results -->"
#: distinct failures (by exception type and message start) kept per target
MAX_FAILURES = 20


def _instrumented() -> Any:
    """atheris, with safe_pip's parsers imported under its coverage instrumentation; or None."""
    try:
        import atheris
    except ImportError:
        return None
    with atheris.instrument_imports(include=["safe_pip"]):
        import safe_pip.audit.redact
        import safe_pip.conda_history
        import safe_pip.conda_records
        import safe_pip.names
        import safe_pip.pipcli
        import safe_pip.pipconfig
        import safe_pip.policy  # noqa: F401 - instrumented for coverage
    return atheris


def _child(name: str, seconds: float, report: str) -> None:
    """Fuzz one target in this process and write its counts and failures to ``report``."""
    sys.path.insert(0, str(ROOT / "tests"))
    atheris = _instrumented()
    from hypothesis import HealthCheck, given, settings

    from support.fuzz_targets import TARGETS

    target = TARGETS[name]
    state: dict[str, Any] = {"tried": 0, "failures": {}, "last": None, "saved": 0.0}

    @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def run(value: Any) -> None:
        state["last"] = value
        target.check(value)

    def one(data: bytes) -> None:
        if time.monotonic() - state["saved"] > 1:
            save()  # libFuzzer ends the process without running atexit handlers
        state["tried"] += 1
        state["last"] = None
        try:
            run.hypothesis.fuzz_one_input(data)  # type: ignore[attr-defined]
        except Exception as error:
            key = f"{type(error).__name__}: {str(error)[:120]}"
            failures = state["failures"]
            if key not in failures and len(failures) < MAX_FAILURES:
                failures[key] = repr(state["last"])[:400]
                print(f"{name}: FAILED {key}\n  input: {failures[key]}", file=sys.stderr)

    def save() -> None:
        state["saved"] = time.monotonic()
        Path(report).write_text(
            json.dumps(
                {
                    "tried": state["tried"],
                    "failures": state["failures"],
                    "engine": "atheris" if atheris is not None else "random bytes",
                }
            )
        )

    if atheris is not None:
        # hypothesis needs a few hundred bytes to draw a value: no slow ramp from 4 bytes
        argv = [sys.argv[0], f"-max_total_time={int(seconds)}", "-rss_limit_mb=4096"]
        argv += ["-max_len=8192", "-len_control=0"]
        atheris.Setup(argv, one)
        atheris.Fuzz()  # exits the process when the time is up
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        one(os.urandom(int.from_bytes(os.urandom(2), "big") % 8192))
    save()


def _run(name: str, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        report = os.path.join(scratch, "report.json")
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                name,
                "--seconds",
                str(seconds),
                "--report",
                report,
            ],
            cwd=scratch,  # libFuzzer's crash files land there, not in the checkout
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        took = time.monotonic() - started
        done = re.search(r"^Done (\d+) runs", proc.stdout, re.MULTILINE)
        try:
            result: dict[str, Any] = json.loads(Path(report).read_text())
            if done:  # libFuzzer's own count: the report may be a second old
                result["tried"] = max(result["tried"], int(done.group(1)))
        except (OSError, ValueError):
            tail = proc.stdout.strip().splitlines()[-5:]
            result = {"tried": 0, "failures": {"the fuzzer itself failed": " / ".join(tail)}}
            result["engine"] = "?"
    result.update(name=name, seconds=round(took))
    return result


def _rows(results: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Table rows and failure lines of this run, by target."""
    from support.fuzz_targets import TARGETS

    rows, failures = {}, {}
    today = time.strftime("%Y-%m-%d")
    for result in results:
        name = result["name"]
        rows[name] = (
            f"| `{name}` | {TARGETS[name].parses} | {today} | {result.get('engine', '?')} "
            f"| {result['seconds']} | {result['tried']:,} | {len(result['failures'])} |"
        )
        failures[name] = [f"- `{name}`: {k}; input `{v}`" for k, v in result["failures"].items()]
    return rows, failures


def _record(results: list[dict[str, Any]]) -> None:
    """Replace the rows (and failure lines) of the targets run; keep the others' rows."""
    from support.fuzz_targets import TARGETS

    text = DOC.read_text(encoding="utf-8")
    head, found, rest = text.partition(BEGIN)
    if not found:
        raise SystemExit(f"{DOC}: no {BEGIN} marker")
    old, _, tail = rest.partition(END)
    rows, failures = _rows(results)
    for line in old.splitlines():
        match = re.match(r"(?:\| |- )`([^`]+)`", line)
        if match and match.group(1) in TARGETS and match.group(1) not in rows:
            if line.startswith("|"):
                rows[match.group(1)] = line
            else:
                failures.setdefault(match.group(1), []).append(line)
    lines = [
        BEGIN,
        "",
        f"Python {sys.version.split()[0]}; each row is the last run of that target.",
        "",
        "| target | parser | date | engine | seconds | inputs tried | distinct failures |",
        "|---|---|---|---|---:|---:|---:|",
        *(rows[name] for name in TARGETS if name in rows),
        "",
    ]
    failed = [line for name in TARGETS for line in failures.get(name, [])]
    if failed:
        lines += ["Failures (property, then the input the strategy drew):", "", *failed]
    else:
        lines.append("No target failed.")
    DOC.write_text(head + "\n".join([*lines, "", END]) + tail, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("targets", nargs="*", help="default: all (tests/support/fuzz_targets.py)")
    parser.add_argument("--seconds", type=float, default=180, help="per target (default 180)")
    parser.add_argument("--no-record", action="store_true", help="leave docs/fuzzing.md alone")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # before anything imports safe_pip: atheris instruments it on import
        _child(args.child, args.seconds, args.report)
        return 0
    sys.path.insert(0, str(ROOT / "tests"))
    from support.fuzz_targets import TARGETS

    names = args.targets or list(TARGETS)
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; known: {', '.join(TARGETS)}")
    results = []
    for name in names:
        result = _run(name, args.seconds)
        print(
            f"{name:<24} {result['seconds']:>5} s {result['tried']:>10,} inputs "
            f"{len(result['failures'])} failures ({result.get('engine')})",
            flush=True,
        )
        results.append(result)
    if not args.no_record:
        _record(results)
    return 1 if any(result["failures"] for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
