"""Bad input gets a clear error and loses nothing: mutating commands fail closed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from support.prefixes import Prefix
from support.run import Runner

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("policy", "where"),
    [
        ("version = 1\n[install\n", "line 2"),
        ("version = 1\n[install]\nconda-env = 'yes'\n", ":3 (key 'install.conda-env')"),
        ("version = 1\n[install]\nfly = true\n", "(key 'install.fly')"),
        ("version = 7\n", "(key 'version')"),
        ("version = 1\nx = " + "[" * 500 + "]" * 500 + "\n", "nested too deeply"),
        ("version = " + "9" * 4301 + "\n", "4300 digits"),
    ],
    ids=["toml", "value", "unknown-key", "version", "deep-array", "huge-integer"],
)
def test_invalid_system_policy_fails_closed(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    policy: str,
    where: str,
) -> None:
    env = prefix_factory("conda-env", writable_by=65534)
    proc = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        user=65534,
        env={"PATH": f"{env.bin}:/usr/bin:/bin"},
        system_policy=policy,
    )
    assert proc.returncode == 11, proc.stderr
    assert "policy-invalid" in proc.stderr
    assert "/etc/safe-pip/policy.toml" in proc.stderr and where in proc.stderr
    assert not any(env.site_packages.glob("demo_a*"))
    log = env.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    records = [json.loads(line) for line in log.read_bytes().splitlines()]
    assert any((r.get("decision"), r.get("rule")) == ("denied", "policy-invalid") for r in records)


def test_env_policy_may_tighten_but_not_loosen(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env", writable_by=65534)
    env_policy = env.path / "etc" / "safe-pip" / "policy.toml"
    env_policy.parent.mkdir(parents=True)
    env_policy.write_text('[install]\nallowed-destinations = ["/tmp"]\nconda-env = "dev-only"\n')
    path = {"PATH": f"{env.bin}:/usr/bin:/bin"}
    proc = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        user=65534,
        env=path,
    )
    assert proc.returncode == 10 and "dev-only" in proc.stderr
    proc = run(
        [*safe_pip_bin, "install", "--target", "/tmp/x-safe-pip", "demo-a"], user=65534, env=path
    )
    assert proc.returncode == 10 and "outside-env" in proc.stderr
    status = run([*safe_pip_bin, "status"], user=65534, env=path)
    assert "would loosen the system policy" in status.stdout
    # delegated by the admin, the same env file may open the directory
    delegated = 'version = 1\ndelegate = ["install.allowed-destinations"]\n'
    proc = run(
        [
            *safe_pip_bin,
            "install",
            "--dry-run",
            "--target",
            "/tmp/x-safe-pip",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "demo-a",
        ],
        user=65534,
        env=path,
        system_policy=delegated,
    )
    assert "outside-env" not in proc.stderr


def test_malformed_history_and_records_never_crash_status(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env")
    (env.conda_meta / "history").write_bytes(
        b"==> 2026-01-01 <==\n# cmd: \xff\xfe conda\n+garbage\n\x00\x00"
    )
    (env.conda_meta / "broken-1.0-0.json").write_text("{not json")
    os.mkfifo(env.conda_meta / "fifo-1.0-0.json")  # would block a plain open() forever
    path = {"PATH": f"{env.bin}:/usr/bin:/bin"}
    status = run([*safe_pip_bin, "status"], env=path, timeout=60)
    assert status.returncode == 0, status.stderr
    assert f"env:       {env.path}" in status.stdout
    export = run([*safe_pip_bin, "export"], env=path, timeout=60)
    assert export.returncode == 0, export.stderr
    # each problem is reported as a note naming the file (and line), and the rest is exported
    notes = [line for line in export.stderr.splitlines() if line.startswith("safe-pip: note: ")]
    assert any(str(env.conda_meta / "broken-1.0-0.json") in note for note in notes), notes
    assert any(str(env.conda_meta / "history") in note for note in notes), notes
    assert any("fifo-1.0-0.json: cannot read: a FIFO" in note for note in notes), notes
    assert "dependencies:" in export.stdout
    install = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        env=path,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    assert any(env.site_packages.glob("demo_a-*.dist-info"))
    log = env.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    record = json.loads(log.read_text().splitlines()[-1])
    assert (record["decision"], record["outcome"], record["command"]) == (
        "allowed",
        "ok",
        "install",
    )
    assert [i["name"] for i in record["changes"]["installed"]] == ["demo-a"]


def test_malformed_marker_is_pips_business_but_status_works(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env")
    (env.stdlib / "EXTERNALLY-MANAGED").write_bytes(b"\xff not ini at all")
    path = {"PATH": f"{env.bin}:/usr/bin:/bin"}
    assert run([*safe_pip_bin, "status"], env=path).returncode == 0
    proc = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        env=path,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(env.site_packages.glob("demo_a*"))


def test_missing_interpreter_is_a_target_error(run: Runner, safe_pip_bin: list[str]) -> None:
    proc = run([*safe_pip_bin, "--python", "/nonexistent/bin/python", "install", "x"])
    assert proc.returncode == 13
    assert "cannot find the Python interpreter" in proc.stderr
