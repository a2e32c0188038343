"""Builds that move files, and the verify-after check (issue 8, "Why" 1, 2 and 6): the
real safe-pip, the real pip and real setuptools builds on real prefixes.  The user
site must stay clean and other envs unchanged, whatever the build does."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.auditlog import operations_in
from support.prefixes import Prefix
from support.run import Runner, install_setuptools
from support.wheels import make_project

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10

#: an in-tree PEP 517 backend that builds a valid wheel and, while building, writes
#: the files named in ESCAPES (path -> text): what any build code could do
BACKEND = r"""
import base64, hashlib, os, zipfile

NAME, VERSION = {name!r}, "1.0"
ESCAPES = {escapes!r}

def _digest(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    for path, text in ESCAPES.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
    dist = NAME.replace("-", "_")
    info = "%s-%s.dist-info" % (dist, VERSION)
    members = {{
        dist + "/__init__.py": b"BUILT = True\n",
        info + "/METADATA": b"Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % NAME.encode(),
        info + "/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }}
    record = "".join("%s,%s,%d\n" % (k, _digest(v), len(v)) for k, v in members.items())
    record += info + "/RECORD,,\n"
    filename = "%s-%s-py3-none-any.whl" % (dist, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as wheel:
        for member, data in members.items():
            wheel.writestr(member, data)
        wheel.writestr(info + "/RECORD", record)
    return filename
"""


def backend_project(directory: Path, name: str, escapes: dict[str, str]) -> Path:
    project = directory / name
    project.mkdir(parents=True)
    (project / "backend.py").write_text(BACKEND.format(name=name, escapes=escapes))
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
    )
    for path in [project, *project.iterdir()]:
        os.chown(path, NOBODY, NOBODY)
    return project


def audit_records(prefix: Prefix) -> list[dict[str, Any]]:
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


def user_site_files(home: Path) -> list[Path]:
    """Files under ~/.local, less safe-pip's own audit fallback (XDG state dir)."""
    local = home / ".local"
    state = local / "state" / "safe-pip"
    if not local.exists():
        return []
    return [p for p in local.rglob("*") if p.is_file() and state not in p.parents]


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if "__pycache__" not in p.parts)


def test_build_routes_cannot_reach_the_user_site_or_other_envs(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    base = prefix_factory("conda-base")
    frozen = prefix_factory("conda-env", frozen=True)
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    install_setuptools(prefix)
    home = run.home(NOBODY)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, NOBODY, NOBODY)
    user_site = home / ".local" / "lib" / "python3.11" / "site-packages"
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    pip = [*safe_pip_bin, "install", "--no-build-isolation", "--no-index", "--find-links",
           str(wheelhouse)]  # fmt: skip
    work = shared_tmp / "work"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    project = make_project(work, "proj", "1.0", owner=NOBODY)
    base_before, frozen_before = tree(base.site_packages), tree(frozen.site_packages)

    # 1. build options that move files, decided before pip runs
    for target, rule in (
        (user_site, "user-site"),
        (base.site_packages, "base-env"),
        (frozen.site_packages, "frozen-env"),
    ):
        option = f"-C--build-option=build_py --build-lib {target}"
        done = run([*pip, str(project), option], user=NOBODY, env=env, cwd=work)
        assert done.returncode == DENIED, (target, done.stderr)
        assert f"rule:    {rule}" in done.stderr
    done = run([*pip, str(project), "--global-option", f"--prefix={user_site}"],
               user=NOBODY, env=env, cwd=work)  # fmt: skip
    assert done.returncode == DENIED, done.stderr

    # 2. ~/.pydistutils.cfg read by setuptools builds
    cfg = home / ".pydistutils.cfg"
    cfg.write_text(f"[build_py]\nbuild_lib = {user_site}\n")
    done = run([*pip, str(project)], user=NOBODY, env=env, cwd=work)
    assert done.returncode == DENIED, done.stderr
    assert ".pydistutils.cfg" in done.stderr
    cfg.write_text("[install]\nuser = 1\n")
    done = run([*pip, "demo-a"], user=NOBODY, env=env, cwd=work)
    assert done.returncode == DENIED and "rule:    user-site" in done.stderr, done.stderr
    cfg.unlink()

    # 3. what the build code itself does is verified after: removed, recorded, denied
    evil = user_site / "evil.pth"
    sneaky = backend_project(
        work,
        "sneaky",
        {str(evil): "import os\n", str(prefix.site_packages / "extra.py"): "X = 1\n"},
    )
    done = run([*pip, str(sneaky)], user=NOBODY, env=env, cwd=work)
    assert done.returncode == DENIED, (done.stdout, done.stderr)
    assert "rule:    escaped-write" in done.stderr, done.stderr
    assert str(home / ".local" / "lib") in done.stderr  # the tree the build created
    assert "extra.py" in done.stderr
    record = audit_records(prefix)[-1]
    assert record["rule"] == "escaped-write"
    escaped = {e["path"]: e for e in record["escaped"]}
    assert escaped[str(home / ".local" / "lib")]["removed"], escaped
    assert user_site_files(home) == []
    # in the env itself it is reported, not removed: another run may have made it
    assert escaped[str(prefix.site_packages / "extra.py")]["removed"] is False

    # as root, into the base env and a frozen env: an option, and root's ~/.pydistutils.cfg
    root_home = run.home(None)
    root_home.mkdir(parents=True, exist_ok=True)
    for target in (base.site_packages, frozen.site_packages):
        option = f"-C--build-option=build_py --build-lib {target}"
        done = run([*pip, str(project), option], env=env, cwd=work)
        assert done.returncode == DENIED, (target, done.stderr)
    (root_home / ".pydistutils.cfg").write_text(f"[install]\nprefix = {frozen.path}\n")
    done = run([*pip, "demo-a"], env=env, cwd=work)
    assert done.returncode == DENIED and "rule:    outside-env" in done.stderr, done.stderr
    (root_home / ".pydistutils.cfg").unlink()

    # nothing landed outside the env by any of these routes
    assert user_site_files(home) == []
    assert tree(base.site_packages) == base_before
    assert tree(frozen.site_packages) == frozen_before
    # and an ordinary build still works
    done = run([*pip, str(project)], user=NOBODY, env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    assert list(prefix.site_packages.glob("proj-1.0.dist-info"))


def test_distutils_config_in_the_working_directory_on_python_3_9(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=NOBODY, python_version="3.9")
    elsewhere = shared_tmp / "elsewhere"
    elsewhere.mkdir()
    os.chown(elsewhere, NOBODY, NOBODY)
    work = shared_tmp / "work"
    work.mkdir()
    (work / "setup.cfg").write_text(f"[install]\ninstall_lib = {elsewhere}\n")
    os.chown(work, NOBODY, NOBODY)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    bare = [str(prefix.python), "-m", "pip", "install", "--no-index", "--find-links",
            str(wheelhouse), "--no-deps", "demo-b"]  # fmt: skip
    # what bare pip 23.0 on Python 3.9 does with it: the route is real
    assert run(bare, user=NOBODY, env=env, cwd=work).returncode == 0
    assert list(elsewhere.glob("demo_b-*.dist-info"))
    done = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        user=NOBODY,
        env=env,
        cwd=work,
    )
    assert done.returncode == 0, done.stderr
    assert list(prefix.site_packages.glob("demo_a-*.dist-info"))
    assert not list(elsewhere.glob("demo_a-*"))
    assert not (run.home(NOBODY) / ".local").exists()


def test_verify_after_costs_nothing_when_nothing_escapes(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    """An upgrade and an uninstall in an env whose user site already has packages:
    nothing is reported (no false alarm from the user's own earlier files)."""
    prefix = prefix_factory("conda-env", writable_by=NOBODY)
    home = run.home(NOBODY)
    site = home / ".local" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "old.py").write_text("")
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(home)], check=True)
    env = {"PATH": f"{prefix.bin}:/usr/bin:/bin"}
    links = ["--no-index", "--find-links", str(wheelhouse)]
    for argv in (
        ["install", *links, "demo-a==1.0"],
        ["install", *links, "-U", "demo-a"],
        ["uninstall", "-y", "demo-a"],
    ):
        done = run([*safe_pip_bin, *argv], user=NOBODY, env=env)
        assert done.returncode == 0, (argv, done.stderr)
    assert (site / "old.py").exists()
    assert [r["rule"] for r in audit_records(prefix)] == ["allowed"] * 3
