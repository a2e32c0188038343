"""Time safe-pip's readers of conda-meta on a large synthetic environment.

Builds, in a temporary directory, a prefix whose ``conda-meta`` holds N
package records shaped like the real ones in shared/fixtures/conda-meta/json
(a ``files`` list of tens to hundreds of entries, a ``paths_data`` entry per
file, pretty-printed with sorted keys as conda writes them) and a history of
about 100,000 lines, then prints how long the readers take.

    .venv/bin/python scripts/bench_conda.py [--records 3000] [--history-lines 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import benchlib  # noqa: E402 (scripts/ is sys.path[0] when a script runs)

from safe_pip.conda_history import parse_history  # noqa: E402
from safe_pip.conda_records import read_records  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "conda-meta" / "json"
SITE_PACKAGES = "lib/python3.12/site-packages"
# files per record, cycled: mostly tens to hundreds, now and then a big one
FILE_COUNTS = (24, 44, 78, 137, 180, 250, 320, 420, 60, 854)


def load_templates() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not FIXTURES.is_dir():
        sys.exit(f"fixtures not found: {FIXTURES}")
    python: dict[str, Any] | None = None
    others: list[dict[str, Any]] = []
    for path in sorted(FIXTURES.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["name"] == "python":
            python = record
        else:
            others.append(record)
    if python is None or not others:
        sys.exit("fixtures lack a python record or a package record")
    return python, others


def paths_entry(template: dict[str, Any], path: str) -> dict[str, Any]:
    entry = dict(template)
    entry["_path"] = path
    return entry


def synthetic_record(index: int, template: dict[str, Any]) -> dict[str, Any]:
    name = f"pkg{index:05d}-{template['name']}"
    dist = name.replace("-", "_")
    version = template["version"]
    build = template["build"]
    count = FILE_COUNTS[index % len(FILE_COUNTS)]
    dist_info = f"{SITE_PACKAGES}/{dist}-{version}.dist-info"
    files = [f"{dist_info}/{leaf}" for leaf in ("INSTALLER", "METADATA", "RECORD", "WHEEL")]
    files += [f"{SITE_PACKAGES}/{dist}/module_{n:04d}.py" for n in range(count - len(files))]
    paths_template = next(
        (p for p in template.get("paths_data", {}).get("paths", []) if "sha256" in p),
        {"path_type": "hardlink", "sha256": "0" * 64, "size_in_bytes": 1000},
    )
    record = dict(template)
    record.update(
        name=name,
        fn=f"{name}-{version}-{build}.conda",
        url=f"https://repo.anaconda.com/pkgs/main/linux-64/{name}-{version}-{build}.conda",
        files=files,
        paths_data={"paths": [paths_entry(paths_template, f) for f in files], "paths_version": 1},
        requested_spec="None",
    )
    record.pop("python_site_packages_path", None)
    return record


def build_conda_meta(prefix: Path, count: int) -> int:
    python, others = load_templates()
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    python = dict(python)
    python.update(version="3.12.9", python_site_packages_path=SITE_PACKAGES)
    records = [python] + [synthetic_record(i, others[i % len(others)]) for i in range(count - 1)]
    total = 0
    for record in records:
        text = json.dumps(record, indent=2, sort_keys=True)
        path = meta / f"{record['name']}-{record['version']}-{record['build']}.json"
        path.write_text(text, encoding="utf-8")
        total += len(text)
    return total


def synthetic_history(lines: int) -> str:
    out: list[str] = []
    block = 0
    while len(out) < lines:
        out.append(f"==> 2024-01-{block % 28 + 1:02d} 12:00:{block % 60:02d} <==")
        out.append(f"# cmd: /opt/conda/bin/conda install -y pkg{block}")
        out.append("# conda version: 24.1.2")
        for n in range(20):
            out.append(f"-conda-forge/linux-64::pkg{block - 1}-{n}-1.0.{n}-py312h0_{n}")
            out.append(f"+conda-forge/linux-64::pkg{block}-{n}-1.0.{n}-py312h0_{n}")
        out.append(f"# update specs: ['pkg{block}', \"numpy[version='>=1.{block % 30}']\"]")
        block += 1
    return "\n".join(out[:lines]) + "\n"


def timed(label: str, action: Callable[[], object], runs: int) -> float:
    return benchlib.timed(label, action, runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--history-lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="safe-pip-bench-") as temp:
        prefix = Path(temp) / "env"
        cache = Path(temp) / "cache"
        size = build_conda_meta(prefix, args.records)
        print(f"{args.records} records, {size / 1e6:.0f} MB of JSON in {prefix / 'conda-meta'}")
        records = read_records(prefix, use_cache=False)
        owned = sum(1 for r in records.records if r.dist_infos)
        print(
            f"read {len(records.records)} records, {owned} own a dist-info, "
            f"{len(records.problems)} problems"
        )

        def cold() -> object:
            return read_records(prefix, use_cache=False)

        def cold_json() -> object:
            for path in (prefix / "conda-meta").glob("*.json"):
                json.loads(path.read_bytes())
            return None

        def first_with_cache() -> object:
            for leftover in cache.glob("*"):
                leftover.unlink()
            return read_records(prefix, cache_dir=cache)

        def warm() -> object:
            return read_records(prefix, cache_dir=cache)

        victim = next((prefix / "conda-meta").glob("pkg00001*.json"))

        def one_changed() -> object:
            # conda replaces a record by removing it and writing it anew
            data = victim.read_bytes()
            victim.unlink()
            victim.write_bytes(data)
            return read_records(prefix, cache_dir=cache)

        timed("json.loads of every record (baseline, no extraction)", cold_json, 3)
        timed("read_records, no cache (scan, json fallback)", cold, 3)
        timed("read_records, cold cache (scan + write cache)", first_with_cache, 3)
        read_records(prefix, cache_dir=cache)
        warm_ms = timed("read_records, warm cache", warm, args.runs)
        timed("read_records, warm cache, one record changed", one_changed, args.runs)
        verdict = "ok" if warm_ms <= 0.040 else "OVER the 40 ms target"
        print(f"warm read_records of {args.records} records: {warm_ms * 1000:.1f} ms ({verdict})")

    text = synthetic_history(args.history_lines)
    data = text.encode()
    history = parse_history(data)
    print(
        f"history: {args.history_lines} lines, {len(history.blocks)} blocks, "
        f"{len(history.problems)} problems"
    )
    timed("parse_history (bytes)", lambda: parse_history(data), 5)
    timed(
        "parse_history + requested_specs + installed",
        lambda: (lambda h: (h.requested_specs(), h.installed()))(parse_history(data)),
        5,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
