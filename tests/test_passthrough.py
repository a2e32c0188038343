"""Read-only pip commands pass straight through to the target's pip."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.prefixes import Prefix
from support.run import Runner

pytestmark = pytest.mark.integration


@pytest.fixture
def env(prefix_factory: Callable[..., Prefix], wheelhouse: Path) -> Prefix:
    prefix = prefix_factory("conda-env")
    subprocess.run(
        [
            str(prefix.python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "demo-b",
        ],
        check=True,
        env={"PIP_CONFIG_FILE": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    return prefix


def path_env(prefix: Prefix, **extra: str) -> dict[str, str | None]:
    return {"PATH": f"{prefix.bin}:/usr/bin:/bin", **extra}


@pytest.mark.parametrize("user", [None, 65534], ids=["root", "nobody"])
def test_list_show_freeze_are_pips_own_output(
    run: Runner, safe_pip_bin: list[str], env: Prefix, user: int | None
) -> None:
    for args in (["list"], ["show", "demo-a"], ["freeze"], ["check"]):
        ours = run([*safe_pip_bin, *args], user=user, env=path_env(env))
        bare = run([str(env.python), "-m", "pip", *args], user=user, env=path_env(env))
        assert ours.returncode == bare.returncode == 0, ours.stderr
        assert ours.stdout == bare.stdout
    # under its own name, --version is safe-pip's, then the version line of the pip it runs
    ours = run([*safe_pip_bin, "--version"], user=user, env=path_env(env))
    bare = run([str(env.python), "-m", "pip", "--version"], user=user, env=path_env(env))
    assert ours.returncode == 0 and ours.stdout.startswith("safe-pip ")
    assert ours.stdout.splitlines()[1:] == bare.stdout.splitlines()
    listing = run([*safe_pip_bin, "list"], user=user, env=path_env(env)).stdout
    assert "demo-a" in listing and "demo-b" in listing


def test_exit_code_passes_through(run: Runner, safe_pip_bin: list[str], env: Prefix) -> None:
    missing = run([*safe_pip_bin, "show", "no-such-dist"], env=path_env(env))
    bare = run([str(env.python), "-m", "pip", "show", "no-such-dist"], env=path_env(env))
    assert missing.returncode == bare.returncode == 1
    unknown = run([*safe_pip_bin, "frobnicate"], env=path_env(env))
    assert (
        unknown.returncode
        == run([str(env.python), "-m", "pip", "frobnicate"], env=path_env(env)).returncode
    )


def test_python_option_and_pip_python_pick_the_target(
    run: Runner, safe_pip_bin: list[str], env: Prefix, prefix_factory: Callable[..., Prefix]
) -> None:
    other = prefix_factory("plain")
    on_other = path_env(other)
    assert (
        "demo-a" in run([*safe_pip_bin, "--python", str(env.python), "list"], env=on_other).stdout
    )
    assert "demo-a" in run([*safe_pip_bin, f"--python={env.path}", "list"], env=on_other).stdout
    assert (
        "demo-a"
        in run([*safe_pip_bin, "list"], env={**on_other, "PIP_PYTHON": str(env.python)}).stdout
    )
    assert "demo-a" not in run([*safe_pip_bin, "list"], env=on_other).stdout


def test_read_only_commands_work_with_a_broken_policy(
    run: Runner, safe_pip_bin: list[str], env: Prefix
) -> None:
    broken = "version = 1\n[install\nconda-env = 'allow'\n"
    listing = run([*safe_pip_bin, "list"], env=path_env(env), system_policy=broken)
    assert listing.returncode == 0 and "demo-a" in listing.stdout
    status = run([*safe_pip_bin, "status"], env=path_env(env), system_policy=broken)
    # status serves as the deploy check: an invalid policy in force is a failure
    assert status.returncode == 11
    assert "INVALID" in status.stdout and "/etc/safe-pip/policy.toml" in status.stdout
    assert "admin" in status.stdout


def test_an_invalid_policy_sends_users_to_the_admin(
    run: Runner, safe_pip_bin: list[str], env: Prefix
) -> None:
    broken = '[messages]\ncontact = "ask in #hub-help"\n[instal]\nvenv = "allow"\n'
    proc = run([*safe_pip_bin, "install", "x"], env=path_env(env), system_policy=broken)
    assert proc.returncode == 11
    assert "/etc/safe-pip/policy.toml:3" in proc.stderr and "'instal'" in proc.stderr
    assert "ask in #hub-help" in proc.stderr and "admin" in proc.stderr
    assert "docs/policy.md" not in proc.stderr and "edit" not in proc.stderr


def test_download_is_read_only_for_the_env(
    run: Runner, safe_pip_bin: list[str], env: Prefix, wheelhouse: Path, shared_tmp: Path
) -> None:
    dest = shared_tmp / "dl"
    proc = run(
        [
            *safe_pip_bin,
            "download",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "-d",
            str(dest),
            "six",
        ],
        env=path_env(env),
    )
    assert proc.returncode == 0, proc.stderr
    assert any(dest.glob("six-*.whl"))
    assert not any(env.site_packages.glob("six*"))
