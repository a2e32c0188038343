"""``safe-pip devenv``: a per-project dev env layered on a (read-only) env.

The dev env is a venv made by the env's own interpreter with
``--system-site-packages``: it sees every package of the env, and its only own
content is the editable project, installed through safe-pip's guard with
``--no-build-isolation --no-deps`` (so it builds against the env's packages and
pulls nothing from PyPI; the install is decided and recorded like any other).
When the env has ``ipykernel``, the dev env is registered as a Jupyter kernel:
a kernel spec (``kernel.json``) in the user's Jupyter data dir, whose ``argv``
runs the dev env's python.  Nothing goes to ``~/.local/lib``: the project is
importable in the dev env (and its kernel) and in no other env.

A dev env carries ``safe-pip-devenv.json`` (what it was made from); ``--remove``
deletes only a directory that has it.
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
from typing import Any

from safe_pip.commands import target_environment
from safe_pip.door import door
from safe_pip.environment import Environment
from safe_pip.errors import SafePipError, TargetError, UsageError
from safe_pip.readfile import MiB, read_bytes, read_text
from safe_pip.userdirs import data_home

MARKER = "safe-pip-devenv.json"
SCHEMA = "safe-pip.devenv/1"


def _project_name(project: Path) -> str:
    pyproject = project / "pyproject.toml"
    try:
        text = read_text(pyproject, limit=MiB)
    except (OSError, ValueError):
        text = ""
    match = re.search(r'^\s*name\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    return match.group(1) if match else project.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "dev"


def jupyter_data_dir(environ: Mapping[str, str]) -> Path:
    """Where Jupyter looks for a user's kernels (jupyter_core's rule on Linux)."""
    if environ.get("JUPYTER_DATA_DIR"):
        return Path(environ["JUPYTER_DATA_DIR"])
    data = data_home(environ) or os.path.expanduser(os.path.join("~", ".local", "share"))
    return Path(data) / "jupyter"


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
        "metadata": {"debugger": True, "safe-pip": {"devenv": str(Path(python).parent.parent)}},
        # ~/.local must not shadow what the dev env and its base env hold
        "env": {"PYTHONNOUSERSITE": "1"},
    }
    (directory / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return directory


def _read_marker(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(read_bytes(directory / MARKER, limit=MiB))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def _make_venv(env: Environment, directory: Path) -> None:
    if (directory / "pyvenv.cfg").exists() or (directory.exists() and any(directory.iterdir())):
        raise UsageError(
            f"{directory} exists and is not a safe-pip dev env",
            hint="choose another directory with --dir, or remove it first",
        )
    print(f"creating the dev env {directory} (layered on {env.prefix})")
    proc = subprocess.run(
        [env.python, "-m", "venv", "--system-site-packages", "--without-pip", str(directory)],
        check=False,
    )
    if proc.returncode != 0:
        raise TargetError(f"could not create the venv {directory} with {env.python}")


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
    marker = _read_marker(directory)
    if marker is None:
        _make_venv(env, directory)
        marker = {
            "schema": SCHEMA,
            "env": env.prefix,
            "python": env.python,
            "project": str(project),
            "kernel": None,
        }
        (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    else:
        print(f"updating the dev env {directory} (layered on {marker.get('env')})")
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
            display = f"{name} (dev on {env.name})"
            kdir = _write_kernel(name, display, str(python), environ)
            marker["kernel"] = str(kdir)
            (directory / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
            lines.append(f"kernel:   {kdir} (pick '{display}' in JupyterLab)")
        else:
            lines.append("kernel:   not registered (the env has no ipykernel)")
    lines.append(f"use it:   {python} ..., or `source {directory}/bin/activate`")
    entry = door(environ)
    lines.append(
        f"missing a package? add it to the env's spec ({entry} export --python {env.python})"
    )
    lines.append(f"remove:   {entry} devenv --remove --dir {directory}")
    print("\n".join(lines))
    return 0


def remove(directory: Path) -> int:
    marker = _read_marker(directory)
    if marker is None:
        raise UsageError(
            f"{directory} is not a safe-pip dev env (no {MARKER})",
            hint="give --dir the dev env's directory",
        )
    kernel = marker.get("kernel")
    shutil.rmtree(directory)
    print(f"removed  {directory}")
    if isinstance(kernel, str) and kernel:
        kdir = Path(kernel)
        try:
            data = json.loads(read_bytes(kdir / "kernel.json", limit=MiB))
        except (OSError, ValueError, RecursionError):
            data = None
        argv = data.get("argv") if isinstance(data, dict) else None
        if isinstance(argv, list) and argv and str(argv[0]).startswith(str(directory) + os.sep):
            shutil.rmtree(kdir)
            print(f"removed  {kdir}")
    return 0


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    project = Path(args.project).resolve()
    try:
        if args.remove:
            directory = Path(args.dir).resolve() if args.dir else None
            if directory is None:
                candidates = sorted(project.glob(".venv-*/" + MARKER))
                if len(candidates) != 1:
                    raise UsageError(
                        "which dev env? give --dir",
                        hint=f"dev envs of {project}: "
                        + (", ".join(str(c.parent) for c in candidates) or "none"),
                    )
                directory = candidates[0].parent
            return remove(directory)
        env = target_environment(args.python, environ)
        name = _slug(args.name or f"{_project_name(project)}-dev")
        directory = Path(args.dir).resolve() if args.dir else project / f".venv-{_slug(env.name)}"
        return create(env, project, directory, name, not args.no_kernel, environ)
    except OSError as error:
        raise SafePipError(f"{error.filename or ''}: {error.strerror}") from error
