"""Benchmark ownership, drift and the preflight (docs/performance.md, "Ownership and preflight").

Two parts, each on real prefixes made by the test suite's ``make_prefix`` (a
non-venv CPython with ``conda-meta`` laid down as conda does):

``ownership`` builds a conda env with 3,000 package records (shaped like real
ones: tens to hundreds of ``files`` and a ``paths_data`` entry each), 2,000
installed distributions (1,700 linked by a record, 300 installed by pip, 260 of
those explained by the audit log), a ``conda-meta/history`` of 100,000 lines and
an audit log of 100,000 records, then times in-process what safe-pip adds to a
command: the ownership check of one install (the env's records, its
site-packages, the owners of 20 names) and the drift of ``safe-pip status``,
each with warm caches (the usual case) and cold ones (the first command after a
change), plus the whole ``safe-pip status`` CLI.

``preflight`` times ``pip install`` of 20 local wheels (each a package of 40
modules; 15 new projects and new versions of 5 that pip installed) into that
env: bare ``python -m pip install`` against ``safe-pip install`` (decision, one
pip run with the preflight bootstrap, the check of the 20 against conda's 3,000
records, the audit record), alternating, the env restored after each run.

    .venv/bin/python scripts/bench_ownership.py [ownership|preflight|all] [--runs N] [--keep]
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "src"))
sys.path.insert(0, str(PROJECT / "tests"))

import benchlib  # noqa: E402 (scripts/ is sys.path[0] when a script runs)

from safe_pip.conda_records import read_records  # noqa: E402
from safe_pip.drift import compute_drift, log_state  # noqa: E402
from safe_pip.environment import inspect_environment  # noqa: E402
from safe_pip.inventory import scan, scan_all  # noqa: E402
from safe_pip.ownership import owners  # noqa: E402
from safe_pip.target import Target  # noqa: E402
from support.prefixes import make_prefix  # noqa: E402
from support.wheels import build_wheel  # noqa: E402

SEED = 20260112
SAFE_PIP = str(Path(sys.executable).parent / "safe-pip")
FILE_COUNTS = (24, 44, 78, 137, 180, 250, 320, 420, 60, 854)


def timed(label: str, action: Callable[[], object], runs: int) -> float:
    return benchlib.timed("  " + label, action, runs, width=60)


# --- part 1: ownership and drift ------------------------------------------------------------


def conda_record(name: str, version: str, site: str, count: int, dist: str | None) -> str:
    files = []
    if dist is not None:
        info = f"{site}/{dist}-{version}.dist-info"
        files = [f"{info}/{leaf}" for leaf in ("INSTALLER", "METADATA", "RECORD", "WHEEL")]
        files += [f"{site}/{dist}/module_{n:04d}.py" for n in range(count - len(files))]
    else:
        files = [f"lib/lib{name}.so.{n}" for n in range(count)]
    build = "pyhd8ed1ab_0"
    record = {
        "build": build,
        "build_number": 0,
        "channel": "https://conda.anaconda.org/conda-forge/noarch",
        "constrains": [],
        "depends": ["python >=3.11"],
        "extracted_package_dir": f"/opt/conda/pkgs/{name}-{version}-{build}",
        "files": files,
        "fn": f"{name}-{version}-{build}.conda",
        "license": "MIT",
        "link": {"source": f"/opt/conda/pkgs/{name}-{version}-{build}", "type": 1},
        "md5": "0" * 32,
        "name": name,
        "paths_data": {
            "paths": [
                {
                    "_path": f,
                    "path_type": "hardlink",
                    "sha256": "a" * 64,
                    "sha256_in_prefix": "a" * 64,
                    "size_in_bytes": 1234,
                }
                for f in files
            ],
            "paths_version": 1,
        },
        "requested_spec": "None",
        "sha256": "b" * 64,
        "size": 12345,
        "subdir": "noarch",
        "timestamp": 1700000000000,
        "url": f"https://conda.anaconda.org/conda-forge/noarch/{name}-{version}-{build}.conda",
        "version": version,
    }
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def lay_dist(site: Path, dist: str, version: str, installer: str) -> None:
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer if installer == "conda" else installer + "\n")
    (info / "RECORD").write_text(
        "".join(f"{info.name}/{leaf},,\n" for leaf in ("METADATA", "INSTALLER", "RECORD"))
    )


def history_text(lines: int) -> str:
    out: list[str] = []
    block = 0
    while len(out) < lines:
        out.append(f"==> 2025-{block % 12 + 1:02d}-{block % 28 + 1:02d} 12:00:{block % 60:02d} <==")
        out.append(f"# cmd: /opt/conda/bin/conda install -y pkg{block}")
        out.append("# conda version: 24.11.3")
        for n in range(20):
            out.append(f"-conda-forge/noarch::pkg{block - 1}-{n}-1.0.{n}-pyh0_{n}")
            out.append(f"+conda-forge/noarch::pkg{block}-{n}-1.0.{n}-pyh0_{n}")
        out.append(f"# update specs: ['pkg{block}']")
        block += 1
    return "\n".join(out[:lines]) + "\n"


def audit_log(path: Path, prefix: Path, records: int, names: list[str]) -> dict[str, str]:
    """``records`` audit records (schema 1, about 1.2 KB each) over ``names``; returns
    the final state (name -> version)."""
    rng = random.Random(SEED)
    state: dict[str, str] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for number in range(records):
            roll = rng.random()
            installed: list[dict[str, Any]] = []
            removed: list[dict[str, str]] = []
            decision, outcome = "allowed", "ok"
            if roll < 0.15:
                decision, outcome = "denied", "denied"
            elif roll < 0.18 and state:
                name = rng.choice(sorted(state))
                removed.append({"name": name, "version": state.pop(name)})
            else:
                for name in rng.sample(names, k=rng.randint(1, 4)):
                    version = f"{rng.randint(0, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
                    installed.append(
                        {
                            "name": name,
                            "version": version,
                            "requested": not installed,
                            "source": {
                                "kind": "index",
                                "url": f"https://files.example/{name}-{version}-py3-none-any.whl",
                                "index_url": "https://pypi.org/simple",
                            },
                            "hashes": {"sha256": f"{rng.getrandbits(256):064x}"},
                        }
                    )
                    state[name] = version
            record = {
                "schema": 1,
                "id": f"{rng.getrandbits(128):032x}",
                "time": f"2026-{1 + number % 12:02d}-{1 + number % 28:02d}T10:00:00.000000Z",
                "prev": f"{rng.getrandbits(256):064x}",
                "user": f"user{rng.randint(1, 60)}",
                "prefix": str(prefix),
                "command": "uninstall" if removed else "install",
                "argv": ["install", *(i["name"] for i in installed)],
                "decision": decision,
                "rule": "allowed" if decision == "allowed" else "conda-owned",
                "outcome": outcome,
                "exit_code": 0,
                "changes": {"installed": installed, "removed": removed}
                if decision == "allowed"
                else {"installed": [], "removed": []},
                "packages": sorted({i["name"] for i in installed} | {r["name"] for r in removed}),
            }
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
    return state


def build_big_env(root: Path) -> tuple[Path, dict[str, int]]:
    prefix = Path(make_prefix(root, "conda-env", "big", writable_by=0).path)
    site_rel = "lib/python3.11/site-packages"
    site = prefix / site_rel
    meta = prefix / "conda-meta"
    conda_dists = 1700
    for index in range(3000):
        name = f"pkg{index:05d}"
        count = FILE_COUNTS[index % len(FILE_COUNTS)]
        dist = name if index < conda_dists else None
        (meta / f"{name}-1.{index % 7}.0-pyhd8ed1ab_0.json").write_text(
            conda_record(name, f"1.{index % 7}.0", site_rel, count, dist)
        )
        if dist is not None:
            lay_dist(site, dist, f"1.{index % 7}.0", "conda")
    (meta / "history").write_text(history_text(100_000))
    names = [f"pypkg{n:03d}" for n in range(300)]
    state = audit_log(prefix / "var" / "log" / "safe-pip" / "audit.jsonl", prefix, 100_000, names)
    logged = 0
    for name in names:
        if name in state and logged < 260:
            lay_dist(site, name, state[name], "pip")
            logged += 1
    stray = 300 - logged
    for n in range(stray):
        lay_dist(site, f"stray{n:03d}", "0.1", "pip")
    dists = sum(1 for p in site.iterdir() if p.name.endswith(".dist-info"))
    return prefix, {"records": 3000, "dists": dists, "logged": logged, "stray": stray}


def part_ownership(root: Path, runs: int, *, measure: bool = True) -> Path:
    prefix, counts = build_big_env(root)
    log = prefix / "var" / "log" / "safe-pip" / "audit.jsonl"
    print(
        f"env: {counts['records']:,} conda records, {counts['dists']:,} distributions "
        f"({counts['logged']} from the audit log, {counts['stray']} unexplained), history "
        f"100,000 lines ({(prefix / 'conda-meta' / 'history').stat().st_size / 1e6:.1f} MB), "
        f"audit log 100,000 records ({log.stat().st_size / 1e6:.0f} MB)"
    )
    cache = root / "cache"
    environ = {**os.environ, "XDG_CACHE_HOME": str(cache), "HOME": str(root)}
    os.environ["XDG_CACHE_HOME"] = str(cache)  # read_records' cache follows os.environ
    if not measure:
        return prefix
    env = inspect_environment(Target(str(prefix / "bin" / "python"), "bench"), environ)
    sites = [env.purelib, env.platlib]
    planned = [f"pkg{n:05d}" for n in range(0, 2000, 100)]  # 20 names, 17 of them conda's

    def install_check() -> object:
        installed = scan(sites)
        return owners(installed, read_records(env.prefix), env, planned)

    def drift() -> object:
        logged = log_state([str(log)], environ)
        return compute_drift(env, scan_all(sites), read_records(env.prefix), logged, environ)

    def clear_caches() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    meta = prefix / "conda-meta"
    victim = sorted(meta.glob("pkg0*.json"))[5]
    appended = [0]

    def conda_changed() -> None:
        """What `conda install` of one package does to conda-meta: a record replaced."""
        data = victim.read_bytes()
        victim.unlink()
        victim.write_bytes(data)
        os.utime(meta, (time.time() - 5, time.time() - 5))  # older than the racy window

    def pip_recorded() -> None:
        """What one more safe-pip install does to the log: a record appended."""
        appended[0] += 1
        line = {
            "schema": 1,
            "time": "2026-12-31T10:00:00.000000Z",
            "decision": "allowed",
            "outcome": "ok",
            "changes": {"installed": [{"name": "pypkg001", "version": "0.0.1"}], "removed": []},
        }
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    few = max(3, runs // 3)
    scanned = scan(sites)

    def check_alone() -> object:
        return owners(scanned, read_records(env.prefix), env, planned)

    print("ownership check of one install (20 names):")
    install_check()
    timed("warm caches", install_check, runs)
    timed("  the check alone (the scan is the change record's anyway)", check_alone, runs)
    timed(
        "after a conda change (one record replaced)",
        lambda: (conda_changed(), install_check()),
        few,
    )
    timed(
        "no cache at all (the first command ever)", lambda: (clear_caches(), install_check()), few
    )
    print("drift of safe-pip status:")
    result = drift()
    timed("warm caches", drift, runs)
    timed("  of which conda_records.read_records", lambda: read_records(env.prefix), runs)
    timed("  of which inventory.scan_all", lambda: scan_all(sites), runs)
    timed(
        "after one safe-pip install (one log record appended)",
        lambda: (pip_recorded(), drift()),
        few,
    )
    timed("after a conda change (one record replaced)", lambda: (conda_changed(), drift()), few)
    timed("no cache at all (the first status ever)", lambda: (clear_caches(), drift()), few)
    drift()  # warm again
    found = result.as_dict()  # type: ignore[attr-defined]
    print(
        f"  (found {len(found['unexplained'])} unexplained, {len(found['overwritten'])} "
        f"overwritten, layered={found['layered']})"
    )
    command = [SAFE_PIP, "status", "--json", "--python", str(prefix / "bin" / "python")]
    small = Path(make_prefix(root, "conda-env", "small", writable_by=0).path)
    small_command = [SAFE_PIP, "status", "--json", "--python", str(small / "bin" / "python")]
    for label, argv in (("safe-pip status, this env", command), ("... a fresh env", small_command)):
        subprocess.run(argv, env=environ, capture_output=True, check=True)
        timed(
            label,
            lambda argv=argv: subprocess.run(argv, env=environ, capture_output=True, check=True),
            runs,
        )
    return prefix


# --- part 2: the preflight ------------------------------------------------------------------


def bench_wheels(house: Path) -> list[str]:
    """20 wheels of 40 modules each: 15 new projects, and new versions of 5 projects that
    pip installed in the big env (pypkg000-pypkg004), so the check has owners to look up."""
    names = [(f"bench-pkg{n:02d}", "1.0") for n in range(15)]
    names += [(f"pypkg{n:03d}", "9.0.0") for n in range(5)]
    for name, version in names:
        module = name.replace("-", "_")
        files = {
            f"{module}/m{i:02d}.py": f"# {name} module {i}\n" + "x = 1\n" * 200 for i in range(40)
        }
        files[f"{module}/__init__.py"] = f'__version__ = "{version}"\n'
        build_wheel(house, name, version, files=files)
    return sorted(str(p) for p in house.glob("*.whl"))


def _median_line(label: str, times: list[float]) -> str:
    return (
        f"  {label:<9} median {statistics.median(times) * 1000:6.0f} ms  "
        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {len(times)} runs)"
    )


def _fresh_env_runs(
    root: Path, runs: int, wheels: list[str], environ: dict[str, str]
) -> dict[str, list[float]]:
    """The 15 new wheels into a fresh conda env (made for each run): pip is fast there,
    so safe-pip's own share shows most."""
    times: dict[str, list[float]] = {"bare pip": [], "safe-pip": []}
    for run in range(runs + 1):
        for label in ("bare pip", "safe-pip") if run % 2 == 0 else ("safe-pip", "bare pip"):
            prefix = Path(make_prefix(root, "conda-env", f"fresh-{run}", writable_by=0).path)
            python = str(prefix / "bin" / "python")
            argv = (
                [python, "-m", "pip", "install", "-q", *wheels]
                if label == "bare pip"
                else [SAFE_PIP, "--python", python, "install", "-q", *wheels]
            )
            start = time.perf_counter()
            subprocess.run(argv, env=environ, check=True)
            if run > 0:
                times[label].append(time.perf_counter() - start)
            shutil.rmtree(prefix)
    print("pip install of 15 local wheels into a fresh conda env (made for each run):")
    _report(times)
    return times


def _report(times: dict[str, list[float]]) -> None:
    for label, samples in times.items():
        print(_median_line(label, samples))
    bare, guarded = times["bare pip"], times["safe-pip"]
    print(
        f"  ratio {statistics.median(guarded) / statistics.median(bare):.3f} (medians), "
        f"{min(guarded) / min(bare):.3f} (best runs)"
    )


def part_preflight(root: Path, runs: int, big: Path) -> None:
    wheels = bench_wheels(root / "wheels")
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INDEX": "1",
        "PIP_ROOT_USER_ACTION": "ignore",
        "XDG_CACHE_HOME": str(root / "cache"),
        "LANG": "C.UTF-8",
    }
    site = big / "lib" / "python3.11" / "site-packages"
    originals = {
        p.name.split("-")[0]: p.name.split("-")[1][: -len(".dist-info")]
        for p in site.glob("pypkg00[0-4]-*.dist-info")
    }
    assert len(originals) == 5, originals
    new_names = [Path(w).name.split("-")[0] for w in wheels]

    def restore() -> None:
        """Back to the state before the install (the records' cache stays warm)."""
        subprocess.run(
            [str(big / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", *new_names],
            env=environ,
            check=True,
        )
        for name, version in originals.items():
            lay_dist(site, name, version, "pip")

    python = str(big / "bin" / "python")
    _fresh_env_runs(root, runs, wheels[:15], environ)
    commands = {
        "bare pip": [python, "-m", "pip", "install", "-q", *wheels],
        "safe-pip": [SAFE_PIP, "--python", python, "install", "-q", *wheels],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    print(
        "pip install of 20 local wheels (15 new, 5 upgrades of pip-installed ones) into the "
        "env above:"
    )
    for run in range(runs + 1):
        order = list(commands) if run % 2 == 0 else list(reversed(commands))
        for label in order:
            start = time.perf_counter()
            subprocess.run(commands[label], env=environ, check=True)
            elapsed = time.perf_counter() - start
            if run > 0:  # the first round warms the page cache and safe-pip's caches
                times[label].append(elapsed)
            assert len(list(site.glob("bench_pkg*.dist-info"))) == 15
            assert len(list(site.glob("pypkg00[0-4]-9.0.0.dist-info"))) == 5
            restore()
    _report(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=("ownership", "preflight", "all"), default="all")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (the test suite's prefixes copy the interpreter from /root)")
        return 2
    with benchlib.scratch_dir("ownership", args.keep) as root:
        big = part_ownership(root, args.runs, measure=args.part != "preflight")
        if args.part in ("preflight", "all"):
            part_preflight(root, args.runs, big)
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
