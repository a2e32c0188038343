"""Classifying a prefix: conda base detection on real layouts, names, markers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from safe_pip.environment import (
    EnvKind,
    env_name,
    find_markers,
    inspect_environment,
    is_conda_base,
    pip_version_in,
)
from safe_pip.target import Target, resolve_target

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conda-meta"


def conda_prefix(root: Path, history: str | None = None) -> Path:
    (root / "conda-meta").mkdir(parents=True)
    if history is not None:
        (root / "conda-meta" / "history").write_text(history)
    return root


@pytest.mark.parametrize("marker", ["condabin", "envs+pkgs"])
def test_base_from_layout(tmp_path: Path, marker: str) -> None:
    prefix = conda_prefix(tmp_path / "conda")
    for part in marker.split("+"):
        (prefix / part).mkdir()
    assert is_conda_base(str(prefix), {})


def test_envs_alone_is_not_enough(tmp_path: Path) -> None:
    prefix = conda_prefix(tmp_path / "env")
    (prefix / "envs").mkdir()
    assert not is_conda_base(str(prefix), {})


@pytest.mark.parametrize(
    ("fixture", "base"),
    [
        ("AXGKl__be_black__conda-meta_history", True),
        ("astromarb__sci-cluster__miniconda3_conda-meta_history", True),
        ("Kim-yk__autodock-gpu__conda-meta_history", False),
        ("EMERGE-Policy__imagemagick_env__conda-meta_history", False),
        ("partrita__notebook__.pixi_envs_default_conda-meta_history", False),
    ],
)
def test_base_from_a_real_constructor_history(tmp_path: Path, fixture: str, base: bool) -> None:
    source = FIXTURES / fixture
    prefix = conda_prefix(tmp_path / "p")
    shutil.copy(source, prefix / "conda-meta" / "history")
    assert is_conda_base(str(prefix), {}) is base


@pytest.mark.parametrize("variable", ["CONDA_ROOT", "_CONDA_ROOT", "CONDA_EXE"])
def test_base_from_condas_variables(tmp_path: Path, variable: str) -> None:
    prefix = conda_prefix(tmp_path / "miniforge3")
    value = str(prefix / "bin" / "conda") if variable == "CONDA_EXE" else str(prefix)
    assert is_conda_base(str(prefix), {variable: value})
    other = conda_prefix(tmp_path / "miniforge3" / "envs" / "x")
    assert not is_conda_base(str(other), {variable: value})


def test_base_from_the_conda_package_record(tmp_path: Path) -> None:
    prefix = conda_prefix(tmp_path / "base")
    (prefix / "conda-meta" / "conda-24.7.1-py311h06a4308_0.json").write_text("{}")
    assert is_conda_base(str(prefix), {})
    env = conda_prefix(tmp_path / "env")
    (env / "conda-meta" / "conda-libmamba-solver-24.7.0-pyhd3eb1b0_0.json").write_text("{}")
    assert not is_conda_base(str(env), {})


def test_conda_store_build_dir_is_an_env_named_by_its_link(tmp_path: Path) -> None:
    build = conda_prefix(tmp_path / "home/conda/team/4f1ad9c2-1731000000-12-analysis")
    link = tmp_path / "home/conda/team/envs/analysis"
    link.parent.mkdir(parents=True)
    link.symlink_to(build)
    assert not is_conda_base(str(build), {})
    assert env_name(str(link / "bin" / "python"), str(build), EnvKind.CONDA_ENV) == "analysis"
    assert env_name(str(build / "bin/python"), str(build), EnvKind.CONDA_BASE) == "base"


def test_markers_current_and_stale(tmp_path: Path) -> None:
    stdlib = tmp_path / "lib" / "python3.12"
    stdlib.mkdir(parents=True)
    old = tmp_path / "lib" / "python3.11"
    old.mkdir()
    (old / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    assert find_markers(str(tmp_path), str(stdlib)) == (None, (str(old / "EXTERNALLY-MANAGED"),))
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    current, stale = find_markers(str(tmp_path), str(stdlib))
    assert current == str(stdlib / "EXTERNALLY-MANAGED") and len(stale) == 1


def test_pip_version_from_dist_info(tmp_path: Path) -> None:
    (tmp_path / "pip-24.2.dist-info").mkdir()
    (tmp_path / "pipx-1.0.dist-info").mkdir()
    assert pip_version_in(str(tmp_path)) == "24.2"
    assert pip_version_in(str(tmp_path / "missing")) is None


def test_target_resolution_order(tmp_path: Path) -> None:
    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    on_path = {"PATH": str(bin_dir)}
    assert resolve_target(None, "", on_path).how == "`python` on PATH"
    bound = {**on_path, "SAFE_PIP_BOUND_PYTHON": sys.executable}
    assert resolve_target(None, "", bound).python == sys.executable
    chosen = resolve_target(str(tmp_path / "env"), "--python", bound)
    assert chosen.python == str(python) and chosen.how.startswith("pip option --python")


@pytest.mark.integration
def test_this_interpreter_is_inspected() -> None:
    env = inspect_environment(Target(sys.executable, "test"), dict(os.environ))
    assert env.version.startswith(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert env.kind == EnvKind.VENV  # the test venv
    assert env.prefix == sys.prefix
