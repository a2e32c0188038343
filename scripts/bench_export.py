"""Time ``safe-pip export`` on an env whose audit log holds 100,000 records.

Builds, in a temporary directory, a venv (the target interpreter), a
``conda-meta`` with a history and 300 package records, site-packages with the
distributions the log leaves installed, and ``var/log/safe-pip/audit.jsonl``
with a realistic mix of records: installs of 1 to 6 distributions from an
index, upgrades, uninstalls, VCS, URL, local-file and editable installs,
private indexes, failed and interrupted runs, denials, and read-only records
without changes.  Then runs the real CLI (``python -m safe_pip export``)
several times and prints the timings.

    .venv/bin/python scripts/bench_export.py [--records N] [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEED = 20260112
#: runs ``python -m safe_pip ARGS`` and prints its peak resident memory (VmHWM: the high
#: water mark of this process image, not inherited from the benchmark that forked it)
PEAK_WRAPPER = (
    "import runpy, sys\n"
    "sys.argv = ['safe_pip', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('safe_pip', run_name='__main__')\n"
    "finally:\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
    "    print('peak-kB', hwm, file=sys.stderr)\n"
)
PROJECT = Path(__file__).resolve().parents[1]


def make_env(root: Path) -> Path:
    """A non-venv prefix (the test suite's ``make_prefix``), else a venv.

    safe-pip inspects its target with ``python -I -S``, and without ``site``
    a venv reports its base prefix, so a venv target exports the base env.
    """
    sys.path.insert(0, str(PROJECT / "tests"))
    try:
        make_prefix = importlib.import_module("support.prefixes").make_prefix
    except ImportError:
        make_prefix = None
    if make_prefix is not None:
        try:
            return Path(make_prefix(root, "plain", "env").path)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            print(f"make_prefix failed ({error}); using a venv", file=sys.stderr)
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    return env


def site_packages(env: Path) -> Path:
    found = sorted((env / "lib").glob("python*/site-packages"))
    return found[0]


def write_conda_meta(env: Path, rng: random.Random, count: int = 300) -> None:
    meta = env / "conda-meta"
    meta.mkdir()
    names = ["python", "pip", *(f"lib{n:03d}" for n in range(count - 2))]
    history = [
        "==> 2026-01-12 09:41:27 <==",
        f"# cmd: /opt/conda/bin/conda create -p {env} python=3.11 pip",
        "# conda version: 24.11.3",
    ]
    requested = ["python=3.11", "pip"]
    for name in names:
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        build = f"h{rng.getrandbits(32):08x}_0"
        history.append(f"+conda-forge/linux-64::{name}-{version}-{build}")
        record = {
            "build": build,
            "build_number": 0,
            "channel": "https://conda.anaconda.org/conda-forge/linux-64",
            "depends": [],
            "files": [f"lib/{name}.so.{n}" for n in range(20)],
            "fn": f"{name}-{version}-{build}.conda",
            "name": name,
            "requested_spec": "None",
            "subdir": "linux-64",
            "url": f"https://conda.anaconda.org/conda-forge/linux-64/{name}-{version}-{build}.conda",
            "version": version,
        }
        (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(record, indent=2))
    history.append(f"# update specs: {requested!r}")
    for block in range(20):
        spec = f"lib{rng.randrange(count - 2):03d}"
        history += [
            f"==> 2026-02-{block + 1:02d} 10:00:00 <==",
            f"# cmd: /opt/conda/bin/conda install -p {env} {spec}",
            "# conda version: 24.11.3",
            f"# update specs: [{spec!r}]",
        ]
    (meta / "history").write_text("\n".join(history) + "\n")


def synthetic_records(  # noqa: C901 - one branch per kind of record the benchmark mixes
    count: int, rng: random.Random, prefix: Path
) -> list[dict[str, Any]]:
    """Audit records, oldest first, shaped like safe-pip's (schema 1)."""
    packages = [f"pkg{n:04d}" for n in range(2500)]
    state: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    previous = "0" * 64
    for number in range(count):
        roll = rng.random()
        installed: list[dict[str, Any]] = []
        removed: list[dict[str, str]] = []
        decision, outcome, command = "allowed", "ok", "install"
        index: dict[str, Any] = {
            "index_url": None,
            "extra_index_urls": [],
            "find_links": [],
            "no_index": False,
        }
        if roll < 0.15:
            decision, outcome, rule = "denied", "denied", "conda-owned"
        elif roll < 0.20:
            command = "uninstall"
            names = rng.sample(sorted(state) or packages, k=min(2, len(state) or 2))
            removed = [{"name": n, "version": state.pop(n, "1.0")} for n in names]
        else:
            rule = ""
            outcome = rng.choices(["ok", "failed", "interrupted"], [96, 3, 1])[0]
            if rng.random() < 0.05:
                index["index_url"] = "https://bot:****@pypi.corp.example/simple"
            for name in rng.sample(packages, k=rng.randint(1, 6)):
                version = f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
                kind = rng.choices(["index", "vcs", "url", "file", "editable"], [90, 3, 2, 3, 2])[0]
                source: dict[str, Any] = {"kind": kind}
                if kind == "index":
                    source["url"] = f"https://files.example/{name}-{version}-py3-none-any.whl"
                    source["index_url"] = index["index_url"] or "https://pypi.org/simple"
                elif kind == "vcs":
                    source.update(
                        vcs="git",
                        url=f"https://****@git.example/org/{name}.git",
                        commit=hashlib.sha1(f"{name}{version}".encode()).hexdigest(),
                    )
                elif kind == "url":
                    source["url"] = f"https://dl.example/{name}-{version}.tar.gz"
                elif kind == "file":
                    source["path"] = f"/srv/wheels/{name}-{version}-py3-none-any.whl"
                else:
                    source["path"] = f"/home/user{rng.randint(1, 40)}/src/{name}"
                installed.append(
                    {
                        "name": name,
                        "version": version,
                        "source": source,
                        "hashes": {"sha256": hashlib.sha256(name.encode()).hexdigest()},
                        "requested": len(installed) == 0,
                    }
                )
                state[name] = version
        record: dict[str, Any] = {
            "schema": 1,
            "time": f"2026-03-{1 + number % 28:02d}T{number % 24:02d}:00:00Z",
            "user": f"user{rng.randint(1, 40)}",
            "uid": 1000 + rng.randint(1, 40),
            "prefix": str(prefix),
            "python": f"{prefix}/bin/python",
            "safe_pip_version": "0.1.0",
            "command": command,
            "argv": [command, *(i["name"] for i in installed), *(r["name"] for r in removed)],
            "requested": [i["name"] for i in installed if i["requested"]],
            "decision": decision,
            "rule": rule if decision == "denied" else "",
            "outcome": outcome,
            "exit_code": 0 if outcome == "ok" else 1,
            "index": index,
        }
        if decision == "allowed":
            record["changes"] = {"installed": installed, "removed": removed}
        line = json.dumps(record, sort_keys=True)
        record["prev"] = previous
        previous = hashlib.sha256(line.encode()).hexdigest()
        record["hash"] = previous
        records.append(record)
    return records


def install_final_state(env: Path, records: list[dict[str, Any]]) -> int:
    """dist-info dirs for what the log leaves installed (so the drift check finds them)."""
    state: dict[str, str] = {}
    for record in records:
        changes = record.get("changes")
        if record["decision"] != "allowed" or not changes:
            continue
        for item in changes["removed"]:
            state.pop(item["name"], None)
        for item in changes["installed"]:
            state[item["name"]] = item["version"]
    site = site_packages(env)
    for name, version in state.items():
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
    return len(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary env")
    args = parser.parse_args(argv)

    rng = random.Random(SEED)
    root = Path(tempfile.mkdtemp(prefix="safe-pip-bench-export-"))
    try:
        env = make_env(root)
        write_conda_meta(env, rng)
        records = synthetic_records(args.records, rng, env)
        log = env / "var" / "log" / "safe-pip" / "audit.jsonl"
        log.parent.mkdir(parents=True)
        with open(log, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        installed = install_final_state(env, records)
        size = log.stat().st_size
        print(
            f"log: {len(records):,} records, {size / 1e6:.1f} MB; "
            f"{installed:,} distributions installed; 300 conda records"
        )
        out = root / "environment.yml"
        command = [
            sys.executable,
            "-c",
            PEAK_WRAPPER,
            "export",
            "--python",
            str(env / "bin" / "python"),
            "-o",
            str(out),
        ]
        environ = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
        times: list[float] = []
        cpu: list[float] = []
        peaks: list[int] = []
        for _ in range(args.runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=environ)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                print(done.stdout, done.stderr, file=sys.stderr)
                return 1
            peaks.append(int(done.stderr.rsplit("peak-kB ", 1)[1].split()[0]))
        lines = out.read_text().count("\n")
        print(f"command: {sys.executable} -m safe_pip export --python ENV/bin/python -o FILE")
        print(
            f"{args.runs} runs, wall: min {min(times) * 1000:.0f} ms, "
            f"median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms; CPU (user+sys, with the interpreter probe): "
            f"min {min(cpu) * 1000:.0f} ms, median {statistics.median(cpu) * 1000:.0f} ms "
            f"(environment.yml: {lines:,} lines)"
        )
        print(
            f"peak memory of export (VmHWM, the mapped log's resident pages included): "
            f"max {max(peaks) / 1024:.0f} MB"
        )
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        if done.stderr:
            print("stderr of the last run:", done.stderr.strip()[:500], sep="\n")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
