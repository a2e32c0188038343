"""Start-up benchmark: safe-pip's overhead on pass-through commands and on denials.

Builds (offline) a conda-style env with 40 distributions, then times, interleaved:
- bare `python -m pip list` vs `safe-pip --python ENV list` vs the env's shim `bin/pip list`;
- pip refusing a PEP 668-marked env vs safe-pip refusing `--user` and a base-env write.

Usage: .venv/bin/python scripts/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import benchlib  # noqa: E402 (scripts/ is sys.path[0] when a script runs)

from support.prefixes import make_prefix  # noqa: E402
from support.wheels import build_wheel  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, proc.returncode


def measure(cases: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in cases}
    codes: dict[str, set[int]] = {name: set() for name in cases}
    for argv in cases.values():  # warm-up: bytecode, page cache
        timed(argv, env)
    for _ in range(runs):
        for name, argv in cases.items():
            seconds, code = timed(argv, env)
            results[name].append(seconds)
            codes[name].add(code)
    for name, seen in codes.items():
        print(f"  {name}: exit codes {sorted(seen)}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    safe_pip = str(Path(sys.executable).with_name("safe-pip"))
    work = Path(tempfile.mkdtemp(prefix="safe-pip-bench-"))
    try:
        base = make_prefix(work, "conda-base", "conda")
        env = make_prefix(base.path / "envs", "conda-env", "bench")
        wheels = work / "wheels"
        names = [f"bench-dist-{i:02d}" for i in range(40)]
        for name in names:
            build_wheel(wheels, name, "1.0")
        clean = {
            "PATH": f"{env.bin}:/usr/bin:/bin",
            "HOME": str(work),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "LANG": "C.UTF-8",
        }
        subprocess.run(
            [
                str(env.python),
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--find-links",
                str(wheels),
                *names,
            ],
            env=clean,
            check=True,
        )
        subprocess.run(
            [safe_pip, "protect", "--shim", "--python", str(env.python)],
            env=clean,
            check=True,
            stdout=subprocess.DEVNULL,
        )

        print(
            f"pass-through: `pip list` of an env with {len(names) + 1} distributions, "
            f"{args.runs} runs"
        )
        listing = measure(
            {
                "bare python -m pip list": [str(env.python), "-m", "pip", "list"],
                "safe-pip --python ENV list": [safe_pip, "--python", str(env.python), "list"],
                "shim ENV/bin/pip list": [str(env.bin / "pip"), "list"],
            },
            clean,
            args.runs,
        )
        benchlib.print_ratios(listing, "bare python -m pip list")

        print(f"\ndenials, {args.runs} runs")
        refusal = measure(
            {
                "bare pip refuses (PEP 668)": [
                    str(env.python),
                    "-m",
                    "pip",
                    "install",
                    "--no-index",
                    "demo-a",
                ],
                "safe-pip refuses --user": [safe_pip, "install", "--user", "--no-index", "demo-a"],
                "safe-pip refuses base env": [
                    safe_pip,
                    "--python",
                    str(base.python),
                    "install",
                    "--no-index",
                    "demo-a",
                ],
            },
            clean,
            args.runs,
        )
        benchlib.print_ratios(refusal, "bare pip refuses (PEP 668)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
