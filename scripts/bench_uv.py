"""Time a guarded uv install against bare pip and bare uv.

Builds, offline, 20 local wheels and, for every run, fresh conda-style envs
(the test suite's ``make_prefix``: a real non-venv Python with ``conda-meta``),
then installs the 20 wheels with ``--no-index --find-links`` into each by:

* ``python -m pip install ...`` (bare pip),
* ``uv pip install --python ENV/bin/python ...`` (bare uv),
* ``safe-pip --python ENV --installer uv install ...`` (guarded uv: the policy,
  uv's plan, the conda check on it, the pinned install, the audit record),
* ``safe-pip uv pip install --python ENV ...`` (the uv door, as ``%uv`` runs it),
* ``ENV/bin/uv pip install ...`` (the uv shim: what a user's ``uv pip install`` runs
  in an env that has uv and that ``safe-pip protect --shim`` protected; set up
  before the timing),
* ``safe-pip --python ENV install ...`` (guarded pip, for reference).

The commands run as subprocesses, interleaved in a new (seeded) order every
round, after one warm-up round (uv's cache and the page cache warm); each run
gets a new env, synced to disk before the command is timed.  uv is the one next
to this interpreter (the test extra's, as ``safe-pip-policy[uv]`` installs it).

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python scripts/bench_uv.py [--runs 9]

Needs root (``make_prefix`` copies the interpreter from /root/.pyenv).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))

import benchlib  # noqa: E402

from support.prefixes import make_prefix  # noqa: E402
from support.wheels import build_wheel  # noqa: E402

WHEELS = 20


def wheelhouse(root: Path) -> tuple[Path, list[str]]:
    house = root / "wheels"
    names = [f"bench-{i:02d}" for i in range(WHEELS)]
    for name in names:
        module = name.replace("-", "_")
        build_wheel(
            house,
            name,
            "1.0",
            files={
                f"{module}/__init__.py": "VALUE = 1\n" * 200,
                f"{module}/core.py": "def f():\n    return 2\n" * 100,
                f"{module}/data/table.csv": "a,b\n" + "1,2\n" * 500,
            },
        )
    return house, [f"{name}==1.0" for name in names]


def commands(
    env: Path, house: Path, requirements: list[str], uv: str, safe_pip: str
) -> dict[str, list[str]]:
    index = ["--no-index", "--find-links", str(house)]
    python = str(env / "bin" / "python")
    return {
        "bare pip": [python, "-m", "pip", "install", "-q", *index, *requirements],
        "bare uv": [uv, "pip", "install", "-q", "--python", python, *index, *requirements],
        "guarded uv": [
            safe_pip,
            "--python",
            python,
            "--installer",
            "uv",
            "install",
            "-q",
            *index,
            *requirements,
        ],
        "uv door": [
            safe_pip,
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            python,
            *index,
            *requirements,
        ],
        "uv shim": [str(env / "bin" / "uv"), "pip", "install", "-q", *index, *requirements],
        "guarded pip": [safe_pip, "--python", python, "install", "-q", *index, *requirements],
    }


def prepare(label: str, env: Path, uv: str, safe_pip: str, environ: dict[str, str]) -> None:
    """The env as the command finds it: for the shim, the env's own uv (as `conda install
    uv` puts it there) behind safe-pip's shim."""
    if label != "uv shim":
        return
    os.link(uv, env / "bin" / "uv")
    python = str(env / "bin" / "python")
    protect = [safe_pip, "protect", "--shim", "--python", python]
    proc = subprocess.run(protect, env=environ, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(protect)}\n{proc.stderr}")


def run_once(argv: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """(wall time, CPU time of the command and all its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    uv = shutil.which("uv", path=os.path.dirname(sys.executable))
    safe_pip = shutil.which("safe-pip", path=os.path.dirname(sys.executable))
    if uv is None or safe_pip is None:
        sys.exit("uv and safe-pip must be installed next to this interpreter (.[test])")
    with benchlib.scratch_dir("uv", args.keep) as root:
        environ = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(root / "home"),
            "LANG": "C.UTF-8",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "UV_CACHE_DIR": str(root / "uv-cache"),
            "UV_NO_PROGRESS": "1",
        }
        house, requirements = wheelhouse(root)
        times: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        counter = 0
        labels = ["bare pip", "bare uv", "guarded uv", "uv door", "uv shim", "guarded pip"]
        order = random.Random(11)
        for round_ in range(args.runs + 1):  # round 0 warms the caches
            # a new order every round: no command always runs after the same other one
            for label in order.sample(labels, len(labels)):
                counter += 1
                env = make_prefix(root, "conda-env", f"env-{counter}")
                prepare(label, env.path, uv, safe_pip, environ)
                os.sync()  # the new env's files on disk: no write-back during the timing
                argv = commands(env.path, house, requirements, uv, safe_pip)[label]
                # the shim is found as a user finds it: the env's bin first on PATH
                shim_path = {"PATH": f"{env.path / 'bin'}:{environ['PATH']}"}
                command_environ = {**environ, **shim_path} if label == "uv shim" else environ
                elapsed, cpu = run_once(argv, command_environ)
                if round_:
                    times.setdefault(label, []).append(elapsed)
                    cpus.setdefault(label, []).append(cpu)
                shutil.rmtree(env.path)
        medians = {label: statistics.median(values) for label, values in times.items()}
        cpu = {label: statistics.median(values) for label, values in cpus.items()}
        version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout
        print(f"{WHEELS} wheels, {args.runs} runs each, fresh conda-style env per run; {version}")
        for label, value in medians.items():
            best = min(times[label])
            print(
                f"{label:<12} median {value * 1000:7.1f} ms  best {best * 1000:7.1f} ms"
                f"  cpu (median, with children) {cpu[label] * 1000:7.1f} ms"
            )
        for num, den in (
            ("guarded uv", "bare pip"),
            ("guarded uv", "bare uv"),
            ("uv door", "bare pip"),
            ("uv door", "bare uv"),
            ("uv shim", "bare pip"),
            ("uv shim", "bare uv"),
        ):
            # the same round's runs were made within a second of each other: their ratio
            # is less moved by the VM's slower and faster stretches than the medians' one
            paired = statistics.median(a / b for a, b in zip(times[num], times[den]))
            print(
                f"{num} / {den}: wall {medians[num] / medians[den]:.3f}"
                f"  cpu {cpu[num] / cpu[den]:.3f}  paired by round {paired:.3f}"
            )


if __name__ == "__main__":
    main()
