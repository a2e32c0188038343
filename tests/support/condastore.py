"""A real conda-store server for the tests: conda-store-server from PyPI in a cached venv.

`server_venv()` installs conda-store-server (2025.2.x) once per machine into
`<test cache>/conda-store-server-2025.2` (pip, from the package index pip is
configured with), plus the stand-in for `conda` in `conda_standin/` (conda is
not on PyPI; see its README). `CondaStore.start(directory)` runs the server
(SQLite database, SQLite celery broker, loopback, a predefined admin token) and
its worker as two processes, each in its own process group; `stop()` ends them
by their pids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from support.prefixes import cache_dir, cached_build

VERSION_SPEC = "conda-store-server==2025.2.*"
ADMIN_TOKEN = "safe-pip-tests-admin-token"
STANDIN = Path(__file__).resolve().parent / "conda_standin" / "conda"
START_TIMEOUT_S = 120.0

CONFIG = """\
c.CondaStore.database_url = "sqlite:///{d}/conda-store.sqlite"
c.CondaStore.celery_broker_url = "sqla+sqlite:///{d}/celery.sqlite"
c.CondaStore.celery_results_backend = "db+sqlite:///{d}/celery-results.sqlite"
c.CondaStore.store_directory = "{d}/store"
c.CondaStore.upgrade_db = True
c.CondaStoreServer.address = "127.0.0.1"
c.CondaStoreServer.port = {port}
c.CondaStoreServer.enable_ui = False
c.CondaStoreServer.log_level = 30
c.CondaStoreWorker.concurrency = 1
c.AuthenticationBackend.predefined_tokens = {{
    "{token}": {{"primary_namespace": "default", "role_bindings": {{"*/*": ["admin"]}}}},
}}
"""


def server_venv() -> Path:
    """The cached venv with conda-store-server and the conda stand-in."""

    def build(staging: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True)
        python = staging / "bin" / "python"
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", VERSION_SPEC],
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"pip install {VERSION_SPEC} failed:\n{installed.stderr}")
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        shutil.copytree(STANDIN, Path(site) / "conda", ignore=shutil.ignore_patterns("__pycache__"))

    # a new stand-in makes a new venv
    digest = hashlib.sha256()
    for path in sorted(STANDIN.rglob("*.py")):
        digest.update(path.relative_to(STANDIN).as_posix().encode() + b"\0" + path.read_bytes())
    return cached_build(cache_dir() / f"conda-store-server-2025.2-{digest.hexdigest()[:12]}", build)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CondaStore:
    def __init__(self, url: str, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
        self.url = url
        self.processes = processes
        self.logs = logs

    @classmethod
    def start(cls, directory: Path, attempts: int = 2) -> CondaStore:
        """The server and its worker, up; a start that fails (a port taken between
        choosing it and binding it, say) is tried again in a fresh directory."""
        for attempt in range(1, attempts + 1):
            try:
                return cls._start_once(directory / f"try-{attempt}")
            except RuntimeError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(cls, directory: Path) -> CondaStore:
        venv = server_venv()
        port = _free_port()
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "config.py"
        config.write_text(CONFIG.format(d=directory, port=port, token=ADMIN_TOKEN))
        python = str(venv / "bin" / "python")
        processes: list[subprocess.Popen[bytes]] = []
        store = cls(f"http://127.0.0.1:{port}", processes, directory)
        try:
            # the server first: it creates the database the worker then uses
            store._spawn(python, "server", config)
            store._wait_until_up()
            store._spawn(python, "worker", config)
            store._wait_for_worker(directory / "conda-store.sqlite")
        except BaseException:
            store.stop()
            raise
        return store

    def _spawn(self, python: str, part: str, config: Path) -> None:
        log = open(self.logs / f"{part}.log", "wb")  # noqa: SIM115 - closed when it ends
        try:
            proc = subprocess.Popen(
                [python, "-m", f"conda_store_server._internal.{part}", "--config", str(config)],
                cwd=self.logs,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
        finally:
            log.close()
        self.processes.append(proc)

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"conda-store exited:\n{self._log_tails()}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"conda-store did not answer within {START_TIMEOUT_S} s")

    def _wait_for_worker(self, database: Path) -> None:
        """Until the worker has measured the store (the server refuses builds before)."""
        import sqlite3

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"conda-store exited:\n{self._log_tails()}")
            with contextlib.closing(sqlite3.connect(database, timeout=5)) as db:
                try:
                    row = db.execute(
                        "SELECT free_storage FROM conda_store_configuration"
                    ).fetchone()
                except sqlite3.OperationalError:
                    row = None
            if row is not None and row[0] is not None:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the conda-store worker was not ready within {START_TIMEOUT_S} s")

    def _log_tails(self, lines: int = 30) -> str:
        """The last lines of the server's and the worker's logs, for the failure message."""
        out = []
        for part in ("server", "worker"):
            log = self.logs / f"{part}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(out)

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)
