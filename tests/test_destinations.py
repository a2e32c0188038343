"""Write locations placed before the decision: --src, paths in build options, and
paths resolved the way the kernel resolves them (symlinks before `..`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from safe_pip import rules
from safe_pip.decide import decide
from safe_pip.destinations import build_option_paths, filesystem, place_destinations
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import default_policy
from support.fakes import fake_environment

PREFIX = "/srv/envs/analysis"
USER_SITE = "/home/alice/.local/lib/python3.11/site-packages"


def decision_for(argv: list[str]):  # type: ignore[no-untyped-def]
    op = parse_pip_command_line(argv, {}, None)
    return decide(op, fake_environment(PREFIX), default_policy())


@pytest.mark.parametrize(
    "argv",
    [
        ["install", ".", f"-C--build-option=build_py --build-lib {USER_SITE}"],
        ["install", ".", "--config-settings", f"--global-option=--prefix={USER_SITE}"],
        ["install", ".", "--global-option", f"build_py --build-lib={USER_SITE}"],
        ["install", ".", "--install-option", f"--install-lib={USER_SITE}"],
        ["install", "-e", "git+https://example.invalid/x.git#egg=x", "--src", USER_SITE],
    ],
)
def test_build_options_and_src_into_the_user_base_are_refused(argv: list[str]) -> None:
    decision = decision_for(argv)
    assert not decision.allowed
    assert decision.rule == rules.USER_SITE


def test_src_and_build_paths_elsewhere_are_no_install_destination() -> None:
    for argv in (
        ["install", "-e", "git+https://example.invalid/x.git#egg=x", "--src", "/home/alice/code"],
        ["install", "--no-build-isolation", ".", "-Cbuilddir=/tmp/build"],
        ["install", "--no-build-isolation", ".", "-Csetup-args=-Dfoo=bar"],
    ):
        decision = decision_for(argv)
        assert decision.allowed, (argv, decision)
        assert "--no-user" in decision.pip_args


def test_build_option_paths() -> None:
    assert build_option_paths("--build-option=build_py --build-lib /a/b") == ["/a/b"]
    assert build_option_paths("--prefix=/x,/y") == ["/x", "/y"]
    assert build_option_paths("builddir=build") == []
    home = os.path.expanduser("~")
    assert build_option_paths("--home ~/lib") == [f"{home}/lib"]


def test_dotdot_after_a_symlink_is_resolved_as_the_kernel_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = tmp_path / "env"
    site = env_dir / "lib" / "site-packages"
    site.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.mkdir(parents=True)
    # env/lib/site-packages/link -> elsewhere/deep: link/.. is elsewhere, not site-packages
    (site / "link").symlink_to(elsewhere)
    monkeypatch.chdir(site)
    env = fake_environment(env_dir)
    op = parse_pip_command_line(["install", "--target", "link/../x", "demo"], {}, None)
    (placed,) = place_destinations(op, env, (), filesystem({}))
    assert not placed.in_env
    assert decide(op, env, default_policy(), destinations=[placed]).rule == rules.OUTSIDE_ENV
    inside = parse_pip_command_line(["install", "--target", "./sub/../x", "demo"], {}, None)
    (placed,) = place_destinations(inside, env, (), filesystem({}))
    assert placed.in_env


def test_pip_wheel_and_download_checkouts_are_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from safe_pip.guard import run_pip_command

    home = tmp_path / "home"
    (home / ".local" / "lib").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    environ = {"HOME": str(home), "PATH": "/nonexistent"}
    site = str(home / ".local" / "lib" / "python3.11" / "site-packages")
    for argv in (
        ["wheel", "-e", "git+https://example.invalid/x.git#egg=x", "--src", site],
        ["download", "-e", "git+https://example.invalid/x.git#egg=x", f"--source-dir={site}"],
    ):
        assert run_pip_command(argv, environ) == 10
        assert "rule:    user-site" in capsys.readouterr().err
    assert run_pip_command(["wheel", "-e", "x", "--src", "."], {**environ, "PIP_SRC": site}) == 10
