"""Benchmark "decide on pip's plan, verify after" (docs/performance.md, "Plan checks and
verify-after").

On the big conda env of ``bench_ownership.py`` (3,000 package records, 2,000
installed distributions; made with the test suite's ``make_prefix``):

``install``: ``pip install`` of 20 local wheels (40 modules each; 15 new
projects, new versions of 5 pip-installed ones), bare ``python -m pip install``
against ``safe-pip install`` (decision, one pip run paused on its plan, the
name and file checks of every planned wheel against conda's 3,000 records and
the other RECORDs, the verify-after fingerprints, the audit record), alternating,
the env restored after each run.

``uninstall``: ``pip uninstall -y`` of one pip-installed distribution, bare
against ``safe-pip`` (pip's plan of what it removes, the name and file checks
against conda's records, verify-after, the record), alternating, the
distribution laid down again after each run; and, in-process, the checks alone
(``plan.uninstall_conflicts`` on the plan, warm caches; the fingerprints before
and after).

    .venv/bin/python scripts/bench_enforce.py [install|uninstall|all] [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
sys.path.insert(0, str(PROJECT / "tests"))

import bench_ownership  # noqa: E402 (scripts/ is sys.path[0] when a script runs)
import benchlib  # noqa: E402

from safe_pip import verify  # noqa: E402
from safe_pip.environment import inspect_environment  # noqa: E402
from safe_pip.inventory import scan  # noqa: E402
from safe_pip.plan import uninstall_conflicts  # noqa: E402
from safe_pip.target import Target  # noqa: E402

SAFE_PIP = bench_ownership.SAFE_PIP


def environ_for(root: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INDEX": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
        "XDG_CACHE_HOME": str(root / "cache"),
        "LANG": "C.UTF-8",
    }


def part_uninstall(root: Path, runs: int, big: Path) -> None:
    environ = environ_for(root)
    site = big / "lib" / "python3.11" / "site-packages"
    python = str(big / "bin" / "python")
    (info,) = site.glob("pypkg010-*.dist-info")
    version = info.name.split("-")[1][: -len(".dist-info")]
    commands = {
        "bare pip": [python, "-m", "pip", "uninstall", "-y", "-q", "pypkg010"],
        "safe-pip": [SAFE_PIP, "--python", python, "uninstall", "-y", "-q", "pypkg010"],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    for run in range(runs + 1):
        order = list(commands) if run % 2 == 0 else list(reversed(commands))
        for label in order:
            start = time.perf_counter()
            subprocess.run(commands[label], env=environ, check=True)
            elapsed = time.perf_counter() - start
            if run > 0:
                times[label].append(elapsed)
            assert not list(site.glob("pypkg010-*.dist-info"))
            bench_ownership.lay_dist(site, "pypkg010", version, "pip")
    print("pip uninstall -y of one pip-installed distribution in the env above:")
    for label, samples in times.items():
        print(bench_ownership._median_line(label, samples))
    extra = statistics.median(times["safe-pip"]) - statistics.median(times["bare pip"])
    print(f"  safe-pip on top of pip: {extra * 1000:.0f} ms (medians)")

    env = inspect_environment(Target(python, "bench"), environ)
    installed = scan([env.purelib, env.platlib])
    files = sorted(str(p) for p in (site / "pypkg010").rglob("*"))
    report = {
        "version": "1",
        "uninstall": [{"name": "pypkg010", "version": version, "files": files}],
    }
    uninstall_conflicts(env, report, installed, environ)  # warm the conda files index
    print("in-process, warm caches:")
    benchlib.timed(
        "  the plan check (names and files against conda)",
        lambda: uninstall_conflicts(env, report, installed, environ),
        runs * 3,
        width=60,
    )
    places = verify.watched_places(env, environ)
    sites = [(s, env.prefix) for s in dict.fromkeys([env.purelib, env.platlib])]
    benchlib.timed(
        "  verify-after (fingerprints before and after)",
        lambda: (
            verify.compare(verify.snapshot(places)),
            verify.compare(verify.snapshot(sites, children=False)),
        ),
        runs * 3,
        width=60,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=("install", "uninstall", "all"), default="all")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (the test suite's prefixes copy the interpreter from /root)")
        return 2
    with benchlib.scratch_dir("enforce", args.keep) as root:
        big = bench_ownership.part_ownership(root, args.runs, measure=False)
        if args.part in ("install", "all"):
            bench_ownership.part_preflight(root, args.runs, big)
        if args.part in ("uninstall", "all"):
            part_uninstall(root, args.runs, big)
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
