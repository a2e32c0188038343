"""Conda envs made by a real installer (py-rattler, as pixi makes them) from the suite's
local channel: conda-owned protection, files of packages without a dist-info, and
export, through the real safe-pip and the real pip."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from support.conda_channel import channel_url, local_channel
from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel

NOBODY = 65534
DENIED = 10


@pytest.fixture(scope="session")
def newer_wheels(shared_session_tmp: Path) -> Path:
    """demo-rec 2.0, demo-norec 2.0, and `clobber` 1.0 whose wheel carries the module of
    the conda package demo-norec (which has no dist-info pip could know it by)."""
    house = shared_session_tmp / "rattler-wheels"
    build_wheel(house, "demo-rec", "2.0")
    build_wheel(house, "demo-norec", "2.0")
    build_wheel(house, "wants-rec", "1.0", requires=["demo-rec>=2"])
    build_wheel(
        house, "clobber", "1.0", files={"demo_norec/__init__.py": '__version__ = "clobbered"\n'}
    )
    os.chmod(house, 0o755)
    return house


class Env:
    """A rattler-made env and the user who runs safe-pip in it."""

    def __init__(
        self, run: Runner, safe_pip: list[str], prefix: Prefix, links: list[Path], user: int | None
    ) -> None:
        self.run, self.safe_pip, self.prefix = run, safe_pip, prefix
        self.links, self.user = links, user

    @property
    def site(self) -> Path:
        return self.prefix.site_packages

    def pip(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        argv = [*self.safe_pip, *args]
        if args and args[0] == "install":
            argv.append("--no-index")
            for link in self.links:
                argv += ["--find-links", str(link)]
        env = {"PATH": f"{self.prefix.bin}:/usr/bin:/bin"}
        return self.run(argv, user=self.user, env=env, **kw)


@pytest.fixture(params=[None, NOBODY], ids=["root", "nobody"])
def env(
    request: pytest.FixtureRequest,
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    newer_wheels: Path,
) -> Env:
    user: int | None = request.param
    prefix = conda_env_factory("six", "demo-rec", "demo-norec", "demo-dep", writable_by=user)
    return Env(run, safe_pip_bin, prefix, [wheelhouse, newer_wheels], user)


def test_the_env_is_what_rattler_writes(env: Env) -> None:
    meta = env.prefix.conda_meta
    assert (meta / "history").read_text() == ""
    records = {p.name: json.loads(p.read_text()) for p in meta.glob("*.json")}
    assert sorted(records) == [
        "demo-dep-2.0-pyh4616a5c_0.json",
        "demo-norec-1.0-pyh4616a5c_0.json",
        "demo-rec-1.0-pyh4616a5c_0.json",
        "pip-23.2.1-pyh4616a5c_0.json",
        "python-3.11.7-h0_cpython_0.json",
        "six-1.16.0-pyh4616a5c_0.json",
    ]
    rec = records["demo-rec-1.0-pyh4616a5c_0.json"]
    assert "requested_spec" not in rec and rec["requested_specs"] == ["demo-rec"]
    assert rec["channel"] == channel_url(local_channel())
    # conda-forge's shape: INSTALLER conda, RECORD with pip's hash for it and with bytecode
    info = env.site / "demo_rec-1.0.dist-info"
    assert (info / "INSTALLER").read_text() == "conda"
    record = (info / "RECORD").read_text()
    assert "demo_rec/__pycache__/__init__.cpython-311.pyc,," in record
    assert "demo_rec-1.0.dist-info/INSTALLER,sha256=" in record
    assert (env.prefix.bin / "demo-rec").exists()
    # demo-norec: the module and no dist-info
    assert (env.site / "demo_norec" / "__init__.py").exists()
    assert list(env.site.glob("demo_norec-*")) == []


def test_an_upgrade_of_a_conda_package_is_refused_naming_the_conda_package(env: Env) -> None:
    proc = env.pip("install", "wants-rec")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert "conda install demo-rec=2.0" in proc.stderr
    assert "demo_rec=2.0" not in proc.stderr
    assert (env.site / "demo_rec-1.0.dist-info" / "INSTALLER").read_text() == "conda"
    assert list(env.site.glob("wants_rec-*")) == []


@pytest.mark.parametrize(
    ("requirement", "dist"),
    [("clobber", "clobber"), ("demo-norec==2.0", "demo_norec")],
    ids=["another-project", "same-name"],
)
def test_the_module_of_a_conda_package_without_dist_info_is_not_overwritten(
    env: Env, requirement: str, dist: str
) -> None:
    """demo-norec has no dist-info: only conda's record knows its module."""
    module = env.site / "demo_norec" / "__init__.py"
    before = module.read_bytes()
    proc = env.pip("install", requirement)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert "demo_norec/__init__.py of demo-norec 1.0 (conda" in proc.stderr
    assert module.read_bytes() == before
    assert list(env.site.glob(f"{dist}-*")) == []


def test_an_install_that_touches_nothing_of_condas_runs(env: Env) -> None:
    proc = env.pip("install", "demo-a")
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in env.site.glob("demo_a-*.dist-info")] == ["demo_a-2.0.dist-info"]


def test_export_lists_the_conda_specs_rattler_recorded(env: Env) -> None:
    """rattler leaves conda-meta/history empty: the specs come from the records."""
    assert env.pip("install", "demo-a").returncode == 0
    proc = env.pip("export")
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(proc.stdout)
    assert data["channels"] == [channel_url(local_channel()).rstrip("/")]
    assert data["dependencies"] == [
        "demo-dep",
        "demo-norec",
        "demo-rec",
        "pip",
        "python 3.11.*",
        "six",
        {"pip": ["demo-a==2.0"]},
    ]
