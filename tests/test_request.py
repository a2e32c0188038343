"""`safe-pip request` against a real conda-store server.

The server is conda-store-server 2025.2.x from PyPI, installed by the test setup
into its own cached venv (tests/support/condastore.py) and started once per
session with SQLite, its worker on loopback and a predefined token, stopped by
its pids. conda-store-server imports `conda` at start and conda is not on
PyPI, so the setup adds the smallest stand-in package it needs
(tests/support/conda_standin/): the server validates and stores
specifications, but cannot build envs. What is checked is the specification
conda-store stored, not the build.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.condastore import CondaStore
from support.prefixes import CondaStoreEnv, make_conda_store_env
from support.run import Runner

NOBODY = 65534
DENIED = 10
NOT_SENT = 15
TOKEN = "safe-pip-tests-admin-token"


@pytest.fixture(scope="session")
def conda_store(shared_session_tmp: Path) -> Iterator[CondaStore]:
    store = CondaStore.start(shared_session_tmp / "conda-store")
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def store_env(shared_tmp: Path) -> CondaStoreEnv:
    env = make_conda_store_env(shared_tmp / "store", "analytics", "analysis")
    history = env.prefix.conda_meta / "history"
    history.write_text(
        history.read_text().rstrip("\n") + "\n# update specs: ['python=3.11', 'pip']\n"
    )
    return env


def policy(url: str) -> str:
    return f'version = 1\n[conda-store]\nurl = "{url}"\n'


def request_records(home: Path) -> list[dict[str, Any]]:
    found = []
    for log in home.rglob("*.jsonl"):
        for line in log.read_text().splitlines():
            record = json.loads(line)
            if record.get("command") == "request":
                found.append(record)
    return found


def test_a_refused_install_becomes_a_conda_store_build(
    run: Runner,
    safe_pip_bin: list[str],
    store_env: CondaStoreEnv,
    wheelhouse: Path,
    conda_store: CondaStore,
) -> None:
    env = {"PATH": f"{store_env.link}/bin:/usr/bin:/bin"}
    text = policy(conda_store.url)

    def as_user(*args: str, **extra: str | None) -> subprocess.CompletedProcess[str]:
        return run([*safe_pip_bin, *args], user=NOBODY, env={**env, **extra}, system_policy=text)

    refused = as_user("install", "demo-a==1.0", "--no-index", "--find-links", str(wheelhouse))
    assert refused.returncode == DENIED, refused.stderr
    assert "submit it to conda-store: safe-pip request" in refused.stderr
    home = run.home(NOBODY)
    spec = home / "safe-pip-requests" / "analysis.environment.yml"

    # no token: the file stays, and how to submit it by hand is said
    missing = as_user("request")
    assert missing.returncode == NOT_SENT, missing.stderr
    assert "no conda-store token" in missing.stderr and str(spec) in missing.stderr
    assert "curl -X POST" in missing.stderr and spec.exists()
    # a token conda-store does not know: refused by conda-store, said so
    wrong = as_user("request", CONDA_STORE_TOKEN="not-a-token")
    assert wrong.returncode == NOT_SENT and "HTTP 403" in wrong.stderr, wrong.stderr

    # the token from a file the user owns
    token_file = home / ".config" / "safe-pip" / "conda-store-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN + "\n")
    os.chmod(token_file, 0o600)
    os.chown(token_file, NOBODY, NOBODY)
    sent = as_user("request")
    assert sent.returncode == 0, sent.stderr
    build_id = int(sent.stdout.split("build ")[1].split()[0])
    assert f"{conda_store.url}/api/v1/build/{build_id}/" in sent.stdout

    stored = conda_store.get(f"/api/v1/build/{build_id}/")["data"]["specification"]
    assert stored["name"] == "analysis"
    dependencies = stored["spec"]["dependencies"]
    assert "python=3.11" in dependencies
    pip_part = next(d["pip"] for d in dependencies if isinstance(d, dict))
    assert "demo-a==1.0" in pip_part
    environment = conda_store.get("/api/v1/environment/analytics/analysis/")["data"]
    assert environment["namespace"]["name"] == "analytics"
    # conda-store 2025.2 takes the name and description of a YAML spec from the YAML;
    # the body carries them too (environment_name, environment_description)
    body = json.loads((home / "safe-pip-requests" / "analysis.specification.json").read_text())
    assert body["environment_name"] == "analysis" and body["namespace"] == "analytics"
    assert body["environment_description"] == "requested by nobody with safe-pip: demo-a==1.0"

    records = request_records(home)
    assert [r["outcome"] for r in records] == ["not-sent", "not-sent", "submitted"]
    assert records[-1]["request"]["build_id"] == build_id
    assert records[-1]["request"]["namespace"] == "analytics"
    assert TOKEN not in json.dumps(records)
    shown = run([*safe_pip_bin, "log", "--decision", "request"], user=NOBODY, env=env)
    assert "request" in shown.stdout


def test_requirements_on_the_command_line_and_an_unreachable_store(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, conda_store: CondaStore
) -> None:
    env = {"PATH": f"{store_env.link}/bin:/usr/bin:/bin", "CONDA_STORE_TOKEN": TOKEN}
    sent = run(
        [*safe_pip_bin, "request", "demo-b>=1"],
        user=NOBODY,
        env=env,
        system_policy=policy(conda_store.url),
    )
    assert sent.returncode == 0, sent.stderr
    build_id = int(sent.stdout.split("build ")[1].split()[0])
    spec = conda_store.get(f"/api/v1/build/{build_id}/")["data"]["specification"]["spec"]
    assert "demo-b>=1" in next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    # no network to conda-store: the file stays
    closed = run(
        [*safe_pip_bin, "request"],
        user=NOBODY,
        env=env,
        system_policy=policy("http://127.0.0.1:9"),
    )
    assert closed.returncode == NOT_SENT
    assert "could not be reached" in closed.stderr
    assert (run.home(NOBODY) / "safe-pip-requests" / "analysis.environment.yml").exists()
