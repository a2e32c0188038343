"""Policy layers, validation and the docs that must not drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from safe_pip import rules
from safe_pip.errors import ExitCode, PolicyError
from safe_pip.policy import KEYS, default_policy, load_policy

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_the_commented_example_is_the_defaults() -> None:
    policy = load_policy(None, system_path=str(ROOT / "policy" / "policy.toml"))
    assert dict(policy.values) == dict(default_policy().values)


def test_defaults_are_the_hub_policy() -> None:
    policy = default_policy()
    assert policy.mode_for("conda-base") == "deny"
    assert policy.mode_for("system") == "deny"
    assert policy.mode_for("conda-env") == "allow"
    assert policy.flag("install.require-no-build-isolation")
    assert policy.flag("audit.required")
    assert policy.flag("conda.protect-conda-packages")
    assert not policy.flag("conda.allow-override")


def test_missing_files_mean_defaults(tmp_path: Path) -> None:
    policy = load_policy(str(tmp_path), system_path=str(tmp_path / "none.toml"))
    assert policy.files == ()
    assert dict(policy.values) == dict(default_policy().values)


def test_env_file_tightens_but_cannot_loosen(tmp_path: Path) -> None:
    system = write(tmp_path / "system.toml", "version = 1\n[install]\nvenv = 'dev-only'\n")
    prefix = tmp_path / "env"
    write(
        prefix / "etc/safe-pip/policy.toml",
        "[install]\nconda-env = 'dev-only'\nvenv = 'allow'\nallowed-destinations = ['/srv']\n"
        "[audit]\nrequired = false\nlocation = 'user'\n",
    )
    policy = load_policy(str(prefix), system_path=system)
    assert policy.mode_for("conda-env") == "dev-only"  # tightened
    assert policy.mode_for("venv") == "dev-only"  # loosening ignored
    assert policy.paths("install.allowed-destinations") == ()
    assert policy.flag("audit.required")
    assert policy.text("audit.location") == "env"
    assert len(policy.notes) == 4
    assert all("would loosen" in note for note in policy.notes)


def test_delegation_lets_the_env_file_loosen_that_key_only(tmp_path: Path) -> None:
    system = write(
        tmp_path / "system.toml", "version = 1\ndelegate = ['install.allowed-destinations']\n"
    )
    prefix = tmp_path / "env"
    write(
        prefix / "etc/safe-pip/policy.toml",
        "[install]\nallowed-destinations = ['/srv/plugins']\nconda-base = 'allow'\n",
    )
    policy = load_policy(str(prefix), system_path=system)
    assert policy.paths("install.allowed-destinations") == ("/srv/plugins",)
    assert policy.mode_for("conda-base") == "deny"


def test_envs_tables_match_the_prefix(tmp_path: Path) -> None:
    system = write(
        tmp_path / "system.toml",
        "version = 1\n[[envs]]\npath = '/opt/conda/envs/course-*'\n"
        "install = { conda-env = 'dev-only' }\n",
    )
    assert load_policy("/opt/conda/envs/course-101", system_path=system).mode_for("conda-env") == (
        "dev-only"
    )
    assert load_policy("/opt/conda/envs/other", system_path=system).mode_for("conda-env") == "allow"


def test_env_file_cannot_delegate_or_add_envs(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    write(prefix / "etc/safe-pip/policy.toml", "delegate = ['install.conda-base']\n")
    policy = load_policy(str(prefix), system_path=str(tmp_path / "none.toml"))
    assert policy.delegate == frozenset()
    assert any("read only from the system file" in n for n in policy.notes)


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("version = 1\n[install]\nconda-env = 'yes'\n", 3, "install.conda-env"),
        ("version = 1\n\n[install]\nunknown-thing = 1\n", 4, "install.unknown-thing"),
        ("version = 1\n[audit]\nrequired = 'no'\n", 3, "audit.required"),
        (
            "version = 1\n[install]\nallowed-destinations = ['relative']\n",
            3,
            "install.allowed-destinations",
        ),
        ("version = 2\n", 1, "version"),
        ("version = 1\n[install\n", 2, ""),
        ("version = 1\ninstall = 3\n", 2, "install"),
    ],
)
def test_invalid_files_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str
) -> None:
    path = write(tmp_path / "system.toml", text)
    with pytest.raises(PolicyError) as caught:
        load_policy(None, system_path=path)
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert error.key == key
    assert error.exit_code == ExitCode.POLICY_ERROR
    assert path in error.message


def test_non_utf8_policy_is_an_error_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "system.toml"
    path.write_bytes(b"version = 1\n# caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(None, system_path=str(path))
    assert caught.value.line == 2


def test_every_key_is_documented_and_in_the_example() -> None:
    reference = (ROOT / "docs" / "policy.md").read_text()
    example = (ROOT / "policy" / "policy.toml").read_text()
    for name in KEYS:
        assert f"`{name}`" in reference, name
        section, leaf = name.split(".")
        assert f"[{section}]" in example and re.search(
            rf"^#? ?{re.escape(leaf)} =", example, re.M
        ), name


def test_every_rule_id_is_documented() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    for rule in rules.SUMMARY:
        assert f"`{rule}`" in text, rule


def test_every_exit_code_is_documented() -> None:
    text = (ROOT / "docs" / "exit-codes.md").read_text()
    for name, value in vars(ExitCode).items():
        if name.isupper():
            assert f"| {value} | {name} |" in text, name
