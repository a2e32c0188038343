"""Who owns each distribution of a real conda env: conda (a record, or an INSTALLER
conda/conda-pypi/conda-via-whl), pip (including what conda notes as pypi_0), or
safe-pip (pip-installed and explained by the audit log).  And the guard acting on it:
a conda-owned distribution cannot be uninstalled through safe-pip, the others can."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safe_pip.conda_records import read_records
from safe_pip.decide import Conflict, decide_conda_conflicts
from safe_pip.drift import log_state
from safe_pip.environment import Environment, inspect_environment
from safe_pip.inventory import scan, scan_all
from safe_pip.ownership import OwnershipIndex, all_owners, channel_label, owners
from safe_pip.pipcli import REPLACE_CONDA_FLAG, parse_pip_command_line
from safe_pip.policy import Policy, default_policy
from safe_pip.target import Target
from support.fakes import fake_environment
from support.prefixes import Prefix, add_conda_package
from support.run import Runner
from support.wheels import build_wheel


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def lay_dist(site: Path, name: str, version: str, installer: str | None) -> Path:
    """A bare dist-info (and module) as some installer left it."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    files = [f"{name}.py", f"{info.name}/METADATA", f"{info.name}/RECORD"]
    if installer is not None:
        (info / "INSTALLER").write_text(installer + "\n")
        files.append(f"{info.name}/INSTALLER")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    (site / f"{name}.py").write_text("")
    return info


def pip_note(prefix: Prefix, name: str, version: str) -> Path:
    """The record conda-pypi style tools leave for a pip-installed package: build pypi_0."""
    rel = f"lib/python{prefix.python_version}/site-packages/{name}-{version}.dist-info"
    record = {
        "build": "pypi_0",
        "build_number": 0,
        "channel": "https://conda.anaconda.org/pypi",
        "depends": [],
        "files": [f"{rel}/METADATA", f"{rel}/RECORD"],
        "name": name,
        "subdir": "noarch",
        "version": version,
    }
    path = prefix.conda_meta / f"{name}-{version}-pypi_0.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path


@pytest.fixture
def env_prefix(
    prefix_factory: Callable[..., Prefix], wheelhouse: Path, run: Runner, safe_pip_bin: list[str]
) -> Prefix:
    # conda-meta by hand, not by py-rattler: the shapes here (a record lost, conda-pypi and
    # conda-via-whl installs, a conda pip note) are what no installer of the local channel makes
    prefix = prefix_factory("conda-env", writable_by=0)
    site = prefix.site_packages
    add_conda_package(prefix, "six", "1.16.0")  # record-owned
    orphan = add_conda_package(prefix, "orphan", "1.0")  # INSTALLER conda, record lost
    next(prefix.conda_meta.glob("orphan-1.0-*.json")).unlink()
    assert (orphan / "INSTALLER").read_text() == "conda"
    lay_dist(site, "via_pypi", "2.0", "conda-pypi")
    lay_dist(site, "via_whl", "3.0", "conda-via-whl")
    lay_dist(site, "noted", "1.5", "pip")
    pip_note(prefix, "noted", "1.5")
    lay_dist(site, "by_uv", "0.1", "uv")
    lay_dist(site, "nobody_knows", "0.2", None)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    bare = run(
        [
            str(prefix.python),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "demo-a==1.0",
        ],
        env=env,
    )
    assert bare.returncode == 0, bare.stderr
    guarded = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-b"], env=env
    )
    assert guarded.returncode == 0, guarded.stderr  # demo-b through safe-pip
    return prefix


EXPECTED = {
    "six": ("conda", "record"),
    "pip": ("conda", "record"),
    "orphan": ("conda", "INSTALLER conda"),
    "via-pypi": ("conda", "INSTALLER conda-pypi"),
    "via-whl": ("conda", "INSTALLER conda-via-whl"),
    "noted": ("pip", ""),
    "by-uv": ("other:uv", ""),
    "nobody-knows": ("unknown", ""),
    "demo-a": ("pip", ""),  # bare pip put it there
    "demo-b": ("safe-pip", ""),
}


@pytest.mark.integration
def test_owners_of_every_kind(env_prefix: Prefix) -> None:
    env = inspect_environment(Target(str(env_prefix.python), "test"), os.environ)
    installed = scan([env.purelib, env.platlib])
    records = read_records(env.prefix)
    log = env_prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    logged = {k: v[1] for k, v in log_state([str(log)], os.environ).items() if v[1]}
    assert logged == {"demo-b": "1.0"}
    found = all_owners(installed, records, env, logged)
    got = {key: (found[key].owner, found[key].evidence) for key in EXPECTED}
    assert got == EXPECTED
    assert found["six"].channel_name == "conda-forge"
    assert found["six"].describe() == "six 1.16.0 (conda, conda-forge)"
    # without the log, what safe-pip installed is pip's
    found = owners(installed, records, env, ["demo-b", "Demo_A"])
    assert (found["demo-a"].owner, found["demo-b"].owner) == ("pip", "pip")
    # a name not installed has no owner
    assert owners(installed, records, env, ["not-there"]) == {}


@pytest.mark.integration
def test_a_symlinked_prefix_is_the_same_env(env_prefix: Prefix, shared_tmp: Path) -> None:
    link = shared_tmp / "link-to-env"
    link.symlink_to(env_prefix.path)
    env = inspect_environment(Target(str(link / "bin" / "python"), "test"), os.environ)
    index = OwnershipIndex(read_records(env.prefix), env)
    site = link / "lib" / "python3.11" / "site-packages"
    items = {i.key: i for i in scan_all([str(site)])}
    assert index.owner_of(items["six"]).owner == "conda"


def test_channel_labels() -> None:
    assert channel_label("https://conda.anaconda.org/conda-forge") == "conda-forge"
    assert channel_label("https://repo.anaconda.com/pkgs/main") == "defaults"
    assert channel_label("https://example.org/channel") == "https://example.org/channel"
    assert channel_label("") == ""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("six", True),
        ("orphan", True),
        ("via-pypi", True),
        ("via_whl", True),
        ("noted", False),
        ("demo-b", False),
    ],
)
def test_uninstall_follows_ownership(
    env_prefix: Prefix, run: Runner, safe_pip_bin: list[str], name: str, refused: bool
) -> None:
    proc = run(
        [*safe_pip_bin, "uninstall", "-y", name], env={"PATH": f"{env_prefix.bin}:/usr/bin:/bin"}
    )
    key = name.replace("_", "-")
    left = {i.key for i in scan_all([str(env_prefix.site_packages)])}
    if refused:
        assert proc.returncode == 10, proc.stderr
        assert "rule:    conda-owned" in proc.stderr
        assert key in left
    else:
        assert proc.returncode == 0, proc.stderr
        assert key not in left, proc.stdout + proc.stderr


@pytest.mark.integration
def test_a_conda_pypi_package_is_protected_from_an_upgrade(
    env_prefix: Prefix, run: Runner, safe_pip_bin: list[str], shared_tmp: Path
) -> None:
    house = shared_tmp / "house"
    build_wheel(house, "via-pypi", "2.1")
    os.chmod(house, 0o755)
    proc = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(house), "via-pypi==2.1"],
        env={"PATH": f"{env_prefix.bin}:/usr/bin:/bin"},
    )
    assert proc.returncode == 10, proc.stderr
    # named as the conda package (normalised), as `conda install` wants it
    assert "via-pypi 2.0 (conda) -> 2.1 (pip) [upgrade]" in proc.stderr


# --- without a process: the index on hand-made records, and the conda decision ------------


def fake_env(prefix: Path) -> Environment:
    return fake_environment(prefix, name="analysis")


def write_record(prefix: Path, name: str, version: str, build: str, dist: str | None) -> None:
    site = "lib/python3.11/site-packages"
    files = [f"{site}/{dist}-{version}.dist-info/RECORD"] if dist else []
    record = {
        "build": build,
        "channel": "https://conda.anaconda.org/conda-forge/noarch",
        "files": files,
        "name": name,
        "subdir": "noarch",
        "version": version,
    }
    meta = prefix / "conda-meta"
    meta.mkdir(exist_ok=True)
    (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(record, indent=2))


def test_the_index_without_a_process(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    write_record(prefix, "python", "3.11.7", "h_cpython", None)
    write_record(prefix, "Six", "1.16.0", "pyhd8ed1ab_0", "six")
    write_record(prefix, "noted", "1.5", "pypi_0", "noted")
    lay_dist(site, "six", "1.16.0", "conda")
    lay_dist(site, "noted", "1.5", "pip")
    lay_dist(site, "Mixed_Case.Name", "2.0", "conda-via-whl")
    env = fake_env(prefix)
    found = all_owners(scan([env.purelib]), read_records(env.prefix, use_cache=False), env)
    assert {k: o.owner for k, o in found.items()} == {
        "six": "conda",
        "noted": "pip",
        "mixed-case-name": "conda",
    }
    assert found["six"].record is not None and found["six"].record.name == "Six"
    assert found["mixed-case-name"].evidence == "INSTALLER conda-via-whl"
    # a dist-info outside the prefix has no record
    index = OwnershipIndex(read_records(env.prefix, use_cache=False), env)
    assert index.record_for(str(tmp_path / "elsewhere" / "six-1.16.0.dist-info")) is None


def conflicts_for(argv: list[str], conflicts: list[Conflict], **policy: bool) -> Any:
    # the guard takes its own flag off before parsing, as pip never sees it
    op = parse_pip_command_line([a for a in argv if a != REPLACE_CONDA_FLAG], {}, None)
    values = dict(default_policy().values)
    values.update({f"conda.{k.replace('_', '-')}": v for k, v in policy.items()})
    return decide_conda_conflicts(op, conflicts, Policy(values=values), REPLACE_CONDA_FLAG in argv)


SIX = Conflict("six", "1.16.0", "conda-forge", "1.17.0")


def test_conda_decision_messages() -> None:
    denial = conflicts_for(["install", "needs-six"], [SIX])
    assert denial.rule == "conda-owned"
    assert "six 1.16.0 (conda, conda-forge) -> 1.17.0 (pip) [upgrade]" in denial.reason
    assert "conda install six=1.17.0" in denial.hint
    assert "pip install --no-deps needs-six" in denial.hint
    assert REPLACE_CONDA_FLAG not in denial.hint  # the policy does not allow it
    # asked for by name: --no-deps would not help
    requested = Conflict("six", "1.16.0", "conda-forge", "1.17.0", requested=True)
    assert "--no-deps" not in conflicts_for(["install", "six"], [requested]).hint
    down = Conflict("numpy", "2.0.1", "", "1.26.4")
    assert "numpy 2.0.1 (conda) -> 1.26.4 (pip) [downgrade]" in (
        conflicts_for(["install", "x"], [down]).reason
    )
    same = Conflict("six", "1.16.0", "conda-forge", "1.16.0")
    assert "[reinstall]" in conflicts_for(["install", "x"], [same]).reason
    gone = Conflict("six", "1.16.0", "conda-forge", None, requested=True)
    removal = conflicts_for(["uninstall", "-y", "six"], [gone])
    assert "six 1.16.0 (conda, conda-forge) -> removed by pip" in removal.reason
    assert "conda remove six" in removal.hint


def test_conda_decision_policy_and_override() -> None:
    assert conflicts_for(["install", "x"], []) is None
    assert conflicts_for(["install", "x"], [SIX], protect_conda_packages=False) is None
    with_flag = ["install", REPLACE_CONDA_FLAG, "x"]
    refused = conflicts_for(with_flag, [SIX])
    assert "is not allowed by the policy here" in refused.reason
    assert conflicts_for(with_flag, [SIX], allow_override=True) is None
    offered = conflicts_for(["install", "x"], [SIX], allow_override=True)
    assert f"add {REPLACE_CONDA_FLAG}" in offered.hint
