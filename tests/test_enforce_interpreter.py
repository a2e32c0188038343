"""One view of the interpreter (issue 8, "Why" 5, 6, 7 and 8): the real safe-pip, the
real pip, real prefixes, as root and as an unprivileged user.  Several routes share
one prefix to keep the suite cheap; every assertion is about what is on disk."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.auditlog import operations_in
from support.prefixes import Prefix, add_conda_package
from support.run import Runner

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
USAGE = 12


def audit_records(prefix: Prefix) -> list[dict[str, Any]]:
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


def has_dist(site: Path, name: str) -> bool:
    return any(site.glob(f"{name}-*.dist-info"))


def plant_pip(directory: Path, witness: Path) -> None:
    """A fake `pip` package in `directory` that leaves `witness` behind when imported."""
    package = directory / "pip"
    package.mkdir(parents=True)
    code = f"open({str(witness)!r}, 'w').write('ran')\n"
    (package / "__init__.py").write_text(code)
    (package / "__main__.py").write_text(code)
    directory.chmod(0o777)
    package.chmod(0o755)


@pytest.fixture(params=[None, NOBODY], ids=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


def test_pip_never_imports_from_the_working_directory(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
    user: int | None,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=user)
    planted = shared_tmp / "planted"
    witness = shared_tmp / "witness"
    plant_pip(planted, witness)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}

    listed = run([*safe_pip_bin, "list"], user=user, env=env, cwd=planted)
    assert listed.returncode == 0, listed.stderr
    assert "pip" in listed.stdout
    wheel = run([*safe_pip_bin, "download", "--help"], user=user, env=env, cwd=planted)
    assert wheel.returncode == 0
    done = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        user=user,
        env=env,
        cwd=planted,
    )
    assert done.returncode == 0, done.stderr
    assert has_dist(prefix.site_packages, "demo_a")
    removed = run([*safe_pip_bin, "uninstall", "-y", "demo-a"], user=user, env=env, cwd=planted)
    assert removed.returncode == 0, removed.stderr
    assert not witness.exists(), "pip was imported from the working directory"

    # PYTHONPATH with an empty entry means the working directory too: not for pip
    env_with_path = {**env, "PYTHONPATH": f":{planted}"}
    listed = run([*safe_pip_bin, "list"], user=user, env=env_with_path, cwd=planted)
    assert listed.returncode == 0, listed.stderr
    assert not witness.exists()


def test_pythonhome_cannot_move_an_install_into_another_env(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    user: int | None,
) -> None:
    base = prefix_factory("conda-base")
    prefix = prefix_factory("conda-env", writable_by=user)
    before = sorted(p.name for p in base.site_packages.iterdir())
    env = {
        "PATH": f"{prefix.bin}:/usr/bin:/bin",
        "PYTHONHOME": str(base.path),
        "PYTHONUSERBASE": str(base.path),
    }
    done = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        user=user,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert has_dist(prefix.site_packages, "demo_a")
    assert sorted(p.name for p in base.site_packages.iterdir()) == before


def test_an_empty_pyvenv_cfg_does_not_turn_conda_protection_off(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    add_conda_package(prefix, "six", "1.16.0")
    (prefix.path / "pyvenv.cfg").write_text("")
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    status = run([*safe_pip_bin, "status", "--json"], user=NOBODY, env=env)
    assert json.loads(status.stdout)["env"]["kind"] == "conda-env", status.stdout
    done = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "six==1.17.0"],
        user=NOBODY,
        env=env,
    )
    assert done.returncode == DENIED, done.stderr
    assert "conda-owned" in done.stderr
    assert [p.name for p in prefix.site_packages.glob("six-*.dist-info")] == [
        "six-1.16.0.dist-info"
    ]


def test_small_routes_stdin_unknown_options_and_a_deleted_directory(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    pip = [*safe_pip_bin]
    links = ["--no-index", "--find-links", str(wheelhouse)]
    assert run([*pip, "install", *links, "demo-a", "demo-b"], user=NOBODY, env=env).returncode == 0

    # -r /dev/stdin reaches pip untouched, and the record names what pip removed
    # (the pipe is made by the user's own shell: a pipe of root's cannot be reopened)
    piped = 'echo demo-b | exec "$@" uninstall -y -r /dev/stdin'
    done = run(["sh", "-c", piped, "sh", *pip], user=NOBODY, env=env)
    assert done.returncode == 0, done.stderr
    assert not has_dist(prefix.site_packages, "demo_b")
    assert has_dist(prefix.site_packages, "demo_a")

    # an unknown or ambiguous option is refused, and the refusal is recorded
    count = len(audit_records(prefix))
    for argv in (["install", "--no-such-option", "x"], ["install", "--us", "x"]):
        refused = run([*pip, *argv], user=NOBODY, env=env)
        assert refused.returncode == USAGE, refused.stderr
    records = audit_records(prefix)[count:]
    assert [r["rule"] for r in records] == ["unknown-option", "unknown-option"]
    assert all(r["decision"] == "denied" for r in records)

    # pip wheel with --src in the user base: refused before pip checks anything out, recorded
    home = run.home(NOBODY)
    src = home / ".local" / "lib" / "python3.11" / "site-packages"
    vcs = "git+https://example.invalid/x.git#egg=x"
    checkout = run([*pip, "wheel", "-e", vcs, "--src", str(src)], user=NOBODY, env=env)
    assert checkout.returncode == 10 and "rule:    user-site" in checkout.stderr
    assert not (home / ".local" / "lib").exists()
    (last,) = audit_records(prefix)[count + 2 :]
    assert (last["decision"], last["rule"], last["command"]) == ("denied", "user-site", "wheel")

    # a working directory that was removed: a message, no traceback
    parent = shared_tmp / "scratch"
    parent.mkdir()
    parent.chmod(0o777)
    gone = parent / "gone"
    script = f'mkdir {gone} && cd {gone} && rmdir {gone} && exec "$@"'
    as_nobody = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
    result = subprocess.run(
        [*as_nobody, "sh", "-c", script, "sh", *pip, "install", *links, "demo-a"],
        env={"PATH": f"{prefix.bin}:/usr/bin:/bin", "HOME": str(shared_tmp)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Traceback" not in result.stderr
    assert result.returncode == USAGE, result.stderr
    assert "current directory" in result.stderr


def test_a_log_file_another_user_created_first_is_not_trusted(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    shared = shared_tmp / "audit"
    shared.mkdir()
    shared.chmod(0o1777)
    policy = f'version = 1\n[audit]\nlocation = "{shared}/{{env_name}}.jsonl"\n'
    attacker = 4321
    planted = shared / f"{prefix.path.name}.jsonl"
    links = ["--no-index", "--find-links", str(wheelhouse)]
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    for mode, package in ((0o644, "demo-a"), (0o666, "demo-b")):
        planted.unlink(missing_ok=True)
        planted.write_text("")
        os.chown(planted, attacker, attacker)
        planted.chmod(mode)
        done = run(
            [*safe_pip_bin, "install", *links, "--no-deps", package],
            user=NOBODY,
            env=env,
            system_policy=policy,
        )
        assert done.returncode == 0, done.stderr
        assert "owned by another user" in done.stderr
        assert planted.read_text() == ""  # never written
        state = run.home(NOBODY) / ".local" / "state" / "safe-pip"
        records = [
            json.loads(line) for f in state.glob("*.jsonl") for line in f.read_text().splitlines()
        ]
        assert any(package in r["argv"] for r in records)


def test_pip_runs_with_the_configuration_safe_pip_read(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    """PIP_CONFIG_FILE=/dev/fd/3 is a file for safe-pip and gone for its pip child (pip's
    child does not inherit fd 3): what pip does shows which configuration it ran with."""
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    cfg = shared_tmp / "pip.conf"
    cfg.write_text("[install]\nno-deps = true\n")
    cfg.chmod(0o644)
    script = f'exec 3<{cfg}; exec "$@"'
    links = ["--no-index", "--find-links", str(wheelhouse)]
    done = run(
        ["sh", "-c", script, "sh", *safe_pip_bin, "install", *links, "demo-b"],
        user=NOBODY,
        pip_conf="",
        env={
            "PATH": f"{prefix.bin}:/usr/bin:/bin",
            "PIP_CONFIG_FILE": "/dev/fd/3",
            # the host's global pip.conf files are hidden (a device) by the test runner
            "XDG_CONFIG_DIRS": str(shared_tmp),
        },
    )
    assert done.returncode == 0, done.stderr
    assert list(prefix.site_packages.glob("demo_b-*.dist-info"))
    assert not list(prefix.site_packages.glob("demo_a-*.dist-info")), "pip re-read its config"
