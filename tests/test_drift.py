"""Drift in `safe-pip status`, on a real conda env changed around safe-pip: bare pip
installs, a user-site package, conda packages pip replaced, reinstalled, laid over and
removed, and layering (conda after pip).  Plus the audit-log state and its cache."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from safe_pip import drift
from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel


def status(
    run: Runner, safe_pip_bin: list[str], prefix: Prefix, **env: str | None
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    path = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    proc = run([*safe_pip_bin, "status", "--json"], env={**path, **env})
    assert proc.returncode == 0, proc.stderr
    text = run([*safe_pip_bin, "status"], env={**path, **env})
    assert text.returncode == 0, text.stderr
    return json.loads(proc.stdout)["drift"], text


def names(items: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {item["name"]: item for item in items}


@pytest.mark.integration
def test_drift_of_a_conda_env_changed_around_safe_pip(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    # made by py-rattler: six 1.16.0, colorama 0.4.6, idna 3.4, tqdm 4.66.0, empty history
    prefix = conda_env_factory("six", "colorama", "idna", "tqdm", writable_by=0)
    house = shared_tmp / "house"
    build_wheel(house, "colorama", "0.4.6")
    build_wheel(house, "idna", "3.7")
    os.chmod(house, 0o755)
    links = ["--no-index", "--find-links", str(wheelhouse), "--find-links", str(house)]
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}

    def bare(*args: str) -> None:
        extra = links if args[0] == "install" else []
        proc = run([str(prefix.python), "-m", "pip", *args, *extra], env=env)
        assert proc.returncode == 0, proc.stderr

    first, _ = status(run, safe_pip_bin, prefix)
    assert first["unexplained"] == [] and first["overwritten"] == [] and not first["layered"]

    # through safe-pip: explained by the log
    proc = run([*safe_pip_bin, "install", "demo-b", *links], env=env)
    assert proc.returncode == 0, proc.stderr
    # around it: bare pip
    build_wheel(house, "stray", "0.3")
    bare("install", "stray")
    bare("install", "six==1.17.0")  # replaces conda's six
    bare("install", "--force-reinstall", "--no-deps", "colorama==0.4.6")  # same version
    bare("install", "--ignore-installed", "--no-deps", "idna==3.7")  # a second copy
    bare("uninstall", "-y", "tqdm")  # conda's tqdm gone
    # a package in the user site that this env's python imports (HOME is the run's home)
    user_site = run.home() / ".local" / "lib" / "python3.11" / "site-packages"
    (user_site / "usery-1.0.dist-info").mkdir(parents=True)
    (user_site / "usery-1.0.dist-info" / "METADATA").write_text("Name: usery\nVersion: 1.0\n")

    found, text = status(run, safe_pip_bin, prefix)
    unexplained = names(found["unexplained"])
    assert set(unexplained) == {"stray", "six"}  # six 1.17.0 is pip's now, and unlogged
    assert unexplained["stray"] == {"name": "stray", "version": "0.3", "owner": "pip"}
    overwritten = names(found["overwritten"])
    assert overwritten["six"]["how"] == "replaced"
    assert overwritten["six"]["installed_version"] == "1.17.0"
    assert overwritten["colorama"]["how"] == "reinstalled by pip"
    assert overwritten["idna"]["how"] == "another copy installed over it"
    assert overwritten["idna"]["installed_version"] == "3.7"
    assert overwritten["tqdm"]["how"] == "removed"
    assert set(overwritten) == {"six", "colorama", "idna", "tqdm"}
    assert [i["name"] for i in found["user_site"]] == ["usery"]
    assert "demo-a" not in unexplained and "demo-b" not in unexplained
    # the conda history ends before the pip changes: not layered yet
    assert not found["layered"]
    assert "drift:     stray 0.3 is installed (pip) but neither conda nor the audit log" in (
        text.stdout
    )
    assert "user site: usery 1.0" in text.stdout

    # PYTHONNOUSERSITE: the env's python does not import the user site
    quiet, _ = status(run, safe_pip_bin, prefix, PYTHONNOUSERSITE="1")
    assert quiet["user_site"] == []

    # conda changes the env after pip did: layered
    later = datetime.datetime.now() + datetime.timedelta(minutes=2)
    with open(prefix.conda_meta / "history", "a") as history:
        history.write(
            f"==> {later:%Y-%m-%d %H:%M:%S} <==\n# cmd: /opt/conda/bin/conda install -y zlib\n"
            "+conda-forge/linux-64::zlib-1.3.1-hb9d3cd8_2\n# update specs: ['zlib']\n"
        )
    layered, text = status(run, safe_pip_bin, prefix)
    assert layered["layered"]
    assert layered["first_pip_change"] is not None
    assert "layered:   conda changed this env" in text.stdout
    assert "safe-pip export -o environment.yml" in text.stdout


# --- the audit log's state and its cache (no process) -------------------------------------


def record(
    time: str, installed: list[tuple[str, str]], removed: Sequence[str] = (), **kw: Any
) -> str:
    data = {
        "schema": 1,
        "time": time,
        "decision": kw.get("decision", "allowed"),
        "outcome": kw.get("outcome", "ok"),
        "changes": {
            "installed": [{"name": n, "version": v} for n, v in installed],
            "removed": [{"name": n, "version": "0"} for n in removed],
        },
    }
    return json.dumps(data) + "\n"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_log_state_replays_like_export(tmp_path: Path, environ: dict[str, str]) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text(
        record("2026-01-01T00:00:00.000000Z", [("Demo_A", "1.0")])
        + record("2026-01-02T00:00:00.000000Z", [("demo-a", "2.0"), ("demo-b", "1.0")])
        + record("2026-01-03T00:00:00.000000Z", [("x", "9")], decision="denied")
        + record("2026-01-04T00:00:00.000000Z", [], ["demo-b"])
        + 'not json at all, with a "name" in it\n'
        + record("2026-01-05T00:00:00.000000Z", [("y", "1")], outcome="failed")
    )
    state = drift.log_file_state(str(log), environ)
    assert state == {
        "demo-a": ("2026-01-02T00:00:00.000000Z", "2.0"),
        "demo-b": ("2026-01-04T00:00:00.000000Z", None),
        "y": ("2026-01-05T00:00:00.000000Z", "1"),
    }


def test_log_state_cache_reads_only_what_was_appended(
    tmp_path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_text(record("2026-01-01T00:00:00.000000Z", [("a", "1")]))
    assert drift.log_file_state(str(log), environ) == {"a": ("2026-01-01T00:00:00.000000Z", "1")}
    cache = list((tmp_path / "cache" / "safe-pip").glob("audit-state-*.json"))
    assert len(cache) == 1

    full_reads: list[str] = []
    real_full = drift._full_state

    def counting_full_state(path: str) -> drift.LogState:
        full_reads.append(path)
        return real_full(path)

    monkeypatch.setattr(drift, "_full_state", counting_full_state)
    # appended, plus half a record being written: only the new whole line is read
    third = record("2026-01-03T00:00:00.000000Z", [("c", "3")])
    with open(log, "a") as handle:
        handle.write(record("2026-01-02T00:00:00.000000Z", [("b", "2")]))
        handle.write(third[:40])
    state = drift.log_file_state(str(log), environ)
    assert set(state) == {"a", "b"} and full_reads == []
    # the record completes
    with open(log, "a") as handle:
        handle.write(third[40:])
    assert set(drift.log_file_state(str(log), environ)) == {"a", "b", "c"}
    assert full_reads == []
    # rewritten (same size or not): read again from the start
    log.write_text(record("2026-02-01T00:00:00.000000Z", [("z", "1")]))
    assert drift.log_file_state(str(log), environ) == {"z": ("2026-02-01T00:00:00.000000Z", "1")}
    assert full_reads == [str(log)]
    # a damaged cache is ignored
    cache[0].write_text("{not json")
    assert set(drift.log_file_state(str(log), environ)) == {"z"}
    # no usable cache dir: still right
    broken = {"HOME": "relative", "XDG_CACHE_HOME": ""}
    assert set(drift.log_file_state(str(log), broken)) == {"z"}
    assert drift.log_file_state(str(tmp_path / "missing.jsonl"), environ) == {}


def test_log_state_of_several_files(tmp_path: Path, environ: dict[str, str]) -> None:
    env_log, user_log = tmp_path / "env.jsonl", tmp_path / "user.jsonl"
    env_log.write_text(record("2026-01-02T00:00:00.000000Z", [("a", "2")]))
    user_log.write_text(
        record("2026-01-01T00:00:00.000000Z", [("a", "1")])
        + record("2026-01-03T00:00:00.000000Z", [("b", "1")])
    )
    state = drift.log_state([str(env_log), str(user_log), str(env_log)], environ)
    assert state == {
        "a": ("2026-01-02T00:00:00.000000Z", "2"),
        "b": ("2026-01-03T00:00:00.000000Z", "1"),
    }


def test_last_history_time(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    assert drift.last_history_time(str(tmp_path)) is None
    block = "==> 2026-01-12 09:41:27 <==\n# cmd: conda create\n" + "+x::y-1-0\n" * 20000
    (meta / "history").write_text(block + "==> 2026-03-01 10:00:00 <==\n" + "+a::b-1-0\n" * 9000)
    assert drift.last_history_time(str(tmp_path)) == "2026-03-01 10:00:00"
