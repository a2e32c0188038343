"""Time the uv backend's scratch install: what index-fetched distributions write.

A planned distribution that no local wheel describes (one uv fetches from an index) is
installed by uv into a scratch prefix inside uv's cache before the check, and its RECORD
read (``UvBackend.read_files``).  This times that step in-process, with a warm uv cache,
for 1 and 20 wheels (25 modules and a console script each) served by a PEP 503 index on
loopback, next to the two uv runs of the same install it sits between:

* the plan: ``uv pip install --dry-run --output-format json`` of the names;
* the scratch step: ``read_files`` (uv's install into the scratch, the RECORDs, removal);
* the install itself: ``uv pip install --no-deps`` of the pins into a fresh prefix.

    .venv/bin/python scripts/bench_uv_files.py [--runs 15]

Needs root (``make_prefix`` copies the interpreter from /root/.pyenv).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "tests"))

import benchlib  # noqa: E402

from safe_pip.backends.uv import Pins, UvBackend, planned, uv_environ  # noqa: E402
from safe_pip.backends.uv_cli import parse_uv_pip  # noqa: E402
from support.index import serve, simple_index, stop  # noqa: E402
from support.prefixes import make_prefix  # noqa: E402
from support.wheels import build_wheel  # noqa: E402


def index(root: Path, count: int) -> list[str]:
    """``count`` wheels in a simple index under ``root``; their names."""
    names = [f"bench-{i:02d}" for i in range(count)]
    wheels = []
    for name in names:
        module = name.replace("-", "_")
        files = {f"{module}/m{j}.py": "VALUE = 1\n" * 50 for j in range(25)}
        scripts = {f"{name}-cli": f"{module}.m0:main"}
        wheels.append(build_wheel(root / "files", name, "1.0", files=files, entry_points=scripts))
    simple_index(root, wheels)
    return names


def bench(root: Path, count: int, runs: int) -> None:
    uv = str(Path(sys.executable).parent / "uv")
    names = index(root / f"index-{count}", count)
    server, url = serve(root / f"index-{count}")
    try:
        environ = uv_environ({**os.environ, "UV_CACHE_DIR": str(root / "cache")})
        python = str(make_prefix(root, "conda-env", f"env-{count}").python)
        cmd = parse_uv_pip(["install", "--index-url", f"{url}/simple", *names], environ)
        base = [uv, "pip", "install", "--python", python, "--no-config", "--index-url"]
        plan_argv = [*base, f"{url}/simple", "--dry-run", "--output-format", "json", *names]

        def plan() -> str:
            done = subprocess.run(plan_argv, env=environ, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            return done.stdout

        answer = plan()
        backend = UvBackend(uv)

        def scratch_step() -> None:
            planned_ = planned(answer, Pins(cmd))
            assert backend.read_files(planned_, cmd, python, environ) is None
            assert all(isinstance(i.get("safe_pip_files"), dict) for i in planned_.plan["install"])

        def install() -> None:
            target = tempfile.mkdtemp(dir=root)
            argv = [*base, f"{url}/simple", "--no-deps", "--prefix", target, "--"]
            done = subprocess.run([*argv, *(f"{n}==1.0" for n in names)], env=environ,
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr

        install()  # uv's cache warm
        print(f"{count} wheel(s), {25 * count} modules, warm uv cache:")
        benchlib.timed("  plan (uv --dry-run)", plan, runs)
        benchlib.timed("  scratch step (read_files)", scratch_step, runs)
        benchlib.timed("  install (uv --no-deps, pinned)", install, runs)
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    with benchlib.scratch_dir("uv-files", args.keep) as root:
        for count in (1, 20):
            bench(root, count, args.runs)


if __name__ == "__main__":
    main()
