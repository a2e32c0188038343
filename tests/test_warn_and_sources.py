"""Warn mode and package sources in the decision core, and the log summary: pure, no process."""

from __future__ import annotations

from pathlib import Path

import pytest

from safe_pip import rules
from safe_pip.commands.log import format_summary, summarize
from safe_pip.decide import Decision, decide
from safe_pip.environment import Environment, EnvKind
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import Policy, default_policy, load_policy
from safe_pip.sources import (
    Planned,
    SourceUse,
    option_uses,
    plan_refusal,
    requirement_file_uses,
    source_refusal,
)
from safe_pip.values import replace
from support.fakes import fake_environment

PREFIX = "/srv/envs/analysis"
MIRROR = "http://127.0.0.1:9/simple"


def env_of(kind: EnvKind = EnvKind.CONDA_ENV, **changes: object) -> Environment:
    env = fake_environment(PREFIX, kind, name="analysis")
    return replace(env, **changes)


def policy(**values: object) -> Policy:
    merged = dict(default_policy().values)
    merged.update({k.replace("__", "."): v for k, v in values.items()})
    return Policy(values=merged)


def decided(argv: list[str], env: Environment, pol: Policy, **environ: str) -> Decision:
    return decide(parse_pip_command_line(argv, environ, None), env, pol)


# (rule, argv, env, policy values that make the rule refuse)
CASES = [
    (rules.USER_SITE, ["install", "--user", "x"], env_of(), {}),
    (rules.OUTSIDE_ENV, ["install", "--target", "/srv/elsewhere", "x"], env_of(), {}),
    (rules.DEV_ONLY, ["install", "x"], env_of(), {"install.conda-env": "dev-only"}),
    (rules.ENV_DENIED, ["install", "x"], env_of(), {"install.conda-env": "deny"}),
    (rules.BUILD_ISOLATION, ["install", "./src"], env_of(), {}),
    (
        rules.INDEX_NOT_ALLOWED,
        ["install", "--index-url", "http://elsewhere/simple", "x"],
        env_of(),
        {"sources.allowed-indexes": (MIRROR,)},
    ),
    (
        rules.PACKAGE_DENIED,
        ["install", "Evil_Thing>=1"],
        env_of(),
        {"packages.deny": {"evil-*": "malware"}},
    ),
    (rules.FROZEN_ENV, ["install", "x"], env_of(frozen=True), {}),
    (rules.READ_ONLY_ENV, ["install", "x"], env_of(writable=False), {}),
    (rules.BASE_ENV, ["install", "x"], env_of(EnvKind.CONDA_BASE), {}),
]


@pytest.mark.parametrize(("rule", "argv", "env", "values"), CASES)
def test_each_rule_enforced_refuses_and_named_in_warn_runs(
    rule: str, argv: list[str], env: Environment, values: dict[str, object]
) -> None:
    enforced = decided(argv, env, policy(**values))
    assert not enforced.allowed and enforced.rule == rule
    named = decided(argv, env, policy(**values, **{"enforcement.rules": {rule: "warn"}}))
    assert named.allowed and named.pip_args
    assert [w.rule for w in named.warnings] == [rule]
    assert named.warnings[0].hint == enforced.hint


@pytest.mark.parametrize(("rule", "argv", "env", "values"), CASES)
def test_global_warn_keeps_the_rules_that_protect_other_users(
    rule: str, argv: list[str], env: Environment, values: dict[str, object]
) -> None:
    warn = decided(argv, env, policy(**values, **{"enforcement.mode": "warn"}))
    by_kind = decided(
        argv, env, policy(**values, **{"enforcement.kinds": {env.kind.value: "warn"}})
    )
    for decision in (warn, by_kind):
        if rule in rules.PROTECTED:
            assert not decision.allowed and decision.rule == rule
        else:
            assert decision.allowed and decision.warnings[0].rule == rule


def test_a_rule_set_to_enforce_holds_under_global_warn() -> None:
    pol = policy(**{"enforcement.mode": "warn", "enforcement.rules": {rules.USER_SITE: "enforce"}})
    assert decided(["install", "--user", "x"], env_of(), pol).rule == rules.USER_SITE


def test_warn_in_one_kind_only() -> None:
    pol = policy(**{"enforcement.kinds": {"venv": "warn"}})
    assert decided(["install", "--user", "x"], env_of(EnvKind.VENV), pol).allowed
    assert not decided(["install", "--user", "x"], env_of(), pol).allowed


def test_an_env_file_may_turn_warn_into_enforce_but_not_back(tmp_path: Path) -> None:
    system = tmp_path / "system.toml"
    system.write_text("[enforcement]\nmode = 'warn'\nrules = { conda-owned = 'warn' }\n")
    own = tmp_path / "env" / "etc" / "safe-pip" / "policy.toml"
    own.parent.mkdir(parents=True)
    own.write_text("[enforcement]\nrules = { conda-owned = 'enforce', base-env = 'warn' }\n")
    loaded = load_policy(str(tmp_path / "env"), system_path=str(system))
    assert loaded.table("enforcement.rules") == {"conda-owned": "warn"}  # the loosening: ignored
    own.write_text("[enforcement]\nmode = 'enforce'\nrules = { conda-owned = 'enforce' }\n")
    loaded = load_policy(str(tmp_path / "env"), system_path=str(system))
    assert loaded.text("enforcement.mode") == "enforce"
    assert loaded.table("enforcement.rules") == {"conda-owned": "enforce"}


# --- sources ----------------------------------------------------------------------------------


def uses_of(argv: list[str], **environ: str) -> list[SourceUse]:
    return option_uses(parse_pip_command_line(argv, environ, None))


def test_index_uses_name_their_route() -> None:
    uses = uses_of(["install", "-i", MIRROR, "--extra-index-url", "http://x/simple", "a"])
    assert [(u.kind, u.location, u.where.split()[0]) for u in uses] == [
        ("index", MIRROR, "-i"),
        ("index", "http://x/simple", "--extra-index-url"),
    ]
    from_variable = uses_of(["install", "a"], PIP_INDEX_URL="http://v/simple")
    assert from_variable[0].where.startswith("PIP_INDEX_URL")
    assert uses_of(["install", "a"])[0].location == "default"
    assert [u.location for u in uses_of(["install", "--no-index", "-f", "/wheels", "a"])] == [
        "/wheels"
    ]


def test_allowlists_match_by_prefix_and_default_by_name() -> None:
    pol = policy(
        **{
            "sources.allowed-indexes": (MIRROR,),
            "sources.allowed-find-links": ("/srv/wheels",),
        }
    )
    ok = [SourceUse("index", MIRROR + "/", "-i"), SourceUse("find-links", "/srv/wheels/a", "-f")]
    assert source_refusal(ok, pol) is None
    refused = source_refusal([SourceUse("index", "default", "pip's default")], pol)
    assert refused is not None and "pip's default index" in refused[0]
    refused = source_refusal([SourceUse("index", "http://user:pw@evil/simple", "x")], pol)
    assert refused is not None and "pw" not in refused[0] and MIRROR in refused[1]
    near = source_refusal([SourceUse("index", MIRROR + "x", "-i")], pol)
    assert near is not None  # a prefix must end at a path segment
    assert source_refusal([SourceUse("find-links", "/srv/wheelsx", "-f")], pol) is not None
    with_default = policy(**{"sources.allowed-indexes": ("default",)})
    assert source_refusal([SourceUse("index", "default", "")], with_default) is None


def test_requirement_files_and_the_files_they_name(tmp_path: Path) -> None:
    inner = tmp_path / "inner.txt"
    inner.write_text("--extra-index-url http://inner/simple\nb\n")
    outer = tmp_path / "req.txt"
    outer.write_text("-i http://outer/simple\n-f/srv/w # c\n-r inner.txt\na\n")
    op = parse_pip_command_line(["install", "-r", str(outer)], {}, None)
    uses = requirement_file_uses(op)
    assert [(u.kind, u.location) for u in uses] == [
        ("index", "http://outer/simple"),
        ("find-links", "/srv/w"),
        ("index", "http://inner/simple"),
    ]
    assert uses[0].where == f"{outer}:1 -i"
    pol = policy(**{"sources.allowed-indexes": (MIRROR,)})
    refused = decide(op, env_of(), pol, file_sources=uses)
    assert refused.rule == rules.INDEX_NOT_ALLOWED and f"{outer}:1" in refused.reason


def test_the_plan_check_names_denied_dependencies_and_floors() -> None:
    pol = policy(
        **{
            "packages.deny": {"reqests": "a typosquat of requests", "evil-*": "malware"},
            "packages.minimum-versions": {"urllib3": "2.2.2"},
        }
    )
    assert plan_refusal([Planned("requests", "2.0", True)], pol) is None
    denied = plan_refusal([Planned("ok", "1", True), Planned("Evil_Thing", "1.0", False)], pol)
    assert denied is not None and denied[0] == rules.PACKAGE_DENIED
    assert "a dependency" in denied[1] and "malware" in denied[1]
    typo = plan_refusal([Planned("reqests", "1", True)], pol)
    assert typo is not None and "typosquat" in typo[1]
    low = plan_refusal([Planned("urllib3", "1.26.0", False)], pol)
    assert low is not None and low[0] == rules.VERSION_FLOOR and "2.2.2" in low[1]
    assert plan_refusal([Planned("urllib3", "2.2.2", False)], pol) is None


# --- summary ----------------------------------------------------------------------------------


def test_summary_counts_by_rule_env_and_user() -> None:
    records = [
        {"decision": "would-deny", "rule": "conda-owned", "prefix": "/a", "user": "ann"},
        {"decision": "would-deny", "rule": "conda-owned", "prefix": "/b", "user": "bob"},
        {"decision": "denied", "rule": "base-env", "prefix": "/a", "user": "ann"},
        {"decision": "allowed", "rule": "allowed", "prefix": "/a", "user": "ann"},
    ]
    counts = summarize(records)
    assert counts["records"] == 4
    assert counts["decisions"] == {"would-deny": 2, "denied": 1, "allowed": 1}
    assert counts["by_rule"]["conda-owned"] == {"would-deny": 2, "denied": 0}
    assert counts["by_env"]["/a"] == {"would-deny": 1, "denied": 1}
    assert counts["by_user"]["bob"] == {"would-deny": 1, "denied": 0}
    text = format_summary(counts, {"since": None, "until": None})
    assert "conda-owned" in text and "2 would-deny" in text


def test_status_says_what_only_warns() -> None:
    from safe_pip.commands.status import _probes, _verdict

    probes = _probes(env_of(), policy(**{"enforcement.mode": "warn"}))
    user = next(p for p in probes if p["operation"] == "user install")
    assert user["allowed"] and user["would_deny"] == [rules.USER_SITE]
    assert _verdict(user) == "allowed, warned [user-site] (warn mode)"
    enforced = next(p for p in _probes(env_of(), policy()) if p["operation"] == "user install")
    assert _verdict(enforced) == "refused [user-site]"


def test_a_requirements_file_safe_pip_cannot_read_is_refused_under_an_allowlist(
    tmp_path: Path,
) -> None:
    import os

    fifo = tmp_path / "reqs"
    os.mkfifo(fifo)
    op = parse_pip_command_line(["install", "-r", str(fifo)], {}, None)
    uses = requirement_file_uses(op)
    assert [u.kind for u in uses] == ["unchecked"]
    refused = source_refusal(uses, policy(**{"sources.allowed-indexes": (MIRROR,)}))
    assert refused is not None and "not a regular file" in refused[0]
    assert source_refusal(uses, policy()) is None
