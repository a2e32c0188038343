#!/usr/bin/env python3
"""Benchmark the audit log: append cost, and `safe-pip log` on a 1,000,000-record log.

Usage (from the project root): .venv/bin/python scripts/bench_audit.py [--records N] [--keep]

Builds, in a temp dir, a prefix that is a real env for safe-pip (a copy of this
interpreter's binary with its stdlib linked in, so its probe reports that
prefix), writes N realistic, correctly chained records straight into
<prefix>/var/log/safe-pip/audit.jsonl, then times:

* ``append``: base_record + append on that log, in-process (median of 200),
  without and with fsync, and the first append of a fresh process (imports
  included, median of 20);
* ``safe-pip log --python <prefix> --limit 20`` and ``--package X`` (a typical package,
  the median one by frequency, and numpy, a popular one) as subprocesses of the real
  CLI, median of 5 after one warm-up run (the log in the page cache).

Nothing is written outside the temp dir.  The figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))

from safe_pip.audit.locations import log_locations  # noqa: E402
from safe_pip.audit.record import base_record, line_hash, new_id, record_packages, utc_time  # noqa: E402
from safe_pip.audit.store import append  # noqa: E402
from safe_pip.commands import target_environment  # noqa: E402
from safe_pip.policy import load_policy  # noqa: E402

SAFE_PIP = str(Path(sys.executable).parent / "safe-pip")
POPULAR = ["numpy", "pandas", "requests", "scipy", "matplotlib", "idna", "urllib3", "six"]
USERS = [f"user{n:03d}" for n in range(60)]


def make_prefix(root: Path) -> Path:
    """A plain prefix: this interpreter's binary copied in, its stdlib linked (like a
    relocated CPython install); the probe then reports the copy's prefix."""
    prefix = root / "bench-env"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix})["stdlib"])
    binary = Path(os.path.realpath(sys.executable))
    (prefix / "bin").mkdir(parents=True)
    lib = prefix / "lib" / f"python{version}"
    (lib / "site-packages").mkdir(parents=True)
    shutil.copy2(binary, prefix / "bin" / binary.name)
    (prefix / "bin" / "python").symlink_to(binary.name)
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    return prefix


def package_pool(rng: random.Random) -> list[str]:
    syllables = ["py", "data", "fast", "json", "net", "geo", "ml", "viz", "sci", "io", "kit"]
    names = set(POPULAR)
    while len(names) < 3000:
        names.add(
            "-".join(rng.choice(syllables) for _ in range(rng.randint(1, 3)))
            + str(rng.randint(0, 99))
        )
    return sorted(names)


def bodies(rng: random.Random, names: list[str], prefix: str, count: int = 4000) -> list[str]:
    """JSON bodies (everything after ``prev``) of realistic records, reused round-robin."""
    weights = [40 if n in POPULAR else 1 for n in names]
    out = []
    for _ in range(count):
        user = rng.choice(USERS)
        kind = rng.random()
        picked = rng.choices(names, weights=weights, k=rng.randint(1, 5))
        items = []
        for name in dict.fromkeys(picked):
            version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            digest = f"{rng.getrandbits(256):064x}"
            items.append(
                {
                    "name": name,
                    "version": version,
                    "source": {
                        "kind": "index",
                        "url": f"https://files.pythonhosted.org/packages/{digest[:2]}/{digest[2:4]}/"
                        f"{digest[4:60]}/{name.replace('-', '_')}-{version}-py3-none-any.whl",
                        "index_url": "https://pypi.org/simple",
                    },
                    "hashes": {"sha256": digest},
                    "requested": not items,
                }
            )
        requested = [items[0]["name"]]
        if kind < 0.1:
            decision, rule, outcome, code = "denied", "read-only-env", "denied", 10
            command, changes = "install", {"installed": [], "removed": []}
        elif kind < 0.25:
            decision, rule, outcome, code = "allowed", "allowed", "ok", 0
            command = "uninstall"
            changes = {
                "installed": [],
                "removed": [{"name": i["name"], "version": i["version"]} for i in items],
            }
        else:
            decision, rule, outcome, code = "allowed", "allowed", "ok", 0
            command, changes = "install", {"installed": items, "removed": []}
        argv = [command, *(["-y"] if command == "uninstall" else []), *requested]
        body = {
            "safe_pip": "0.1.0",
            "user": user,
            "uid": 10000 + USERS.index(user),
            "host": "jupyter-" + user,
            "hub_user": user,
            "prefix": prefix,
            "env_name": "bench-env",
            "env_kind": "other",
            "python": "3.11.7",
            "pip_version": "24.2",
            "command": command,
            "argv": argv,
            "requested": requested,
            "index": {
                "index_url": None,
                "extra_index_urls": [],
                "find_links": [],
                "no_index": False,
            },
            "decision": decision,
            "rule": rule,
            "reason": "the policy allows pip install in this other environment"
            if decision == "allowed"
            else f"the environment {prefix} is not writable by you, so pip cannot write there",
            "outcome": outcome,
            "exit_code": code,
            "duration_s": round(rng.uniform(0.5, 40), 3),
            "changes": changes,
            "packages": sorted(record_packages({"changes": changes, "requested": requested})),
        }
        out.append(json.dumps(body, separators=(",", ":"))[1:-1])
    return out


def build_log(path: Path, records: int, prefix: str, rng: random.Random) -> dict[str, float]:
    """Write ``records`` chained lines; returns how often each package appears."""
    names = package_pool(rng)
    pool = bodies(rng, names, prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = 1_650_000_000.0
    prev = "null"
    counts: dict[str, int] = {}
    with open(path, "wb", buffering=1 << 22) as handle:
        for n in range(records):
            body = pool[n % len(pool)]
            line = (
                f'{{"schema":1,"id":"{new_id()}","time":"{utc_time(start + n * 60.0)}",'
                f'"prev":{prev},{body}}}'
            ).encode()
            handle.write(line + b"\n")
            prev = f'"{line_hash(line)}"'
    for body in pool:
        for name in {str(i.get("name")) for i in _items(body)}:
            counts[name] = counts.get(name, 0) + 1
    return {name: count / len(pool) for name, count in counts.items()}


def _items(body: str) -> list[dict[str, object]]:
    changes = json.loads("{" + body + "}")["changes"]
    return [*changes["installed"], *changes["removed"]]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_appends(env_python: str, log: Path, environ: dict[str, str]) -> dict[str, float]:
    env = target_environment(env_python, environ)
    figures = {}
    for fsync in (False, True):
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            rec = base_record(env, ["install", "demo==1.0"], "install", environ=environ)
            rec.update(decision="allowed", rule="allowed", outcome="ok", exit_code=0)
            append(rec, [str(log)], fsync=fsync)
            samples.append(time.perf_counter() - started)
        figures["fsync" if fsync else "plain"] = median_ms(samples)
    figures.update(time_write_ahead(env, log, environ))
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(PROJECT / 'src')!r})\n"
        "import json, safe_pip.environment, safe_pip.policy\n"
        "from safe_pip.environment import Environment, EnvKind\n"
        "from safe_pip.values import fields\n"
        "t = time.perf_counter()\n"
        "from safe_pip.audit.store import append\n"
        "from safe_pip.audit.record import base_record\n"
        "t_import = time.perf_counter() - t\n"
        "env = Environment(**{**dict.fromkeys(fields(Environment), ''), "
        f"'prefix': {str(log.parents[3])!r}, 'name': 'bench-env', 'kind': EnvKind.OTHER, "
        "'stale_markers': (), 'editable_dists': frozenset()})\n"
        "rec = base_record(env, ['install', 'demo'], 'install')\n"
        f"append(rec, [{str(log)!r}])\n"
        "print(time.perf_counter() - t, t_import)\n"
    )
    # as installed: byte-compiled (a first run writes the .pyc files, even where the
    # caller's environment says PYTHONDONTWRITEBYTECODE)
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    fresh: list[float] = []
    fresh_imports: list[float] = []
    for run in range(21):
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=child_env,
            capture_output=True,
            text=True,
            check=True,
        )
        total, imports = map(float, done.stdout.split())
        if run:
            fresh.append(total)
            fresh_imports.append(imports)
    figures["fresh"] = median_ms(fresh)
    figures["fresh_imports"] = median_ms(fresh_imports)
    figures["fresh_p90"] = sorted(fresh)[int(0.9 * len(fresh))] * 1000
    return figures


def time_write_ahead(env: Any, log: Path, environ: dict[str, str]) -> dict[str, float]:
    """What an install adds now: the check for unfinished intents, the intent (with the
    snapshot of a 300-distribution env, fsync'ed), pip's plan and the outcome (median of
    200)."""
    from safe_pip.audit.recovery import intent_fields, plan_fields, unfinished
    from safe_pip.inventory import Installed

    site = "/opt/conda/envs/bench/lib/python3.11/site-packages"
    before = {
        f"pkg{n}": Installed(f"pkg{n}", f"pkg{n}", "1.0", f"{site}/pkg{n}-1.0.dist-info", (n, n))
        for n in range(300)
    }
    report = {"install": [{"metadata": {"name": "demo", "version": "1.0"}}]}
    samples = []
    for _ in range(200):
        started = time.perf_counter()
        unfinished([str(log)])
        intent = base_record(env, ["install", "demo==1.0"], "install", environ=environ)
        intent.update(decision="allowed", rule="allowed")
        intent.update(intent_fields(before))
        append(intent, [str(log)], fsync=True)
        plan = base_record(env, ["install", "demo==1.0"], "install", environ=environ)
        plan.update(decision="allowed", rule="allowed")
        plan.update(plan_fields(intent["id"], report))
        append(plan, [str(log)])
        outcome = base_record(env, ["install", "demo==1.0"], "install", environ=environ)
        outcome.update(decision="allowed", rule="allowed", outcome="ok", exit_code=0)
        outcome.update(intent=intent["id"])
        append(outcome, [str(log)])
        samples.append(time.perf_counter() - started)
    return {"write_ahead": median_ms(samples)}


def time_shipping(root: Path, environ: dict[str, str]) -> dict[str, float]:
    """``Shipper.ship`` of one 1.6 KB record to a local UDP socket, a TCP listener and a
    unix datagram socket standing in for syslog (median of 200 each)."""
    import socket

    from safe_pip.audit.ship import Shipper

    record = {"schema": 2, "kind": "outcome", "decision": "allowed", "rule": "allowed"}
    record.update(time=utc_time(), command="install", outcome="ok", env_kind="conda-env")
    line = json.dumps({**record, "pad": "x" * 1500}, separators=(",", ":")).encode()
    figures = {}
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(256)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unix.bind(str(root / "log.sock"))
    unix.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    targets = {
        "udp": f"udp:127.0.0.1:{udp.getsockname()[1]}",
        "tcp": f"tcp:127.0.0.1:{tcp.getsockname()[1]}",
        "unix": f"unix:{root / 'log.sock'}",
    }
    for name, target in targets.items():
        shipper = Shipper(target, environ=environ)
        samples = []
        for _ in range(200):
            started = time.perf_counter()
            shipper.ship(record, line)
            samples.append(time.perf_counter() - started)
            if name == "tcp":
                tcp.accept()[0].close()
            elif name == "udp":
                udp.recv(65536)
            else:
                unix.recv(65536)
        figures[name] = median_ms(samples)
    for sock in (udp, tcp, unix):
        sock.close()
    return figures


def time_cli(args: list[str], environ: dict[str, str], runs: int = 5) -> tuple[float, int]:
    subprocess.run([SAFE_PIP, *args], env=environ, capture_output=True, check=True)  # warm-up
    samples = []
    lines = 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([SAFE_PIP, *args], env=environ, capture_output=True, check=True)
        samples.append(time.perf_counter() - started)
        lines = done.stdout.count(b"\n")
    return statistics.median(samples), lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    options = parser.parse_args()
    rng = random.Random(20240501)
    root = Path(tempfile.mkdtemp(prefix="safe-pip-bench-audit-"))
    try:
        prefix = make_prefix(root)
        environ = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(root / "home"),
            "XDG_STATE_HOME": str(root / "state"),
            "LANG": "C.UTF-8",
        }
        env = target_environment(str(prefix), environ)
        if env.prefix != str(prefix):
            print(f"the probe of {prefix} reports {env.prefix}; cannot benchmark", file=sys.stderr)
            return 1
        if load_policy(env.prefix).text("audit.location") != "env":
            print(
                "the system policy moves the log (audit.location); run elsewhere", file=sys.stderr
            )
            return 1
        log = Path(log_locations(env, None, environ)[0])
        started = time.perf_counter()
        share = build_log(log, options.records, str(prefix), rng)
        built = time.perf_counter() - started
        os.sync()  # let the writeback of the fresh log finish before timing appends to it
        size_mb = log.stat().st_size / 1e6
        typical = sorted((s, n) for n, s in share.items() if n not in POPULAR)
        rare = typical[len(typical) // 2][1]
        print(f"log: {options.records:,} records, {size_mb:.0f} MB, built in {built:.1f} s")

        appends = time_appends(str(prefix / "bin" / "python"), log, environ)
        base = ["log", "--python", str(prefix)]
        figures = [
            ("safe-pip log --limit 20", time_cli([*base, "--limit", "20"], environ)),
            (
                "safe-pip log --json --limit 20",
                time_cli([*base, "--json", "--limit", "20"], environ),
            ),
            (
                f"safe-pip log --package {rare}  ({share[rare]:.1%} of records)",
                time_cli([*base, "--json", "--package", rare], environ),
            ),
            (
                f"safe-pip log --package numpy  ({share.get('numpy', 0):.1%} of records)",
                time_cli([*base, "--json", "--package", "numpy"], environ),
            ),
            (
                "safe-pip log --package numpy  (table)",
                time_cli([*base, "--package", "numpy"], environ),
            ),
            (
                f"safe-pip log --package {rare} --limit 20",
                time_cli([*base, "--package", rare, "--limit", "20"], environ),
            ),
            ("safe-pip log --verify", time_cli([*base, "--verify"], environ, runs=1)),
            (
                "safe-pip log --limit 0 (start-up and probe only)",
                time_cli([*base, "--limit", "0"], environ),
            ),
        ]
        print(
            f"append (base_record + append), in-process, median of 200: {appends['plain']:.2f} ms"
        )
        print(
            f"append with fsync, in-process, median of 200:             {appends['fsync']:.2f} ms"
        )
        print(
            "unfinished-intent check + intent (300-dist snapshot, fsync) + plan + outcome, "
            f"median of 200: {appends['write_ahead']:.2f} ms"
        )
        print(
            f"first append of a fresh process, imports included, median of 20: "
            f"{appends['fresh']:.2f} ms (90th percentile {appends['fresh_p90']:.2f} ms; "
            f"of which importing safe_pip.audit {appends['fresh_imports']:.2f} ms)"
        )
        shipped = time_shipping(root, environ)
        print(
            "ship one record to syslog, median of 200: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in shipped.items())
        )
        for label, (seconds, lines) in figures:
            print(f"{label}: {seconds:.3f} s ({lines} lines out)")
    finally:
        if options.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
