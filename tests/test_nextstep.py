"""The next step after a refused install on a read-only env: a spec with the request for
conda-store (written to the user's home), or a dev env.  Envs on disk, no interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from safe_pip import nextstep
from safe_pip.environment import Environment, EnvKind
from safe_pip.pipcli import Operation, parse_pip_command_line
from safe_pip.policy import Policy, default_policy
from support.fakes import env_on_disk

HISTORY = """==> 2026-01-05 10:00:00 <==
# cmd: /opt/conda/bin/conda create -n analysis python=3.11 numpy
# conda version: 24.1.2
+conda-forge/linux-64::python-3.11.7-hab00c5b_1_cpython
+conda-forge/linux-64::numpy-1.26.4-py311h64a7726_0
# update specs: ["python=3.11", "numpy"]
"""


def conda_meta(env: Environment, history: str, *names: str) -> None:
    meta = Path(env.prefix, "conda-meta")
    (meta / "history").write_text(history)
    for name in names:
        record = {"name": name, "version": "1", "build": "0", "channel": "conda-forge", "files": []}
        (meta / f"{name}-1-0.json").write_text(json.dumps(record))


def op(*argv: str) -> Operation:
    return parse_pip_command_line(list(argv), {}, None)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path / "home"),
        "USER": "alice",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


@pytest.fixture
def policy() -> Policy:
    return default_policy()


def test_the_spec_with_the_request_is_written_to_the_users_home(
    tmp_path: Path, environ: dict[str, str], policy: Policy
) -> None:
    env = env_on_disk(tmp_path / "envs" / "analysis", name="analysis", writable=False)
    conda_meta(env, HISTORY, "python", "numpy")
    hint = nextstep.read_only_hint(op("install", "requests==2.32.3"), env, policy, environ)
    spec = Path(environ["HOME"], "safe-pip-requests", "analysis.environment.yml")
    assert f"ready to submit: {spec}" in hint.splitlines()
    data = yaml.safe_load(spec.read_text())
    assert data["dependencies"][:2] == ["python=3.11", "numpy"]  # the env's own specs kept
    assert {"pip": ["requests==2.32.3"]} in data["dependencies"]
    body = json.loads(Path(nextstep.body_path(str(spec))).read_text())
    assert body["specification"] == spec.read_text()
    assert body["environment_name"] == "analysis"
    assert body["environment_description"].endswith(" with safe-pip: requests==2.32.3")


def test_a_lock_file_env_gets_the_lines_to_add_and_no_file_that_would_drop_packages(
    tmp_path: Path, environ: dict[str, str], policy: Policy
) -> None:
    env = env_on_disk(tmp_path / "envs" / "locked", name="locked", writable=False)
    conda_meta(env, "", "python", "numpy")  # conda-lock / rattler: an empty history
    hint = nextstep.read_only_hint(
        op("install", "https://u:tok3n@files.example.org/x-1.0.tar.gz"), env, policy, environ
    )
    assert "  - https://***@files.example.org/x-1.0.tar.gz" in hint.splitlines()
    assert "tok3n" not in hint
    assert "built from a lock file" in hint
    assert not Path(environ["HOME"], "safe-pip-requests").exists()


def test_an_unwritable_home_gets_the_spec_printed(
    tmp_path: Path, environ: dict[str, str], policy: Policy
) -> None:
    env = env_on_disk(tmp_path / "envs" / "analysis", name="analysis", writable=False)
    conda_meta(env, HISTORY, "python", "numpy")
    Path(environ["HOME"]).parent.mkdir(parents=True, exist_ok=True)
    Path(environ["HOME"]).write_text("not a directory")
    hint = nextstep.read_only_hint(op("install", "requests"), env, policy, environ)
    lines = hint.splitlines()
    start = lines.index("(your home is not writable, so here it is:)") + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("by hand"))
    printed = yaml.safe_load("\n".join(line[2:] for line in lines[start:end]))
    assert printed["name"] == "analysis"
    assert {"pip": ["requests"]} in printed["dependencies"]


def test_a_developer_install_is_sent_to_a_dev_env(
    tmp_path: Path, environ: dict[str, str], policy: Policy
) -> None:
    env = env_on_disk(tmp_path / "envs" / "analysis", name="analysis", writable=False)
    hint = nextstep.read_only_hint(op("install", "-e", "./my proj"), env, policy, environ)
    assert "  safe-pip devenv './my proj'" in hint.splitlines()
    assert not Path(environ["HOME"], "safe-pip-requests").exists()


def test_a_conda_store_env_is_found_from_its_envs_link_either_way(tmp_path: Path) -> None:
    build = tmp_path / "store" / "data-science" / "0f3a9c-20260105-analysis"
    link = tmp_path / "store" / "data-science" / "envs" / "analysis"
    build.mkdir(parents=True)
    link.parent.mkdir()
    link.symlink_to(build)
    through_link = env_on_disk(build, python=f"{link}/bin/python")
    assert nextstep.conda_store_env(through_link) == ("data-science", "analysis")
    direct = env_on_disk(build)
    assert nextstep.conda_store_env(direct) == ("data-science", "analysis")
    elsewhere = env_on_disk(tmp_path / "plain" / "env", EnvKind.VENV)
    assert nextstep.conda_store_env(elsewhere) is None


def test_spec_file_names_are_safe(tmp_path: Path) -> None:
    assert nextstep.spec_path("../../etc/x y", str(tmp_path)) == str(
        tmp_path / "safe-pip-requests" / "..-..-etc-x-y.environment.yml"
    )
    assert nextstep.spec_path("", "/h") == "/h/safe-pip-requests/env.environment.yml"
