"""``safe-pip status`` on an env on disk (no interpreter): what is allowed, for whom,
drift, and the shell's python/pip; and drift classified from facts in memory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from safe_pip import rules
from safe_pip.commands import status
from safe_pip.drift import DriftFacts, classify_drift
from safe_pip.inventory import Installed
from safe_pip.ownership import Owner
from safe_pip.policy import load_policy
from safe_pip.values import replace
from support.fakes import conda_package, env_on_disk, lay_dist_info


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    system = tmp_path / "no-system-policy.toml"
    monkeypatch.setattr(status, "load_policy", lambda p: load_policy(p, system_path=str(system)))
    return {
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": str(tmp_path / "nothing-on-path"),
    }


def by_operation(data: dict[str, object]) -> dict[str, str]:
    allowed = data["allowed"]
    assert isinstance(allowed, list)
    return {item["operation"]: status._verdict(item) for item in allowed}


def test_what_is_allowed_in_a_writable_conda_env(tmp_path: Path, environ: dict[str, str]) -> None:
    env = env_on_disk(tmp_path / "env")
    data = status.collect(env, environ)
    verdicts = by_operation(data)
    assert verdicts["install a package"] == "allowed"
    assert verdicts["user install"] == f"refused [{rules.USER_SITE}]"
    assert verdicts["developer install"] == "allowed"
    assert data["drift"] == {
        "unexplained": [],
        "user_site": [],
        "overwritten": [],
        "layered": False,
        "first_pip_change": None,
        "last_conda_change": None,
    }
    json.dumps(data)  # --json prints it as is


def test_status_answers_for_a_hub_user_where_root_could_write(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    env = env_on_disk(tmp_path / "env")
    Path(env.purelib).chmod(0o755)  # root's, as a shared env is
    if os.geteuid() != 0:
        pytest.skip("needs a directory the viewer cannot write and root can")
    viewer = status.Viewer("a hub user", 65534, frozenset({65534}))
    data = status.collect(env, environ, viewer)
    assert by_operation(data)["install a package"] == f"refused [{rules.READ_ONLY_ENV}]"
    assert data["env"]["writable"] is True and data["env"]["writable_for_user"] is False
    assert (
        "install a package: refused [read-only-env] for a hub user, allowed for root"
        in data["differences"]
    )


def test_drift_names_what_pip_did_around_safe_pip(tmp_path: Path, environ: dict[str, str]) -> None:
    env = env_on_disk(tmp_path / "env")
    conda_package(env, "six", "1.16.0")
    lay_dist_info(Path(env.purelib), "stray", "0.1", installer="pip")
    # pip reinstalled conda's six over it: the record stayed, INSTALLER says pip
    Path(env.purelib, "six-1.16.0.dist-info", "INSTALLER").write_text("pip\n")
    data = status.collect(env, environ)
    drift = data["drift"]
    assert drift["unexplained"] == [{"name": "stray", "version": "0.1", "owner": "pip"}]
    assert drift["overwritten"] == [
        {
            "name": "six",
            "conda_version": "1.16.0",
            "installed_version": "1.16.0",
            "how": "reinstalled by pip",
        }
    ]
    text = status.render(data)
    assert "drift:     stray 0.1 is installed (pip) but neither conda nor the audit log" in text
    assert "`conda install --force-reinstall six=1.16.0` restores conda's" in text


def test_an_invalid_policy_is_shown_with_what_to_do(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    env = env_on_disk(tmp_path / "env")
    policy = Path(env.prefix, "etc", "safe-pip", "policy.toml")
    policy.parent.mkdir(parents=True)
    policy.write_text("[install]\nconda-env = 'alow'\n")
    data = status.collect(env, environ)
    assert data["allowed"] == []
    assert "install.conda-env" in str(data["policy"]["error"])
    assert "  installs and uninstalls are refused until it is fixed" in status.render(data)


def test_the_shells_python_and_pip_of_another_env_are_warned_about(tmp_path: Path) -> None:
    env = env_on_disk(tmp_path / "env")
    other = tmp_path / "other" / "bin"
    other.mkdir(parents=True)
    for name in ("python", "pip"):
        (other / name).write_text("#!/bin/sh\n")
        (other / name).chmod(0o755)
    warnings = status.shell_mismatch(env, {"PATH": str(other)})
    assert len(warnings) == 2
    assert warnings[0].startswith(f"the shell's `python` is {other}/python (env {other.parent})")
    assert warnings[1] == f"the shell's `pip` is {other}/pip, which belongs to {other.parent}"
    own = Path(env.scripts)
    own.mkdir()
    (own / "python").symlink_to(other / "python")  # a link is followed to its env
    assert len(status.shell_mismatch(env, {"PATH": str(own)})) == 1


# --- drift classified from facts in memory (pure) -----------------------------------------


def item(name: str, version: str, where: str = "site", stamp: int = 0) -> Installed:
    path = f"/env/lib/python3.11/{where}/{name}-{version}.dist-info"
    return Installed(name, name, version, path, (1, stamp))


def facts(*installed: Installed, **changes: Any) -> DriftFacts:
    owners = {i.path: Owner(i.key, i.name, i.version, "pip") for i in installed}
    base = DriftFacts(
        is_conda=True,
        installed=installed,
        records=(),
        logged={},
        relative={i.path: i.path[len("/env/") :] for i in installed},
        owners=owners,
        installers={},
    )
    return replace(base, **changes)


def test_what_the_log_explains_is_not_drift() -> None:
    a, b = item("a", "1"), item("b", "2")
    drift = classify_drift(facts(a, b, logged={"a": ("2026-01-01T00:00:00.000000Z", "1")}))
    assert [u["name"] for u in drift.unexplained] == ["b"]
    # the log says another version: the installed one is unexplained
    drift = classify_drift(facts(a, logged={"a": ("2026-01-01T00:00:00.000000Z", "0.9")}))
    assert [u["name"] for u in drift.unexplained] == ["a"]


def test_conda_changing_the_env_after_pip_is_layering() -> None:
    a = item("a", "1")
    logged = {"a": ("2026-01-01T00:00:00.000000Z", "1")}
    later = classify_drift(facts(a, logged=logged, last_conda_change="2026-02-01 00:00:00"))
    assert later.layered and later.first_pip_change == "2026-01-01T00:00:00Z"
    earlier = classify_drift(facts(a, logged=logged, last_conda_change="2025-12-01 00:00:00"))
    assert not earlier.layered


def test_bootstrap_packages_of_a_plain_env_are_not_drift() -> None:
    pip = item("pip", "24.2")
    assert classify_drift(facts(pip, is_conda=False)).unexplained == []
    assert [u["name"] for u in classify_drift(facts(pip)).unexplained] == ["pip"]


def test_a_second_copy_over_a_conda_package_is_overwritten() -> None:
    from safe_pip.conda_records import CondaRecord

    conda = item("six", "1.16.0")
    second = item("six", "1.17.0", where="other")
    record = CondaRecord(
        name="six",
        version="1.16.0",
        build="py_0",
        channel="conda-forge",
        subdir="noarch",
        requested_spec=None,
        dist_infos=(conda.path[len("/env/") :],),
        python_site_packages_path=None,
        file="six-1.16.0-py_0.json",
    )
    drift = classify_drift(
        facts(
            conda,
            second,
            records=(record,),
            owners={conda.path: Owner("six", "six", "1.16.0", "conda")},
        )
    )
    assert drift.overwritten == [
        {
            "name": "six",
            "conda_version": "1.16.0",
            "installed_version": "1.17.0",
            "how": "another copy installed over it",
        }
    ]


def test_unfinished_operations_and_records_not_shipped_are_flagged() -> None:
    from safe_pip.commands.status import _audit_lines

    here = os.uname().nodename
    item = {"time": "2026-05-01T12:00:00.000000Z", "user": "alice", "argv": ["install", "x"]}
    lines = _audit_lines(
        {
            "unfinished": [
                {**item, "host": here, "running": False, "log": "/l"},
                {**item, "host": here, "running": True, "log": "/l"},
                {**item, "host": "pod-7", "running": True, "log": "/l"},
            ],
            "not_shipped": {"count": 3, "last_error": "syslog: refused", "last_time": "t"},
        }
    )
    assert [line.split(" (", 1)[1][:20] for line in lines[:3]] == [
        "safe-pip was stopped",
        "in progress)",
        "on pod-7: still runn",
    ]
    assert lines[0].startswith("unfinished: 2026-05-01T12:00:00.000000Z alice: pip install x")
    assert lines[3].startswith("shipping:  3 record(s) not delivered") and "refused" in lines[3]
    assert _audit_lines({"unfinished": [], "not_shipped": {"count": 0}}) == []
