"""The guard (the pip path's shell) in process: a fake env on disk, a fake pip, the real
decision, policy, conda records, audit log and messages."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safe_pip import guard, passthrough, policy, preflight, rules, runner
from safe_pip.decide import Decision
from safe_pip.environment import Environment, EnvKind
from safe_pip.errors import UsageError
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import load_policy
from safe_pip.target import Target
from support.auditlog import log_lines, operations
from support.fakes import FakePip, conda_package, env_on_disk, lay_dist_info


class Hub:
    """One fake env behind the guard, and what came out: exit code, stderr, records."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch, env: Environment) -> None:
        self.root = root
        self.env = env
        self.site = Path(env.purelib)
        self.pip = FakePip(self.site)
        self.environ = {
            "HOME": str(root / "home"),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "PIP_CONFIG_FILE": os.devnull,
            "PATH": "/usr/bin:/bin",
        }
        self.system_policy = root / "policy.toml"
        monkeypatch.setattr(guard, "resolve_target", lambda *_a: Target(env.python, "test"))
        monkeypatch.setattr(guard, "start_probe", lambda *_a: None)
        monkeypatch.setattr(guard, "inspect_environment", lambda *_a: self.env)
        monkeypatch.setattr(
            policy, "load_policy", lambda p: load_policy(p, system_path=str(self.system_policy))
        )
        monkeypatch.setattr(runner, "run_pip", self.pip.run_pip)
        monkeypatch.setattr(preflight, "run_checked", self.pip.run_checked)

    def run(self, *argv: str) -> int:
        return guard.run_pip_command(list(argv), self.environ)

    def records(self) -> list[dict[str, Any]]:
        """One record per operation (outcomes; intents nothing completed)."""
        return operations(self.lines())

    def lines(self) -> list[dict[str, Any]]:
        return log_lines(Path(self.env.prefix, "var", "log", "safe-pip", "audit.jsonl"))

    def installed(self) -> set[str]:
        return {p.name for p in self.site.glob("*.dist-info")}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Hub]:
    def make(kind: EnvKind = EnvKind.CONDA_ENV, **changes: Any) -> Hub:
        return Hub(tmp_path, monkeypatch, env_on_disk(tmp_path / "env", kind, **changes))

    return make


def test_refused_install_is_recorded_shown_and_exits_10(
    hub: Callable[..., Hub], capsys: pytest.CaptureFixture[str]
) -> None:
    h = hub(EnvKind.CONDA_BASE)
    assert h.run("install", "demo-a") == 10
    assert h.pip.calls == []  # pip never ran
    [record] = h.records()
    assert (record["decision"], record["rule"], record["exit_code"]) == ("denied", "base-env", 10)
    assert record["command"] == "install" and record["changes"]["installed"] == []
    err = capsys.readouterr().err
    assert "safe-pip: refused: pip install demo-a" in err
    assert f"rule:    base-env ({rules.SUMMARY[rules.BASE_ENV]})" in err
    assert f"env:     {h.env.prefix} (conda-base, chosen by test)" in err


def test_an_unusable_policy_refuses_with_11_and_is_recorded(
    hub: Callable[..., Hub], capsys: pytest.CaptureFixture[str]
) -> None:
    h = hub()
    h.system_policy.write_text("version = 1\n[install\n")
    assert h.run("install", "demo-a") == 11
    [record] = h.records()
    assert (record["rule"], record["exit_code"]) == (rules.POLICY_INVALID, 11)
    assert str(h.system_policy) in capsys.readouterr().err
    assert h.pip.calls == []


def test_allowed_install_runs_pip_once_without_the_user_site_and_records_what_changed(
    hub: Callable[..., Hub],
) -> None:
    h = hub()
    h.pip.plan = [("demo-a", "1.0")]
    assert h.run("install", "demo-a") == 0
    [call] = h.pip.calls
    assert call.python == h.env.python
    assert call.args == ["install", "--no-user", "demo-a"]
    assert call.environ["PYTHONNOUSERSITE"] == "1"
    assert h.installed() == {"demo_a-1.0.dist-info"}
    [record] = h.records()
    assert (record["decision"], record["outcome"], record["exit_code"]) == ("allowed", "ok", 0)
    assert [(i["name"], i["version"]) for i in record["changes"]["installed"]] == [
        ("demo-a", "1.0")
    ]
    # the intent was written (synced) before pip ran, and the outcome completes it
    intent, plan, outcome = h.lines()
    assert (intent["kind"], intent["outcome"], outcome["intent"]) == ("intent", None, intent["id"])
    # pip's plan, at its pause point before it changed anything
    assert (plan["kind"], plan["plan_for"]) == ("plan", intent["id"])
    assert plan["plan"] == {"install": ["demo-a==1.0"], "remove": []}
    assert "demo_a-1.0.dist-info" not in intent["before"]


def test_pips_own_failure_passes_through_and_is_recorded_as_failed(
    hub: Callable[..., Hub],
) -> None:
    h = hub()
    h.pip.exit_code = 1
    assert h.run("uninstall", "-y", "demo-a") == 1
    [record] = h.records()
    assert (record["decision"], record["outcome"], record["exit_code"]) == ("allowed", "failed", 1)


def test_a_plan_that_replaces_a_conda_package_stops_before_anything_is_installed(
    hub: Callable[..., Hub], capsys: pytest.CaptureFixture[str]
) -> None:
    h = hub()
    conda_package(h.env, "six", "1.16.0")
    h.pip.plan = [("six", "1.17.0"), ("demo-a", "1.0")]
    assert h.run("install", "demo-a") == 10
    assert h.installed() == {"six-1.16.0.dist-info"}  # nothing of the plan was laid down
    [record] = h.records()
    assert (record["decision"], record["rule"]) == ("denied", rules.CONDA_OWNED)
    err = capsys.readouterr().err
    assert "six 1.16.0 (conda, conda-forge) -> 1.17.0 (pip) [upgrade]" in err
    assert "conda install six=1.17.0" in err


def test_uninstalling_a_conda_package_is_refused_on_pips_plan_before_anything_goes(
    hub: Callable[..., Hub], capsys: pytest.CaptureFixture[str]
) -> None:
    h = hub()
    conda_package(h.env, "six", "1.16.0")
    lay_dist_info(h.site, "demo-a", "1.0")
    assert h.run("uninstall", "-y", "six") == 10
    assert "six-1.16.0.dist-info" in h.installed()  # pip stopped at its plan
    assert "conda remove six" in capsys.readouterr().err
    # a pip-installed one goes
    assert h.run("uninstall", "-y", "demo-a") == 0
    assert h.installed() == {"six-1.16.0.dist-info"}
    assert [r["decision"] for r in h.records()] == ["denied", "allowed"]


def test_read_only_commands_go_straight_to_pip_and_leave_no_record(
    hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = hub()
    became: list[list[str]] = []

    def become_pip(argv: list[str], *_rest: object) -> int:
        became.append(list(argv))
        return 0

    monkeypatch.setattr(passthrough, "become_pip", become_pip)
    assert h.run("list", "--format", "json") == 0
    assert became == [["list", "--format", "json"]]
    assert h.records() == [] and h.pip.calls == []


def test_an_unrecordable_refusal_still_refuses(
    hub: Callable[..., Hub], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h = hub(EnvKind.CONDA_BASE)
    monkeypatch.setattr(guard._Attempt, "locations", lambda _self: [])
    assert h.run("install", "demo-a") == 10
    err = capsys.readouterr().err
    assert "not recorded" in err and "rule:    base-env" in err


def test_format_denial_indents_every_line_of_why_and_instead() -> None:
    op = parse_pip_command_line(["install", "https://u:secret@h/x.whl"], {}, None)
    decision = Decision(False, rules.CONDA_OWNED, "first\nsecond", "do this\nor that")
    text = guard.format_denial(op, None, decision, "ask #hub-help").splitlines()
    assert text == [
        "safe-pip: refused: pip install 'https://***@h/x.whl'",  # the secret masked
        f"  rule:    conda-owned ({rules.SUMMARY[rules.CONDA_OWNED]})",
        "  why:     first",
        "           second",
        "  instead: do this",
        "           or that",
        "  more:    `safe-pip status` shows what is allowed here",
        "  help:    ask #hub-help",
    ]


def test_an_unparsable_mutating_command_is_recorded_as_unknown_option(
    hub: Callable[..., Hub],
) -> None:
    h = hub()
    with pytest.raises(UsageError):
        h.run("install", "--us", "x")
    [record] = h.records()
    assert (record["rule"], record["exit_code"]) == (rules.UNKNOWN_OPTION, 12)


@pytest.mark.parametrize("marker", [None, "EXTERNALLY-MANAGED"])
@pytest.mark.parametrize(
    ("argv", "uv_door"),
    [
        (["install", "-q", "--no-index", "--find-links", "/w", "a==1.0", "b"], False),
        (["install", "--upgrade", "a"], False),
        (["install", "--break-system-packages", "a"], True),
        (["install", "-q", "a", "b>=2"], True),
    ],
)
def test_the_uv_plan_asked_early_is_the_one_the_install_takes(
    tmp_path: Path, argv: list[str], uv_door: bool, marker: str | None
) -> None:
    """uv is asked for its plan before the env is inspected: that request must be the
    one the install makes once the env is known (marked or not), or the plan is asked
    twice."""
    from safe_pip.backends.uv_cli import parse_uv_pip

    env = env_on_disk(tmp_path / "env", marker=str(tmp_path / "env" / marker) if marker else None)
    environ = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)}
    uv_args = tuple(argv) if uv_door else None
    first = (
        parse_uv_pip(argv, environ).op if uv_door else parse_pip_command_line(argv, environ, None)
    )
    early = guard._uv_request_for(env.python, first, uv_args, environ)
    attempt = guard._Attempt(first, env, environ)
    attempt.uv_args = uv_args
    final = guard._uv_request(attempt)
    assert final == early
    assert final.args.count("--break-system-packages") == 1


def test_a_refusal_under_installer_uv_shows_the_command_as_typed(
    hub: Callable[..., Hub], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--installer`` is taken out before pip runs, but the refusal and its suggested
    command keep it: run as suggested, the command goes to uv again, not to pip."""
    monkeypatch.setattr(guard, "_start_uv_early", lambda *_a: None)  # no uv process here
    h = hub(EnvKind.CONDA_BASE)
    assert h.run("install", "--installer", "uv", "demo-a") == 10
    assert "safe-pip: refused: pip install --installer uv demo-a" in capsys.readouterr().err
    [record] = h.records()
    assert record["argv"] == ["install", "demo-a"] and record["installer"] == "uv"

    h = hub()
    (h.root / "proj").mkdir()
    (h.root / "proj" / "pyproject.toml").write_text("[project]\nname = 'proj'\n")
    monkeypatch.chdir(h.root)
    assert h.run("install", "--installer=uv", "-e", "./proj") == 10
    err = capsys.readouterr().err
    assert "refused: pip install --installer uv -e ./proj" in err
    assert "pip install --installer uv --no-build-isolation -e ./proj" in err
