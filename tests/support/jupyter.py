"""Real Jupyter components for the notebook tests: ipykernel, jupyter_client, nbclient
and nbformat from the package index, installed once into a cached, world-readable
directory that test prefixes put on their path with a ``.pth`` file.

``execute_notebook`` runs cells through nbclient (the server side, in one prefix)
against a kernel registered for another prefix, as any user, and returns what
each cell printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from support.prefixes import BasePython, Prefix, cache_dir, cached_build
from support.run import Runner

#: pinned, so that the cache key names what is in it
REQUIREMENTS = (
    "ipykernel==7.4.0",
    "jupyter_client==8.10.0",
    "nbclient==0.11.0",
    "nbformat==5.11.1",
)

RUN_NOTEBOOK = """\
import sys

import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(
    notebook, kernel_name=sys.argv[3], timeout=240, startup_timeout=120, allow_errors=True
)
client.execute()
nbformat.write(notebook, sys.argv[2])
"""


def jupyter_site(base: BasePython) -> Path:
    """The cached directory holding the Jupyter packages for ``base``'s Python."""
    key = hashlib.sha256(f"{base.root}:{','.join(REQUIREMENTS)}".encode()).hexdigest()[:12]

    def build(staging: Path) -> None:
        # the machine's own pip configuration (its index), not a test's
        environ = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run(
            [str(base.python), "-m", "pip", "install", "--quiet", "--target", str(staging),
             *REQUIREMENTS],
            check=True,
            env=environ,
            capture_output=True,
        )  # fmt: skip

    return cached_build(cache_dir() / f"jupyter-site-{base.full_version}-{key}", build)


def add_jupyter(prefix: Prefix, site: Path) -> None:
    """Put the Jupyter packages on ``prefix``'s path (a .pth file, as a site dir would)."""
    pth = prefix.site_packages / "zz-jupyter-test.pth"
    pth.write_text(f"{site}\n")
    os.chmod(pth, 0o644)


def register_kernel(data_dir: Path, name: str, prefix: Prefix, env: Mapping[str, str]) -> None:
    """A kernelspec ``name`` under ``data_dir/kernels`` that runs ``prefix``'s Python."""
    spec = data_dir / "kernels" / name
    spec.mkdir(parents=True, mode=0o755)
    argv = [str(prefix.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    document = {"argv": argv, "display_name": name, "language": "python", "env": dict(env)}
    (spec / "kernel.json").write_text(json.dumps(document, indent=1))
    for path in (data_dir, data_dir / "kernels", spec, spec / "kernel.json"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def execute_notebook(
    run: Runner,
    work: Path,
    server: Prefix,
    kernel_name: str,
    cells: Sequence[str],
    *,
    user: int,
    env: Mapping[str, str | None],
) -> list[str]:
    """Execute ``cells`` with nbclient from ``server``'s Python, as ``user``; the text
    each cell printed (stdout, stderr, errors), in order."""
    notebook = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {},
             "outputs": [], "source": source}
            for i, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": kernel_name, "display_name": kernel_name,
                                    "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    os.chown(work, user, user)
    source, executed, runner = work / "in.ipynb", work / "out.ipynb", work / "run_notebook.py"
    source.write_text(json.dumps(notebook))
    runner.write_text(RUN_NOTEBOOK)
    for path in (source, runner):
        os.chmod(path, 0o644)
    done = run(
        [str(server.python), str(runner), str(source), str(executed), kernel_name],
        user=user,
        env=env,
        cwd=work,
        timeout=600,
    )
    if done.returncode != 0:
        raise AssertionError(f"nbclient failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(executed.read_text())
    texts = []
    for cell in result["cells"]:
        parts: list[str | list[str]] = []
        for output in cell["outputs"]:
            if output["output_type"] == "stream":
                parts.append(output["text"])
            elif output["output_type"] == "error":
                parts.append("\n".join(output["traceback"]) + "\n")
            elif "data" in output:
                parts.append(output["data"].get("text/plain", ""))
        texts.append("".join(_text(part) for part in parts))
    return texts


def _text(value: str | list[str]) -> str:
    """A notebook's multi-line string: one string or a list of lines."""
    return value if isinstance(value, str) else "".join(value)
