"""The decision table: pure, no process.  Real parser, fake environments."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from safe_pip import rules
from safe_pip.decide import Decision, decide, is_dev_install, is_local_path
from safe_pip.environment import Environment, EnvKind
from safe_pip.errors import UsageError
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import KEYS, Policy, default_policy
from safe_pip.values import replace
from support.fakes import fake_environment

PREFIX = "/srv/envs/analysis"


def make_env(kind: EnvKind = EnvKind.CONDA_ENV, **changes: object) -> Environment:
    env = fake_environment(PREFIX, kind, name="analysis")
    return replace(env, **changes)


def policy_with(**values: object) -> Policy:
    base = dict(default_policy().values)
    for key, value in values.items():
        name = key.replace("__", ".").replace("_", "-")
        assert name in KEYS, name
        base[name] = value
    return Policy(values=base)


def run(
    argv: list[str],
    env: Environment | None = None,
    policy: Policy | None = None,
    environ: Mapping[str, str] | None = None,
) -> Decision:
    op = parse_pip_command_line(argv, environ or {}, None)
    return decide(op, env or make_env(), policy or default_policy())


def test_plain_install_in_conda_env_is_allowed_and_never_falls_back_to_user() -> None:
    decision = run(["install", "requests"])
    assert decision.allowed
    assert decision.rule == rules.ALLOWED
    assert decision.pip_args[0] == "install"
    assert "--no-user" in decision.pip_args
    assert "requests" in decision.pip_args


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["install", "--user", "x"], {}),
        (["install", "x"], {"PIP_USER": "1"}),
        (["install", "x"], {"PIP_USER": "yes"}),
        (["install", "x"], {"PIP_NO_USER": "1"}),
        (["--isolated", "install", "--user", "x"], {}),
    ],
)
def test_user_site_routes_are_denied(argv: list[str], environ: dict[str, str]) -> None:
    decision = run(argv, environ=environ)
    assert not decision.allowed
    assert decision.rule == rules.USER_SITE
    assert decision.hint


def test_ambiguous_prefix_is_a_usage_error_not_a_guess() -> None:
    # pip itself refuses --us (--user or --use-pep517/--use-feature/...)
    with pytest.raises(UsageError):
        run(["install", "--us", "x"])


def test_empty_location_options_are_refused() -> None:
    for option in ("--target=", "--prefix=", "--root="):
        assert run(["install", option, "x"]).rule == rules.OUTSIDE_ENV


def test_pip_user_false_is_not_a_user_install() -> None:
    assert run(["install", "x"], environ={"PIP_USER": "0"}).allowed


@pytest.mark.parametrize("option", ["--prefix", "--target", "--root"])
def test_destination_inside_user_base_is_a_user_install(option: str) -> None:
    value = "/home/alice/.local" if option != "--target" else "/home/alice/.local/lib/x"
    decision = run(["install", option, value, "x"])
    assert decision.rule == rules.USER_SITE


def test_base_env_is_denied_even_with_break_system_packages() -> None:
    env = make_env(EnvKind.CONDA_BASE)
    for argv, environ in [
        (["install", "x"], {}),
        (["install", "--break-system-packages", "x"], {}),
        (["install", "x"], {"PIP_BREAK_SYSTEM_PACKAGES": "1"}),
        (["uninstall", "-y", "x"], {}),
        (["install", "--no-build-isolation", "-e", "."], {}),
    ]:
        decision = run(argv, env, environ=environ)
        assert (decision.allowed, decision.rule) == (False, rules.BASE_ENV), argv


def test_system_python_is_denied() -> None:
    decision = run(["install", "x"], make_env(EnvKind.SYSTEM, prefix="/usr"))
    assert decision.rule == rules.SYSTEM_PYTHON


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--target", "/tmp/elsewhere", "x"],
        ["install", "--targ=/tmp/elsewhere", "x"],
        ["install", "-t/tmp/elsewhere", "x"],
        ["install", "--prefix", "/opt/other", "x"],
        ["install", "--prefi=/opt/other", "x"],
        ["install", "--root", "/tmp/root", "x"],
    ],
)
def test_outside_env_destinations_are_denied(argv: list[str]) -> None:
    decision = run(argv)
    assert decision.rule == rules.OUTSIDE_ENV


def test_listed_destination_is_allowed_even_from_a_base_env() -> None:
    policy = policy_with(**{"install.allowed-destinations": ("/srv/plugins",)})
    decision = run(
        ["install", "--target", "/srv/plugins/jupyter", "x"], make_env(EnvKind.CONDA_BASE), policy
    )
    assert decision.allowed
    assert "--no-user" not in decision.pip_args


def test_target_env_given_by_env_variable_is_seen() -> None:
    decision = run(["install", "x"], environ={"PIP_TARGET": "/tmp/elsewhere"})
    assert decision.rule == rules.OUTSIDE_ENV


def test_prefix_of_the_env_itself_is_a_write_into_the_env() -> None:
    decision = run(["install", "--prefix", PREFIX, "x"], make_env(EnvKind.CONDA_BASE))
    assert decision.rule == rules.BASE_ENV
    assert run(["install", "--prefix", PREFIX, "x"]).allowed


def test_root_slash_is_a_write_into_the_env() -> None:
    assert run(["install", "--root", "/", "x"], make_env(EnvKind.CONDA_BASE)).rule == rules.BASE_ENV


def test_frozen_env_refuses_install_and_uninstall() -> None:
    env = make_env(frozen=True)
    assert run(["install", "x"], env).rule == rules.FROZEN_ENV
    assert run(["uninstall", "x"], env).rule == rules.FROZEN_ENV


def test_read_only_env_is_denied_before_pip_could_fall_back() -> None:
    decision = run(["install", "x"], make_env(writable=False))
    assert decision.rule == rules.READ_ONLY_ENV
    assert "~/.local" in rules.SUMMARY[rules.READ_ONLY_ENV]


def test_dev_install_in_conda_env_needs_no_build_isolation() -> None:
    decision = run(["install", "-e", "."])
    assert decision.rule == rules.BUILD_ISOLATION
    assert "pip install --no-build-isolation -e ." in decision.hint
    ok = run(["install", "--no-build-isolation", "-e", "."])
    assert ok.allowed and ok.rule == rules.DEV_INSTALL and ok.dev_install


def test_no_build_isolation_from_environment_counts() -> None:
    # pip's quirk: PIP_NO_BUILD_ISOLATION=0 (false) disables isolation
    assert run(["install", "-e", "."], environ={"PIP_NO_BUILD_ISOLATION": "0"}).allowed


def test_build_isolation_rule_can_be_switched_off_and_is_conda_only() -> None:
    policy = policy_with(**{"install.require-no-build-isolation": False})
    assert run(["install", "-e", "."], policy=policy).allowed
    assert run(["install", "-e", "."], make_env(EnvKind.VENV)).allowed


def test_dev_only_env_allows_only_dev_installs() -> None:
    policy = policy_with(**{"install.conda-env": "dev-only"})
    assert run(["install", "--no-build-isolation", "-e", "./pkg"], policy=policy).allowed
    assert run(["install", "requests"], policy=policy).rule == rules.DEV_ONLY
    assert run(["install", "-e", "git+https://x/y.git#egg=y"], policy=policy).rule == rules.DEV_ONLY
    assert run(["uninstall", "-y", "requests"], policy=policy).rule == rules.DEV_ONLY
    env = make_env(editable_dists=frozenset({"my-pkg"}))
    assert run(["uninstall", "-y", "my_pkg"], env, policy).allowed


def test_deny_mode_denies_everything() -> None:
    policy = policy_with(**{"install.conda-env": "deny"})
    decision = run(["install", "--no-build-isolation", "-e", "."], policy=policy)
    assert decision.rule == rules.ENV_DENIED


def test_marker_gets_break_system_packages_for_allowed_operations() -> None:
    env = make_env(marker=f"{PREFIX}/lib/python3.11/EXTERNALLY-MANAGED")
    decision = run(["install", "x"], env)
    assert "--break-system-packages" in decision.pip_args
    old = replace(env, pip_version="22.3.1")
    assert "--break-system-packages" not in run(["install", "x"], old).pip_args


def test_python_option_is_not_passed_to_pip() -> None:
    decision = run(["--python", "/x/bin/python", "install", "x"])
    assert "--python" not in decision.pip_args
    assert decision.pip_args[0] == "install"


def test_read_only_commands_are_not_decided() -> None:
    assert run(["list"]).rule == rules.READ_ONLY_COMMAND


@pytest.mark.parametrize(
    ("value", "local"),
    [
        (".", True),
        ("./src", True),
        ("/abs/dir", True),
        ("~/proj", True),
        ("file:///x", True),
        ("requests", False),
        ("requests==2.0", False),
        ("git+https://github.com/a/b", False),
        ("https://example.org/x.tar.gz", False),
    ],
)
def test_is_local_path(value: str, local: bool) -> None:
    assert is_local_path(value) is local


def test_dev_install_needs_only_local_editables() -> None:
    parse = parse_pip_command_line
    assert is_dev_install(parse(["install", "-e", "."], {}, None))
    assert not is_dev_install(parse(["install", "-e", ".", "requests"], {}, None))
    assert not is_dev_install(parse(["install", "-e", ".", "-r", "r.txt"], {}, None))


def test_pass_through_fast_path_only_for_certainly_read_only_lines() -> None:
    from safe_pip.passthrough import leading_python, needs_parsing

    assert not needs_parsing(["list"])
    assert not needs_parsing(["-v", "show", "numpy"])
    assert needs_parsing(["install", "x"])
    assert needs_parsing(["-q", "uninstall", "x"])
    assert needs_parsing(["--pyth", "/x", "list"])
    assert leading_python(["--python", "/x/bin/python", "list"]) == ("/x/bin/python", ["list"])
    assert leading_python(["--python=/x", "freeze"]) == ("/x", ["freeze"])
    assert leading_python(["--python", "/x", "install", "y"]) is None
    assert leading_python(["--python", "--isolated", "list"]) is None


def test_destination_in_a_foreign_base_env_is_a_base_env_write() -> None:
    op = parse_pip_command_line(["install", "--prefix", "/opt/conda", "x"], {}, None)
    foreign = {"/opt/conda": EnvKind.CONDA_BASE}
    decision = decide(op, make_env(), default_policy(), foreign)
    assert decision.rule == rules.BASE_ENV
    op = parse_pip_command_line(
        ["install", "--target", "/usr/lib/python3/dist-packages", "x"], {}, None
    )
    decision = decide(
        op, make_env(), default_policy(), {"/usr/lib/python3/dist-packages": EnvKind.SYSTEM}
    )
    assert decision.rule == rules.SYSTEM_PYTHON
