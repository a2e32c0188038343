"""`%pip list` through safe-pip's IPython extension against IPython's own `%pip list`.

Builds a conda-style env with 40 distributions and the Jupyter packages the tests
use (ipykernel, from the package index, cached), protects it with
`safe-pip protect --shim` (which loads the extension in the env's IPython
config), starts IPython in that env as a user would (its config read), and
times, interleaved in one IPython process, the magic the extension registered
and IPython's own `PackagingMagics.pip`, and `!ENV/bin/pip list` (the shim)
for reference.  pip's output goes to /dev/null.

Usage: .venv/bin/python scripts/bench_pip_magic.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import benchlib  # noqa: E402 (scripts/ is sys.path[0] when a script runs)

from support.jupyter import add_jupyter, jupyter_site  # noqa: E402
from support.prefixes import make_prefix  # noqa: E402
from support.wheels import build_wheel  # noqa: E402

DRIVER = """
import json, sys, time
from IPython.core.magics.packaging import PackagingMagics

ip = get_ipython()
cases = {
    "IPython's own %pip list": PackagingMagics(ip).pip,
    "safe-pip's %pip list (the extension)": ip.find_line_magic("pip"),
    "!ENV/bin/pip list (the shim)": lambda line: ip.system(SHIM + " " + line),
}
assert cases["safe-pip's %pip list (the extension)"].__module__ == "safe_pip.ipython"
for magic in cases.values():
    magic("list")  # warm-up: bytecode, page cache
times = {name: [] for name in cases}
for _ in range(RUNS):
    for name, magic in cases.items():
        started = time.perf_counter()
        magic("list")
        times[name].append(time.perf_counter() - started)
with open(OUT, "w") as handle:
    json.dump(times, handle)
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    safe_pip = str(Path(sys.executable).with_name("safe-pip"))
    work = Path(tempfile.mkdtemp(prefix="safe-pip-bench-"))
    try:
        env = make_prefix(work, "conda-env", "bench")
        add_jupyter(env, jupyter_site(env.base))
        wheels = work / "wheels"
        names = [f"bench-dist-{i:02d}" for i in range(40)]
        for name in names:
            build_wheel(wheels, name, "1.0")
        clean = {
            "PATH": f"{env.bin}:/usr/bin:/bin",
            "HOME": str(work),
            "IPYTHONDIR": str(work / "ipython"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "LANG": "C.UTF-8",
        }
        install = [str(env.python), "-m", "pip", "install", "-q", "--no-index"]
        subprocess.run([*install, "--find-links", str(wheels), *names], env=clean, check=True)
        subprocess.run(
            [safe_pip, "protect", "--shim", "--python", str(env.python)],
            env=clean,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        out = work / "times.json"
        code = f"RUNS = {args.runs}; OUT = {str(out)!r}; SHIM = {str(env.bin / 'pip')!r}\n" + DRIVER
        subprocess.run(
            [str(env.python), "-m", "IPython", "--no-banner", "-c", code],
            env=clean,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times = json.loads(out.read_text())
        print(f"`%pip list` in IPython: {len(names)} distributions + Jupyter's, {args.runs} runs")
        benchlib.print_ratios(times, "IPython's own %pip list", width=40)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
