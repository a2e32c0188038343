"""``safe-pip devenv``: a per-project dev env layered on a (read-only) env.

The dev env is a venv made by the env's own interpreter with
``--system-site-packages``: it sees every package of the env, and its only own
content is the editable project, installed through safe-pip's guard with
``--no-build-isolation --no-deps`` (so it builds against the env's packages and
pulls nothing from PyPI).  When the env has ``ipykernel``, the dev env is
registered as a Jupyter kernel.  Nothing goes to ``~/.local/lib``: the project
is visible in the dev env and in no other env.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from safe_pip.commands import target_environment
from safe_pip.environment import Environment
from safe_pip.errors import SafePipError, TargetError, UsageError


def _project_name(project: Path) -> str:
    pyproject = project / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        text = ""
    match = re.search(r'^\s*name\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    return match.group(1) if match else project.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "dev"


def jupyter_data_dir(environ: Mapping[str, str]) -> Path:
    """Where Jupyter looks for a user's kernels (jupyter_core's rule on Linux)."""
    if environ.get("JUPYTER_DATA_DIR"):
        return Path(environ["JUPYTER_DATA_DIR"])
    xdg = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(xdg) / "jupyter"


def _has_module(python: str, module: str) -> bool:
    proc = subprocess.run(
        [
            python,
            "-I",
            "-c",
            f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)",
        ],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _kernel_dir(name: str, environ: Mapping[str, str]) -> Path:
    return jupyter_data_dir(environ) / "kernels" / name


def _write_kernel(name: str, display: str, python: str, environ: Mapping[str, str]) -> Path:
    directory = _kernel_dir(name, environ)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display,
        "language": "python",
        "metadata": {"debugger": True, "safe-pip": {"devenv": True}},
    }
    (directory / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return directory


def create(
    env: Environment,
    project: Path,
    directory: Path,
    name: str,
    kernel: bool,
    environ: Mapping[str, str],
) -> int:
    if not (project / "pyproject.toml").exists() and not (project / "setup.py").exists():
        raise UsageError(
            f"{project} is not a Python project (no pyproject.toml or setup.py)",
            hint="run `safe-pip devenv <project dir>`",
        )
    python = directory / "bin" / "python"
    if not python.exists():
        print(f"creating the dev env {directory} (layered on {env.prefix})")
        proc = subprocess.run(
            [env.python, "-m", "venv", "--system-site-packages", "--without-pip", str(directory)],
            check=False,
        )
        if proc.returncode != 0:
            raise TargetError(f"could not create the venv {directory}")
    # the dev install goes through safe-pip itself: decided, run, recorded
    from safe_pip import guard

    code = guard.run_pip_command(
        [
            "--python",
            str(python),
            "install",
            "--no-build-isolation",
            "--no-deps",
            "-e",
            str(project),
        ],
        environ,
    )
    if code != 0:
        print(
            f"safe-pip: the dev install failed (exit {code}); the dev env is at {directory}",
            file=sys.stderr,
        )
        return code
    lines = [
        f"dev env:  {directory}",
        f"project:  {project} (editable, visible only in this dev env)",
        f"python:   {python}",
    ]
    if kernel:
        if _has_module(str(python), "ipykernel"):
            kdir = _write_kernel(name, f"{name} (dev on {env.name})", str(python), environ)
            lines.append(f"kernel:   {kdir} (pick '{name} (dev on {env.name})' in JupyterLab)")
        else:
            lines.append("kernel:   not registered (the env has no ipykernel)")
    lines.append(f"use it:   {python} -m ... , or `source {directory}/bin/activate`")
    lines.append(f"remove:   safe-pip devenv --remove --dir {directory} --name {name}")
    print("\n".join(lines))
    return 0


def remove(directory: Path, name: str, environ: Mapping[str, str]) -> int:
    if not (directory / "pyvenv.cfg").exists():
        raise UsageError(f"{directory} is not a dev env (no pyvenv.cfg)")
    shutil.rmtree(directory)
    print(f"removed  {directory}")
    kdir = _kernel_dir(name, environ)
    spec = kdir / "kernel.json"
    try:
        data = json.loads(spec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and str(data.get("argv", [""])[0]).startswith(str(directory)):
        shutil.rmtree(kdir)
        print(f"removed  {kdir}")
    return 0


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    project = Path(args.project).resolve()
    name = _slug(args.name or f"{_project_name(project)}-dev")
    env = target_environment(args.python, environ)
    directory = Path(args.dir).resolve() if args.dir else project / f".venv-{_slug(env.name)}"
    try:
        if args.remove:
            return remove(directory, name, environ)
        return create(env, project, directory, name, not args.no_kernel, environ)
    except OSError as error:
        raise SafePipError(f"{error.filename or ''}: {error.strerror}") from error
