"""`conda-meta/` directories written by real installers (tests/fixtures/conda-meta/
real-installers: conda 26.7 with both solvers, py-rattler 0.28, a conda-store 2025.2
build): each reads without problems, exports its conda specs, and protects its
packages from pip.

The unit part reads the fixtures in place; the integration part puts each one over a
py-rattler env of the same packages (the suite's local channel has python 3.11.7,
pip 23.2.1, demo-rec, demo-norec and demo-dep, as the channel the fixtures were made
from), so the records describe files that are really there, and runs the real
safe-pip and pip in it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from safe_pip import envspec
from safe_pip.conda_history import read_history
from safe_pip.conda_records import read_records
from support.fakes import fake_environment
from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel

REAL = Path(__file__).resolve().parent / "fixtures" / "conda-meta" / "real-installers"
INSTALLERS = sorted(p.name for p in REAL.iterdir() if p.is_dir())
DENIED = 10
STORE = "http://127.0.0.1:8766"

# installer -> (records, the conda specs export lists, the channels it lists)
EXPECTED: dict[str, tuple[set[str], list[str], list[str]]] = {
    "conda-26.7-create": (
        {"python", "pip", "demo-rec", "demo-norec", "demo-dep"},
        ["python=3.11", "demo-rec", "pip", "demo-norec", "demo-dep"],
        ["file:///srv/channel"],
    ),
    "conda-26.7-rattler-solver": (
        {"python", "pip", "demo-rec", "demo-norec", "demo-dep"},
        ["demo-dep", "pip", "python=3.11", "demo-norec"],
        ["file:///srv/channel"],
    ),
    "conda-store-2025.2-build": (
        {"python", "pip", "demo-rec"},
        [
            f"{STORE}/linux-64::python==3.11.7=h0_cpython_0",
            f"{STORE}/noarch::demo-rec==1.0=pyh4616a5c_0",
            f"{STORE}/noarch::pip==23.2.1=pyh8b19718_0",
        ],
        [STORE],
    ),
    # empty history: the specs come from the records' requested_specs (file-name order)
    "py-rattler-0.28": (
        {"python", "pip", "demo-rec", "demo-norec", "demo-dep"},
        ["demo-dep", "demo-norec", "demo-rec", "pip", "python 3.11.*"],
        ["file:///srv/channel"],
    ),
}


def test_every_fixture_has_its_expectations() -> None:
    assert sorted(EXPECTED) == INSTALLERS


def exported(prefix: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setattr(envspec, "read_records", lambda where: read_records(where, use_cache=False))
    env = fake_environment(prefix, user_site_enabled=False)
    rendered = envspec.render(env, {"XDG_STATE_HOME": str(prefix.parent / "state")})
    data: dict[str, Any] = yaml.safe_load(rendered.text)
    return data


@pytest.mark.parametrize("installer", INSTALLERS)
def test_reads_and_exports(installer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names, specs, channels = EXPECTED[installer]
    prefix = tmp_path / "env"
    shutil.copytree(REAL / installer, prefix / "conda-meta")
    records = read_records(prefix, use_cache=False)
    assert records.problems == ()
    assert {r.name for r in records.records} == names
    rec = records.by_name()["demo-rec"]
    assert rec.dist_infos == ("lib/python3.11/site-packages/demo_rec-1.0.dist-info",)
    history = read_history(prefix)
    assert history.problems == ()
    data = exported(prefix, monkeypatch)
    assert data["dependencies"] == specs
    assert data["channels"] == channels


def test_py_rattler_records_carry_requested_specs_and_no_history(tmp_path: Path) -> None:
    shutil.copytree(REAL / "py-rattler-0.28", tmp_path / "conda-meta")
    assert (tmp_path / "conda-meta" / "history").read_text() == ""
    assert read_history(tmp_path).blocks == ()
    python = read_records(tmp_path, use_cache=False).by_name()["python"]
    assert python.requested_spec is None
    assert python.requested_specs == ("python 3.11.*",)


# --- on a real env ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_rec_2(shared_session_tmp: Path) -> Path:
    house = shared_session_tmp / "real-installers-wheels"
    build_wheel(house, "demo-rec", "2.0")
    build_wheel(house, "wants-rec", "1.0", requires=["demo-rec>=2"])
    os.chmod(house, 0o755)
    return house


@pytest.mark.parametrize("installer", INSTALLERS)
def test_protects_and_exports_on_a_real_env(
    installer: str,
    conda_env_factory: Callable[..., Prefix],
    run: Runner,
    safe_pip_bin: list[str],
    demo_rec_2: Path,
) -> None:
    names, specs, _channels = EXPECTED[installer]
    prefix = conda_env_factory("demo-rec", "demo-norec", "demo-dep")
    shutil.rmtree(prefix.conda_meta)
    shutil.copytree(REAL / installer, prefix.conda_meta)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    links = ["--no-index", "--find-links", str(demo_rec_2)]

    proc = run([*safe_pip_bin, "install", "wants-rec", *links], env=env)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert "conda install demo-rec=2.0" in proc.stderr
    assert [p.name for p in prefix.site_packages.glob("demo_rec-*")] == ["demo_rec-1.0.dist-info"]

    proc = run([*safe_pip_bin, "uninstall", "-y", "demo-rec"], env=env)
    assert proc.returncode == DENIED, proc.stderr
    assert "conda remove demo-rec" in proc.stderr
    assert (prefix.site_packages / "demo_rec" / "__init__.py").exists()

    proc = run([*safe_pip_bin, "export"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["dependencies"] == specs
    assert {p.name.rsplit("-", 2)[0] for p in prefix.conda_meta.glob("*.json")} == names
