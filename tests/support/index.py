"""A PEP 503 simple index of built wheels, served on loopback by `python -m http.server`.

`simple_index(root, wheels)` lays out `<root>/simple/<project>/index.html` pages linking
`<root>/files/*.whl`; `serve(root)` starts the server on port 0 and returns it with its
base URL. The caller (a session fixture) stops it by its pid (`stop`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def simple_index(root: Path, wheels: Iterable[Path]) -> None:
    """One page per project under `root/simple`, linking the wheels (in `root/files`);
    everything world-readable."""
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        project = wheel.name.split("-")[0].replace("_", "-")
        by_project.setdefault(project, []).append(wheel)
    for project, found in by_project.items():
        page = root / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        links = "".join(f'<a href="../../files/{w.name}">{w.name}</a>\n' for w in found)
        (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    for path in [root, *root.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def serve(directory: Path) -> tuple[subprocess.Popen[str], str]:
    """(the server, `http://127.0.0.1:PORT`) serving `directory`."""
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"port (\d+)", line)
    assert match, line
    return proc, f"http://127.0.0.1:{match[1]}"


def stop(proc: subprocess.Popen[str]) -> None:
    """Stop a server `serve` started, by its pid."""
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
