"""Package sources and warn mode end to end: real pip, real prefixes, real HTTP indexes.

Two PEP 503 indexes are served from one directory by `python -m http.server` on
loopback (a session fixture, stopped by its pid): the policy allows the first
URL only, so the second is a real index that must be refused by every route.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.auditlog import operations_in
from support.index import serve, simple_index, stop
from support.prefixes import Prefix, add_conda_package
from support.run import Runner
from support.wheels import build_wheel

NOBODY = 65534
DENIED = 10


class Index:
    def __init__(self, root: Path, good: str, bad: str) -> None:
        self.root = root
        self.good = good  # http://127.0.0.1:PORT1/simple
        self.bad = bad  # http://127.0.0.1:PORT2/simple


@pytest.fixture(scope="session")
def index(shared_session_tmp: Path) -> Iterator[Index]:
    root = shared_session_tmp / "index"
    files = root / "files"
    wheels = [
        build_wheel(files, "demo-a", "1.0"),
        build_wheel(files, "demo-a", "2.0"),
        build_wheel(files, "demo-b", "1.0", requires=["demo-a"]),
        build_wheel(files, "evil-dep", "1.0"),
        build_wheel(files, "needs-evil", "1.0", requires=["evil-dep"]),
        build_wheel(files, "floored", "1.0"),
        build_wheel(files, "floored", "2.0"),
        build_wheel(files, "uses-floored", "1.0", requires=["floored<2"]),
        build_wheel(files, "six", "1.17.0", files={"six.py": '__version__ = "1.17.0"\n'}),
    ]
    simple_index(root, wheels)
    servers = [serve(root), serve(root)]
    try:
        yield Index(root, servers[0][1] + "/simple", servers[1][1] + "/simple")
    finally:
        for proc, _url in servers:
            stop(proc)


def policy_for(index: Index, extra: str = "") -> str:
    return f'version = 1\n[sources]\nallowed-indexes = ["{index.good}"]\n{extra}'


def records(prefix: Prefix) -> list[dict[str, Any]]:
    """One record per operation (``support.auditlog.operations``)."""
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


def installed(prefix: Prefix) -> set[str]:
    return {p.name.split("-")[0] for p in prefix.site_packages.glob("*.dist-info")}


@pytest.fixture
def conda_env(prefix_factory: Callable[..., Prefix]) -> Prefix:
    return prefix_factory("conda-env")


def _path(prefix: Prefix) -> dict[str, str | None]:
    return {"PATH": f"{prefix.bin}:/usr/bin:/bin"}


ROUTES = ["argv", "variable", "user-config", "site-config", "requirement-file", "extra", "links"]


@pytest.mark.parametrize("route", ROUTES)
def test_an_index_not_allowed_is_refused_by_every_route(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env: Prefix,
    index: Index,
    shared_tmp: Path,
    route: str,
) -> None:
    env = _path(conda_env)
    args = ["install", "demo-a"]
    pip_conf = None
    where = ""
    if route == "argv":
        args += ["--index-url", index.bad]
        where = "--index-url"
    elif route == "variable":
        env["PIP_INDEX_URL"] = index.bad
        where = "PIP_INDEX_URL"
    elif route == "user-config":
        home = run.home()
        (home / ".config" / "pip").mkdir(parents=True)
        user_conf = home / ".config" / "pip" / "pip.conf"
        user_conf.write_text(f"[global]\nindex-url = {index.bad}\n")
        env["PIP_CONFIG_FILE"] = None  # pip reads its config files again
        pip_conf = ""  # and the host's global ones are hidden
        where = str(user_conf)
    elif route == "site-config":
        (conda_env.path / "pip.conf").write_text(f"[install]\nindex-url = {index.bad}\n")
        env["PIP_CONFIG_FILE"] = None  # pip reads no config file at all with /dev/null
        pip_conf = ""
        where = str(conda_env.path / "pip.conf")
    elif route == "requirement-file":
        req = shared_tmp / "req.txt"
        req.write_text(f"--index-url {index.bad}\ndemo-a\n")
        os.chmod(req, 0o644)
        args = ["install", "-r", str(req)]
        where = f"{req}:1"
    elif route == "extra":
        args += ["-i", index.good, "--extra-index-url", index.bad]
        where = "--extra-index-url"
    elif route == "links":
        args += ["--no-index", "--find-links", index.bad.replace("/simple", "/files/")]
        where = "--find-links"
    policy = policy_for(
        index, f'allowed-find-links = ["{index.good.replace("/simple", "/files")}"]\n'
    )
    proc = run([*safe_pip_bin, *args], env=env, system_policy=policy, pip_conf=pip_conf)
    assert proc.returncode == DENIED, proc.stderr
    assert "index-not-allowed" in proc.stderr and where in proc.stderr, proc.stderr
    assert "demo" not in installed(conda_env)
    last = records(conda_env)[-1]
    assert last["decision"] == "denied" and last["rule"] == "index-not-allowed"


def test_an_allowed_index_installs_and_the_default_index_is_refused(
    run: Runner, safe_pip_bin: list[str], conda_env: Prefix, index: Index
) -> None:
    policy = policy_for(index)
    env = _path(conda_env)
    default = run([*safe_pip_bin, "install", "demo-a"], env=env, system_policy=policy)
    assert default.returncode == DENIED and "pip's default index" in default.stderr
    ok = run([*safe_pip_bin, "install", "-i", index.good, "demo-b"], env=env, system_policy=policy)
    assert ok.returncode == 0, ok.stderr
    assert {"demo_a", "demo_b"} <= installed(conda_env)


def test_a_denied_dependency_and_a_floor_are_checked_on_pips_plan(
    run: Runner, safe_pip_bin: list[str], conda_env: Prefix, index: Index
) -> None:
    policy = policy_for(
        index,
        '[packages]\ndeny = { "evil-*" = "known malware (ticket 42)" }\n'
        'minimum-versions = { floored = "2.0" }\n',
    )
    env = _path(conda_env)
    proc = run(
        [*safe_pip_bin, "install", "-i", index.good, "needs-evil"], env=env, system_policy=policy
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "package-denied" in proc.stderr and "known malware (ticket 42)" in proc.stderr
    assert "a dependency" in proc.stderr
    assert not {"needs_evil", "evil_dep"} & installed(conda_env)
    assert records(conda_env)[-1]["rule"] == "package-denied"
    # named on the command line: refused before pip downloads or builds anything
    typed = run(
        [*safe_pip_bin, "install", "-i", index.good, "Evil_Dep"], env=env, system_policy=policy
    )
    assert typed.returncode == DENIED and "package-denied" in typed.stderr
    assert records(conda_env)[-1]["duration_s"] == 0

    floor = run(
        [*safe_pip_bin, "install", "-i", index.good, "uses-floored"], env=env, system_policy=policy
    )
    assert floor.returncode == DENIED, floor.stderr
    assert "version-floor" in floor.stderr and "floored 1.0" in floor.stderr
    assert not {"uses_floored", "floored"} & installed(conda_env)
    last = records(conda_env)[-1]
    assert last["decision"] == "denied" and last["rule"] == "version-floor"
    # what is above the floor goes through
    ok = run([*safe_pip_bin, "install", "-i", index.good, "floored"], env=env, system_policy=policy)
    assert ok.returncode == 0, ok.stderr
    assert "floored" in installed(conda_env)


def test_warn_mode_runs_records_would_deny_and_the_summary_counts_it(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    index: Index,
) -> None:
    env_prefix = prefix_factory("conda-env", writable_by=NOBODY)
    add_conda_package(env_prefix, "six", "1.16.0")
    policy = policy_for(
        index,
        '[packages]\ndeny = { "evil-dep" = "banned" }\n[enforcement]\nmode = "warn"\n',
    )
    env = _path(env_prefix)

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        return run([*safe_pip_bin, *args], user=NOBODY, env=env, system_policy=policy)

    # a denied dependency (plan check), another index (decision), a conda-owned
    # package replaced (plan check): each runs, warns and is recorded as would-deny
    denied_dep = pip("install", "-i", index.good, "needs-evil")
    other_index = pip("install", "-i", index.bad, "demo-a")
    conda = pip("install", "--no-index", "--find-links", str(index.root / "files"), "six==1.17.0")
    for proc, rule in (
        (denied_dep, "package-denied"),
        (other_index, "index-not-allowed"),
        (conda, "conda-owned"),
    ):
        assert proc.returncode == 0, proc.stderr
        assert "warning: the policy will refuse this" in proc.stderr and rule in proc.stderr
    assert {"needs_evil", "evil_dep", "demo_a"} <= installed(env_prefix)
    written = records(env_prefix)
    assert [(r["decision"], r["rule"]) for r in written[-3:]] == [
        ("would-deny", "package-denied"),
        ("would-deny", "index-not-allowed"),
        ("would-deny", "conda-owned"),
    ]
    assert written[-3]["changes"]["installed"]  # what ran is recorded as it happened

    shown = run([*safe_pip_bin, "log", "--decision", "would-deny", "--json"], env=env)
    assert [json.loads(line)["rule"] for line in shown.stdout.splitlines()] == [
        "package-denied",
        "index-not-allowed",
        "conda-owned",
    ]
    summary = run([*safe_pip_bin, "log", "--summary", "--json"], env=env, system_policy=policy)
    counts = json.loads(summary.stdout)
    assert counts["decisions"]["would-deny"] == 3
    assert counts["by_rule"]["conda-owned"]["would-deny"] == 1
    assert counts["by_env"][str(env_prefix.path)]["would-deny"] == 3
    assert sum(c["would-deny"] for c in counts["by_user"].values()) == 3
    text = run([*safe_pip_bin, "log", "--summary"], env=env, system_policy=policy).stdout
    assert "by rule" in text and "index-not-allowed" in text
    # the env export replays what warn mode let through
    export = run([*safe_pip_bin, "export", "--format", "requirements"], env=env)
    assert "needs-evil==1.0" in export.stdout.replace("_", "-")


def test_base_env_stays_enforced_in_warn_mode_unless_named(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], index: Index
) -> None:
    base = prefix_factory("conda-base")
    env = _path(base)
    args = [
        *safe_pip_bin,
        "install",
        "--no-index",
        "--find-links",
        str(index.root / "files"),
        "demo-a",
    ]
    warn = 'version = 1\n[enforcement]\nmode = "warn"\n'
    refused = run(args, env=env, system_policy=warn)
    assert refused.returncode == DENIED and "base-env" in refused.stderr
    assert "demo_a" not in installed(base)
    named = run(args, env=env, system_policy=warn + 'rules = { base-env = "warn" }\n')
    assert named.returncode == 0, named.stderr
    assert "base-env" in named.stderr and "demo_a" in installed(base)
    assert records(base)[-1]["decision"] == "would-deny"


def test_each_rule_in_warn_runs_and_is_counted(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    env_prefix = prefix_factory("conda-env", writable_by=NOBODY)
    env = _path(env_prefix)
    plugins = shared_tmp / "plugins"
    plugins.mkdir()
    os.chown(plugins, NOBODY, NOBODY)
    links = ["--no-index", "--find-links", str(wheelhouse)]
    warn = 'version = 1\n[enforcement]\nmode = "warn"\n'
    cases = [
        ("user-site", warn, ["install", "--user", "demo-a"]),
        ("outside-env", warn, ["install", "--target", str(plugins), "demo-a"]),
        ("dev-only", warn + '[install]\nconda-env = "dev-only"\n', ["install", "demo-b"]),
        ("env-denied", warn + '[install]\nconda-env = "deny"\n', ["install", "six"]),
        (
            "version-floor",
            warn + '[packages]\nminimum-versions = { demo-a = "2.0" }\n',
            ["install", "demo-a==1.0"],
        ),
    ]
    for rule, policy, args in cases:
        proc = run([*safe_pip_bin, *args, *links], user=NOBODY, env=env, system_policy=policy)
        assert proc.returncode == 0, (rule, proc.stderr)
        assert f"rule:    {rule}" in proc.stderr
        last = records(env_prefix)[-1]
        assert (last["decision"], last["rule"], last["outcome"]) == ("would-deny", rule, "ok")
    home = run.home(NOBODY)
    assert list(home.glob(".local/lib/python3.*/site-packages/demo_a-*.dist-info"))
    assert list(plugins.glob("demo_a-*.dist-info"))
    assert {"demo_b", "six"} <= installed(env_prefix)
    assert any(p.name == "demo_a-1.0.dist-info" for p in env_prefix.site_packages.iterdir())
    summary = run([*safe_pip_bin, "log", "--summary", "--json"], user=NOBODY, env=env)
    by_rule = json.loads(summary.stdout)["by_rule"]
    assert {rule: by_rule[rule]["would-deny"] for rule, _, _ in cases} == dict.fromkeys(
        [rule for rule, _, _ in cases], 1
    )
