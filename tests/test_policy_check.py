"""`safe-pip policy check`: every problem with file, line and key; envs; precedence; summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from safe_pip.cli import main
from safe_pip.errors import ExitCode
from safe_pip.policy import check_file, load_policy

# (policy text, [(line, key, words the message must hold), ...]): a corpus of broken policies
CORPUS = [
    (
        'version = 1\n[install]\nconda-env = "alow"\n',
        [(3, "install.conda-env", ["not 'alow'", "did you mean 'allow'"])],
    ),
    (
        "version = 1\n[install]\nvenvv = 'allow'\n",
        [(3, "install.venvv", ["unknown key", "did you mean 'venv'"])],
    ),
    ("[instal]\nvenv = 'allow'\n", [(1, "instal", ["did you mean 'install'"])]),
    ("verison = 1\n", [(1, "verison", ["did you mean 'version'"])]),
    ("version = 2\n", [(1, "version", ["version 1"])]),
    ("version = 1\n[install\n", [(2, "", ["not valid TOML"])]),
    ("version = 1\ninstall = 3\n", [(2, "install", ["expected a table"])]),
    (
        "version = 1\n[audit]\nrequired = 'no'\nlocation = 'usr'\n",
        [
            (3, "audit.required", ["true or false"]),
            (4, "audit.location", ["did you mean 'user'"]),
        ],
    ),
    (
        "[enforcement]\nmode = 'warm'\nrules = { conda-ownd = 'warn' }\n"
        "kinds = { venv = 'enforced' }\n",
        [
            (2, "enforcement.mode", ["did you mean 'warn'"]),
            (3, "enforcement.rules", ["did you mean 'conda-owned'"]),
            (4, "enforcement.kinds", ["did you mean 'enforce'"]),
        ],
    ),
    (
        "[packages]\nminimum-versions = { urllib3 = 'two' }\ndeny = { 'bad name!' = 'x' }\n",
        [
            (2, "packages.minimum-versions", ["not a version"]),
            (3, "packages.deny", ["not a project name"]),
        ],
    ),
    (
        "[sources]\nallowed-indexes = ['mirror.example/simple']\n",
        [(2, "sources.allowed-indexes", ["not a URL"])],
    ),
    (
        "delegate = ['install.conda-envv']\n",
        [(1, "delegate", ["did you mean 'install.conda-env'"])],
    ),
    (
        "version = 1\n\n[[envs]]\npath = '/opt/a'\n\n[[envs]]\npath = '/opt/b'\n"
        "install = { conda-env = 'alow' }\n",
        [(8, "install.conda-env", ["did you mean 'allow'"])],
    ),
    (
        "[[envs]]\npath = '/opt/a'\n[envs.install]\nvenv = 'nope'\n",
        [(4, "install.venv", ["not 'nope'"])],
    ),
    ("[[envs]]\ninstall = { venv = 'deny' }\n", [(1, "envs.path", ["needs a path"])]),
]


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("text", "expected"), CORPUS)
def test_every_problem_has_file_line_and_key(
    tmp_path: Path, text: str, expected: list[tuple[int, str, list[str]]]
) -> None:
    path = _write(tmp_path, text)
    problems = check_file(path).problems
    assert [(p.path, p.line, p.key) for p in problems] == [
        (path, line, key) for line, key, _ in expected
    ]
    for problem, (line, _, words) in zip(problems, expected):
        assert problem.message.startswith(f"{path}:{line}")
        for word in words:
            assert word in problem.message


@pytest.mark.parametrize(("text", "expected"), CORPUS)
def test_policy_check_prints_them_all_and_exits_11(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: list[tuple[int, str, list[str]]],
) -> None:
    path = _write(tmp_path, text)
    assert main(["policy", "check", path], {"PATH": os.defpath}) == ExitCode.POLICY_ERROR
    out = capsys.readouterr().out
    for line, _key, words in expected:
        assert f"{path}:{line}" in out
        assert all(word in out for word in words)
    assert f"{len(expected)} problem(s)" in out


def test_the_first_problem_is_what_load_policy_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "[install]\nconda-env = 'alow'\nvenv = 'x'\n")
    with pytest.raises(Exception) as caught:
        load_policy(None, system_path=path)
    assert "alow" in str(caught.value) and ":2" in str(caught.value)


def test_envs_entries_show_what_they_match_and_a_typo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    envs = tmp_path / "envs"
    for name in ("course-101", "course-102", "other"):
        (envs / name / "conda-meta").mkdir(parents=True)
    path = _write(
        tmp_path,
        f"version = 1\n[[envs]]\npath = '{envs}/course-*'\ninstall = {{ conda-env = 'dev-only' }}\n"
        f"[[envs]]\npath = '{tmp_path}/envz/other'\n"
        f"[[envs]]\npath = '{envs}/course-101'\ninstall = {{ conda-env = 'deny' }}\n",
    )
    assert main(["policy", "check", path], {"PATH": os.defpath}) == 0
    out = capsys.readouterr().out
    assert f"#1 {path}:3" in out and "matches 2 env(s)" in out
    assert str(envs / "course-101") in out and str(envs / "other") not in out.split("#2")[0]
    assert "#2" in out and "matches no env on this machine" in out
    assert f"did you mean '{envs}/other'" in out
    assert "the later wins" in out
    # the later of two matching entries wins, and is named as the origin
    policy = load_policy(str(envs / "course-101"), system_path=path)
    assert policy.mode_for("conda-env") == "deny"
    assert policy.matched == (
        f"[[envs]] #1 (path = '{envs}/course-*')",
        f"[[envs]] #3 (path = '{envs}/course-101')",
    )
    assert (
        policy.origin("install.conda-env") == f"{path}:8 [[envs]] #3 (path = '{envs}/course-101')"
    )


def test_kind_summary_and_warn_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        tmp_path,
        "[enforcement]\nmode = 'warn'\n[install]\nvenv = 'dev-only'\n"
        "[packages]\ndeny = { 'reqests' = 'typosquat of requests' }\n",
    )
    assert main(["policy", "check", path], {"PATH": os.defpath}) == 0
    out = capsys.readouterr().out
    summary = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "dev-only" in summary["venv"] and "developer installs only" in summary["venv"]
    assert "conda-owned" in summary["conda-env"]  # warned
    # base-env stays enforced in warn mode unless named
    assert "base-env" not in summary["conda-base"] and "read-only-env" not in summary["venv"]
    assert "reqests" in out


def test_a_missing_file_named_on_the_command_line_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(tmp_path / "nope.toml")], {}) == ExitCode.POLICY_ERROR
    assert "no such file" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text",
    [
        '[messages]\ncontact = "ask in #hub-help"\n[install]\nconda-env = "alow"\n',
        '[messages]\ncontact = "ask in #hub-help"\n[install\n',
    ],
)
def test_users_are_told_to_ask_the_admin_with_the_contact_line(tmp_path: Path, text: str) -> None:
    from safe_pip.policy import tell_the_admin

    path = _write(tmp_path, text)
    told = tell_the_admin(path)
    assert "ask in #hub-help" in told and "admin" in told
    assert "edit" not in told and "docs/policy.md" not in told
