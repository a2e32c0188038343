"""``safe-pip log`` through the real CLI (``cli.main``) against a fake env given with --python.

The fake env is a prefix whose ``bin/python`` answers safe-pip's interpreter
probe with that prefix (a venv: pyvenv.cfg), so the test never depends on, or
writes next to, the interpreter running it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from safe_pip import environment
from safe_pip.audit.locations import log_locations
from safe_pip.audit.record import SCHEMA, base_record, utc_time
from safe_pip.audit.store import append
from safe_pip.cli import main
from safe_pip.commands import target_environment
from safe_pip.commands.log import parse_time
from safe_pip.environment import Environment
from safe_pip.policy import default_policy
from safe_pip.probe import _PROBE

# `log --python` inspects the interpreter in a subprocess.
pytestmark = pytest.mark.integration


def make_fake_env(prefix: Path) -> Path:
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(probe.stdout)
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (prefix / "bin").mkdir()
    answer.update(
        executable=str(prefix / "bin" / "python"),
        prefix=str(prefix),
        base_prefix="/opt/base-python",
        stdlib=str(prefix / "lib" / "python3.11"),
        purelib=str(site),
        platlib=str(site),
        scripts=str(prefix / "bin"),
        data=str(prefix),
        version="3.11.7",
    )
    (prefix / "probe.json").write_text(json.dumps(answer))
    python = prefix / "bin" / "python"
    python.write_text(f"#!/bin/sh\nexec cat '{prefix / 'probe.json'}'\n")
    python.chmod(0o755)
    (prefix / "pyvenv.cfg").write_text("home = /opt/base-python/bin\n")
    (site / "pip-24.2.dist-info").mkdir()
    return prefix


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }


@pytest.fixture
def env(tmp_path: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Environment:
    monkeypatch.setenv("XDG_STATE_HOME", environ["XDG_STATE_HOME"])
    prefix = make_fake_env(tmp_path / "analysis")
    found = target_environment(str(prefix), environ)
    assert found.prefix == str(prefix) and found.kind == environment.EnvKind.VENV
    return found


def add(
    env: Environment,
    environ: dict[str, str],
    *,
    argv: list[str],
    decision: str = "allowed",
    installed: tuple[tuple[str, str], ...] = (),
    removed: tuple[tuple[str, str], ...] = (),
    when: float | None = None,
    location: int | None = 0,
    hub_user: str | None = None,
) -> str:
    rec = base_record(env, argv, argv[0], environ={"JUPYTERHUB_USER": hub_user or ""})
    rec.update(
        decision=decision,
        rule="allowed" if decision == "allowed" else "read-only-env",
        reason="test",
        outcome="ok" if decision == "allowed" else "denied",
        exit_code=0 if decision == "allowed" else 10,
        duration_s=1.5,
        requested=[a for a in argv[1:] if not a.startswith("-")],
        changes={
            "installed": [{"name": n, "version": v} for n, v in installed],
            "removed": [{"name": n, "version": v} for n, v in removed],
        },
    )
    if when is not None:
        rec["time"] = utc_time(when)
    locations = log_locations(env, default_policy(), environ)
    return append(rec, locations if location is None else [locations[location]])


def log(
    env: Environment, environ: dict[str, str], capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = main(["log", "--python", env.prefix, *args], environ)
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


DAY = 1_714_521_600  # 2024-05-01T00:00:00Z


@pytest.fixture
def history(env: Environment, environ: dict[str, str]) -> Environment:
    add(
        env,
        environ,
        argv=["install", "-i", "https://alice:s3cret@idx.example.org/simple", "requests"],
        installed=(("requests", "2.32.3"), ("idna", "3.7")),
        when=DAY + 3600,
        hub_user="alice",
    )
    add(
        env,
        environ,
        argv=["install", "numpy"],
        decision="denied",
        when=DAY + 86400 + 60,
        location=1,  # a denied attempt that went to the per-user file
    )
    add(
        env,
        environ,
        argv=["uninstall", "-y", "idna"],
        removed=(("idna", "3.7"),),
        when=DAY + 2 * 86400,
    )
    return env


def test_table(history: Environment, environ: dict[str, str], capsys: Any) -> None:
    code, out, err = log(history, environ, capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "USER", "DECISION", "COMMAND", "CHANGES", "RULE"]
    assert len(lines) == 4
    assert lines[1].startswith("2024-05-01 01:00:00")
    assert "(alice)" in lines[1]
    assert "pip install -i 'https://***@idx.example.org...' requests" in lines[1]
    assert "+requests==2.32.3 +idna==3.7" in lines[1]
    assert "s3cret" not in out
    assert lines[2].startswith("2024-05-02 00:01:00") and " denied " in lines[2]
    assert lines[2].rstrip().endswith("read-only-env")
    assert "pip uninstall -y idna" in lines[3] and "-idna==3.7" in lines[3]


def test_json_and_limit(history: Environment, environ: dict[str, str], capsys: Any) -> None:
    code, out, _ = log(history, environ, capsys, "--json")
    records = json_lines(out)
    assert code == 0 and [r["command"] for r in records] == ["install", "install", "uninstall"]
    assert all(r["schema"] == SCHEMA for r in records)
    code, out, _ = log(history, environ, capsys, "--json", "--limit", "2")
    assert [r["time"][:10] for r in json_lines(out)] == ["2024-05-02", "2024-05-03"]
    code, out, _ = log(history, environ, capsys, "--limit", "0")
    assert code == 0 and out == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--package", "IDNA"], ["install", "uninstall"]),
        (["--package", "numpy"], ["install"]),
        (["--package", "pandas"], []),
        (["--decision", "denied"], ["install"]),
        (["--decision", "allowed", "--package", "requests"], ["install"]),
        (["--user", "alice"], ["install"]),
        (["--since", "2024-05-02"], ["install", "uninstall"]),
        (["--until", "2024-05-01"], ["install"]),
        (["--since", "2024-05-02", "--until", "2024-05-02"], ["install"]),
        (["--since", "2024-05-02T00:01:00Z"], ["install", "uninstall"]),
        (["--since", "2024-05-02T02:01:01+02:00"], ["uninstall"]),
    ],
)
def test_filters(
    history: Environment,
    environ: dict[str, str],
    capsys: Any,
    args: list[str],
    expected: list[str],
) -> None:
    code, out, err = log(history, environ, capsys, "--json", *args)
    assert code == 0
    assert [r["command"] for r in json_lines(out)] == expected
    if not expected:
        assert "no matching audit records" in err


def test_bad_options(history: Environment, environ: dict[str, str], capsys: Any) -> None:
    code, _, err = log(history, environ, capsys, "--since", "yesterday")
    assert code == 12 and "not an ISO 8601 date or time" in err
    code, _, err = log(history, environ, capsys, "--limit", "-1")
    assert code == 12
    code, _, err = log(history, environ, capsys, "--decision", "maybe")
    assert code == 12


def test_damaged_lines_are_counted_not_fatal(
    history: Environment, environ: dict[str, str], capsys: Any
) -> None:
    path = log_locations(history, None, environ)[0]
    with open(path, "ab") as handle:
        handle.write(b"garbage\n{broken\n")
    code, out, err = log(history, environ, capsys, "--json")
    assert code == 0 and len(json_lines(out)) == 3
    assert f"skipped 2 damaged line(s) in {path}" in err


def test_verify(history: Environment, environ: dict[str, str], capsys: Any) -> None:
    code, out, _ = log(history, environ, capsys, "--verify")
    assert code == 0 and out.count("the hash chain is intact") == 2
    path = Path(log_locations(history, None, environ)[0])
    add(history, environ, argv=["install", "six"], installed=(("six", "1.17.0"),))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0].replace(b"requests", b"requestz") + b"".join(lines[1:]))
    code, out, _ = log(history, environ, capsys, "--verify")
    assert code == 14
    assert f"{path}: the hash chain is BROKEN" in out
    assert "line 2: does not chain to line 1" in out


def test_secrets_are_not_shown_even_if_stored(
    env: Environment, environ: dict[str, str], capsys: Any
) -> None:
    path = Path(log_locations(env, None, environ)[0])
    path.parent.mkdir(parents=True)
    leaked = {
        "schema": 1,
        "time": "2024-05-01T00:00:00.000000Z",
        "decision": "allowed",
        "argv": ["install", "--index-url=https://bob:hunter2@idx/simple", "x"],
        "changes": {
            "installed": [
                {"name": "x", "version": "1", "source": {"url": "https://bob:hunter2@h/x.whl"}}
            ]
        },
    }
    path.write_text(json.dumps(leaked) + "\n")
    for args in ([], ["--json"]):
        code, out, _ = log(env, environ, capsys, *args)
        assert code == 0 and "hunter2" not in out and "https://***@idx" in out


def test_invalid_policy_does_not_stop_log(
    history: Environment, environ: dict[str, str], capsys: Any
) -> None:
    policy = Path(history.prefix) / "etc" / "safe-pip" / "policy.toml"
    policy.parent.mkdir(parents=True)
    policy.write_text("[install\n")
    code, out, err = log(history, environ, capsys, "--json")
    assert code == 0 and len(json_lines(out)) == 3
    assert "reading the default log locations" in err


def test_no_log_yet(env: Environment, environ: dict[str, str], capsys: Any) -> None:
    code, out, err = log(env, environ, capsys)
    assert code == 0 and out == "" and "no matching audit records" in err
    code, out, err = log(env, environ, capsys, "--verify")
    assert code == 0 and "no audit log yet" in err


def test_parse_time() -> None:
    assert parse_time("2024-05-01") == "2024-05-01T00:00:00.000000Z"
    assert parse_time("2024-05-01", end=True) == "2024-05-02T00:00:00.000000Z"
    assert parse_time("2024-05-01T14:30") == "2024-05-01T14:30:00.000000Z"
    assert parse_time("2024-05-01 14:30:00Z") == "2024-05-01T14:30:00.000000Z"
    assert parse_time("2024-05-01T14:30:00+02:00") == "2024-05-01T12:30:00.000000Z"
    assert parse_time("2024-05-01T14:30:00.25-01:00") == "2024-05-01T15:30:00.250000Z"


def test_log_reads_the_fallback_of_a_read_only_env(
    env: Environment, environ: dict[str, str], capsys: Any
) -> None:
    (Path(env.prefix) / "var").write_text("")  # the env location cannot be made
    written = add(env, environ, argv=["install", "x"], decision="denied", location=None)
    assert written == log_locations(env, None, environ)[1]
    assert os.path.isfile(written)
    code, out, _ = log(env, environ, capsys, "--json")
    assert code == 0 and [r["decision"] for r in json_lines(out)] == ["denied"]


def test_time_bounds_at_the_ends_of_the_calendar(
    history: Environment, environ: dict[str, str], capsys: Any
) -> None:
    code, out, _ = log(history, environ, capsys, "--json", "--until", "9999-12-31")
    assert code == 0 and len(json_lines(out)) == 3
    code, out, _ = log(history, environ, capsys, "--json", "--since", "0999-01-01")
    assert code == 0 and len(json_lines(out)) == 3
    code, out, _ = log(history, environ, capsys, "--json", "--until", "0999-01-01")
    assert code == 0 and json_lines(out) == []
    for bad in ("9999-12-32", "10000-01-01", "0000-01-01", "x" * 10_000):
        code, _, err = log(history, environ, capsys, "--since", bad)
        assert code == 12 and "not an ISO 8601" in err
    assert parse_time("0999-01-01") == "0999-01-01T00:00:00.000000Z"
    assert parse_time("9999-12-31", end=True) is None
    assert parse_time("9999-12-31T23:30:00-01:00", end=True) is None


def test_a_fifo_log_is_refused_without_blocking(
    env: Environment, environ: dict[str, str], capsys: Any
) -> None:
    path = Path(log_locations(env, default_policy(), environ)[0])
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    code, _, err = log(env, environ, capsys)
    assert code == 0 and "not a regular file" in err
    code, out, _ = log(env, environ, capsys, "--verify")
    assert code == 14 and "not a regular file" in out
    code = main(["export", "--python", env.prefix, "-o", str(path.parent / "x.yml")], environ)
    assert code == 0 and "not a regular file" in capsys.readouterr().err


def test_a_hostile_line_is_skipped_and_counted(
    history: Environment, environ: dict[str, str], capsys: Any
) -> None:
    """1,000 nested brackets (deeper than Python's JSON parser goes) and a 1 MB line: each
    is one damaged line for log and export, never a crash."""
    path = Path(log_locations(history, default_policy(), environ)[0])
    with open(path, "ab") as handle:
        handle.write(b"[" * 1000 + b"]" * 1000 + b"\n")
        handle.write(b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"\n")
        handle.write(b'{"x":"' + b"y" * 1_000_000 + b'"\n')
    add(history, environ, argv=["install", "later==1.0"], installed=(("later", "1.0"),))
    code, out, err = log(history, environ, capsys, "--json")
    assert code == 0 and "skipped 3 damaged line(s)" in err
    assert json_lines(out)[-1]["requested"] == ["later==1.0"]
    code, out, err = log(history, environ, capsys, "--json", "--limit", "2")
    assert code == 0 and len(json_lines(out)) == 2
    target = path.parent / "env.yml"
    assert main(["export", "--python", history.prefix, "-o", str(target)], environ) == 0
    assert "damaged lines skipped" in capsys.readouterr().err
    assert "later==1.0" in target.read_text()
