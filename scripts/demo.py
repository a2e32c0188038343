"""The demo's walk-through; run by ./scripts/demo with safe-pip's own venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.prefixes import make_prefix  # noqa: E402
from support.run import install_setuptools  # noqa: E402
from support.wheels import build_wheel, make_project  # noqa: E402


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def show(argv: list[str], env: dict[str, str], expect: int | None = None) -> int:
    shown = " ".join(a if " " not in a else repr(a) for a in argv)
    print(f"$ {shown}", flush=True)
    code = subprocess.run(argv, env=env, check=False).returncode
    print(f"(exit {code})", flush=True)
    if expect is not None and code != expect:
        raise SystemExit(f"demo: expected exit {expect}, got {code}")
    return code


def main() -> int:
    work = Path(sys.argv[1])
    tool = work / "tool" / "bin" / "safe-pip"
    sample = work / "sample"
    if sample.exists():
        shutil.rmtree(sample)
    sample.mkdir(parents=True)
    os.environ.setdefault("SAFE_PIP_TEST_CACHE", str(work / "cache"))

    say("building a conda-style base env and an env 'analysis' in it (offline)")
    base = make_prefix(sample, "conda-base", "conda")
    env = make_prefix(base.path / "envs", "conda-env", "analysis")
    install_setuptools(env)  # for the developer install's --no-build-isolation build
    wheels = sample / "wheels"
    build_wheel(wheels, "tidy-tables", "1.2")
    project = make_project(sample / "mypkg", "mypkg", "0.1")
    home = sample / "home"
    home.mkdir()
    clean = {
        "PATH": f"{env.bin}:/usr/bin:/bin",
        "HOME": str(home),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "LANG": "C.UTF-8",
    }

    say("admin: protect both envs (PEP 668 marker + pip shims that run safe-pip)")
    for prefix in (base, env):
        show([str(tool), "protect", "--shim", "--python", str(prefix.python)], clean, 0)
    pip = str(env.bin / "pip")

    say("what safe-pip sees in 'analysis'")
    show([str(tool), "status"], clean, 0)

    say("1. an allowed install into your own env")
    show([pip, "install", "tidy-tables"], clean, 0)
    landed = sorted(p.name for p in env.site_packages.glob("tidy_tables*"))
    print(f"landed in {env.site_packages}: {landed}")

    say("2. a user install: refused (rule user-site), nothing lands in ~/.local")
    show([pip, "install", "--user", "tidy-tables"], clean, 10)
    print(f"~/.local exists: {(home / '.local').exists()}")

    say("3. a write into the conda base env: refused (rule base-env)")
    show(
        [str(base.bin / "pip"), "install", "tidy-tables"],
        {**clean, "PATH": f"{base.bin}:/usr/bin:/bin"},
        10,
    )
    show([pip, "install", "--prefix", str(base.path), "tidy-tables"], clean, 10)

    say("   and bare pip meets the PEP 668 marker")
    show([str(env.python), "-m", "pip", "install", "tidy-tables"], clean)

    say("4. a developer install: the isolated form is refused with the exact fix ...")
    show([pip, "install", "-e", str(project)], clean, 10)
    say("   ... and the corrected command works")
    show([pip, "install", "--no-build-isolation", "-e", str(project)], clean, 0)

    say("the audit log, and the spec that rebuilds the env")
    show([str(tool), "log"], clean, 0)
    show([str(tool), "export"], clean, 0)

    say("admin: unprotect restores the envs exactly")
    for prefix in (base, env):
        show([str(tool), "unprotect", "--python", str(prefix.python)], clean, 0)
    print(f"\ndemo done; the sample envs are in {sample}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
