"""The decision core does no I/O: ``decide`` answers from its inputs alone (the shell
places --target/--prefix/--root before calling it).  Every file-system call fails here."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator

import pytest

from safe_pip import rules
from safe_pip.decide import RULES, Decision, decide
from safe_pip.environment import EnvKind
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import Policy, default_policy
from support.fakes import fake_environment

CASES = [
    ["install", "requests"],
    ["install", "--user", "x"],
    ["install", "--target", "/tmp/elsewhere", "x"],
    ["install", "--prefix", "relative/dir", "x"],
    ["install", "--root", "/", "x"],
    ["install", "--target=", "x"],
    ["install", "-e", "."],
    ["install", "--no-build-isolation", "-e", "./pkg"],
    ["install", "https://user:secret@example.org/x-1.0.tar.gz"],
    ["uninstall", "-y", "x"],
    ["list"],
]
KINDS = [EnvKind.CONDA_ENV, EnvKind.CONDA_BASE, EnvKind.VENV, EnvKind.SYSTEM]


def policies() -> list[Policy]:
    base = dict(default_policy().values)
    dev_only = Policy(values={**base, "install.conda-env": "dev-only"})
    return [default_policy(), dev_only]


def decisions() -> list[Decision]:
    found = []
    for kind in KINDS:
        env = fake_environment("/srv/envs/x", kind, writable=kind != EnvKind.SYSTEM)
        for policy in policies():
            for argv in CASES:
                found.append(decide(parse_pip_command_line(argv, {}, None), env, policy))
    return found


@pytest.fixture
def no_file_system(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []

    def refuse(name: str) -> object:
        def call(*args: object, **_kwargs: object) -> object:
            calls.append(f"{name}{args!r}")
            raise AssertionError(f"the decision core called {name}{args!r}")

        return call

    decisions()  # warm: lazy imports read files, the decision does not
    for module, names in (
        (os, ("stat", "lstat", "getcwd", "listdir", "scandir", "access", "readlink", "open")),
        (os.path, ("exists", "isdir", "isfile", "islink", "realpath", "abspath", "expanduser")),
        (builtins, ("open",)),
    ):
        for name in names:
            monkeypatch.setattr(module, name, refuse(name))
    yield calls


def test_decide_reads_nothing(no_file_system: list[str]) -> None:
    found = decisions()
    assert no_file_system == []
    outcomes = {d.rule for d in found}
    # the cases reach the rules they are meant to: the check is not vacuous
    assert {
        rules.ALLOWED,
        rules.USER_SITE,
        rules.OUTSIDE_ENV,
        rules.BASE_ENV,
        rules.SYSTEM_PYTHON,
        rules.DEV_ONLY,
        rules.BUILD_ISOLATION,
        rules.READ_ONLY_COMMAND,
    } <= outcomes


def test_every_rule_of_the_table_has_a_documented_id() -> None:
    assert [rule.id for rule in RULES if rule.id not in rules.SUMMARY] == []
    names = [rule.check.__name__ for rule in RULES]
    assert len(names) == len(set(names)), "one function per rule"
