"""Decide on pip's own plan (issue 8, "Why" 3, 4 and 7): uninstalls are checked on the
distributions and files pip resolved to remove, installs on the files each planned
wheel writes.  The real safe-pip, the real pip, a conda env with conda's six and a
conda package without a dist-info; what is on disk afterwards is the assertion."""

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
from support.run import Runner, install_setuptools, pip_wheel_dir
from support.wheels import build_wheel, make_project

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
SIX_CONDA = '__version__ = "1.16.0"\n'


def audit_records(prefix: Prefix) -> list[dict[str, Any]]:
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


def removed(prefix: Prefix) -> list[str]:
    """The normalised names the last record says were removed."""
    items = audit_records(prefix)[-1]["changes"]["removed"]
    return [item["name"].replace("_", "-").lower() for item in items]


def add_conda_package_without_dist_info(prefix: Prefix, name: str, module: str) -> Path:
    """A conda package that installs `<module>/__init__.py` and no dist-info at all."""
    site = prefix.site_packages
    (site / module).mkdir()
    init = site / module / "__init__.py"
    init.write_text("CONDA = True\n")
    rel = f"lib/python{prefix.python_version}/site-packages/{module}/__init__.py"
    record = {
        "name": name,
        "version": "1.0",
        "build": "h0_0",
        "build_number": 0,
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "subdir": "linux-64",
        "depends": [],
        "files": [rel],
        "paths_data": {"paths": [{"_path": rel, "path_type": "hardlink"}], "paths_version": 1},
    }
    (prefix.conda_meta / f"{name}-1.0-h0_0.json").write_text(json.dumps(record, indent=2))
    owner = prefix.path.stat()
    for path in (site / module, init, prefix.conda_meta / f"{name}-1.0-h0_0.json"):
        os.chown(path, owner.st_uid, owner.st_gid)
    return init


@pytest.fixture(scope="session")
def plan_wheels(shared_session_tmp: Path) -> Path:
    """six-fork (ships six/__init__.py), lonely-pip (ships lonely/__init__.py)."""
    house = shared_session_tmp / "plan-wheels"
    build_wheel(house, "six-fork", "1.0", files={"six/__init__.py": "FORK = True\n"})
    build_wheel(house, "lonely-pip", "1.0", files={"lonely/__init__.py": "PIP = True\n"})
    build_wheel(
        house,
        "python-shadow",
        "1.0",
        entry_points={"python": "shadow:main"},
        files={"shadow.py": "def main():\n    pass\n"},
    )
    os.chmod(house, 0o755)
    return house


class Env:
    def __init__(self, run: Runner, safe_pip: list[str], prefix: Prefix, links: list[Path]):
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.links = links
        self.dir = run.home(NOBODY)

    def pip(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.safe_pip, *args]
        if args and args[0] == "install":
            argv += ["--no-index"] + [x for link in self.links for x in ("--find-links", str(link))]
        full = {"PATH": f"{self.prefix.bin}:/usr/bin:/bin", **(env or {})}
        return self.run(argv, user=NOBODY, env=full, cwd=self.dir)

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        os.chmod(path, 0o644)
        return path

    @property
    def six_init(self) -> Path:
        return self.prefix.site_packages / "six" / "__init__.py"

    def six_is_condas(self) -> bool:
        site = self.prefix.site_packages
        return [p.name for p in site.glob("six-*.dist-info")] == [
            "six-1.16.0.dist-info"
        ] and self.six_init.read_text() == SIX_CONDA


def conda_env(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    links: list[Path],
    **options: Any,
) -> Env:
    prefix = prefix_factory("conda-env", writable_by=NOBODY, **options)
    add_conda_package(prefix, "six", "1.16.0")
    env = Env(run, safe_pip_bin, prefix, links)
    env.dir.mkdir(parents=True, exist_ok=True)
    os.chown(env.dir, NOBODY, NOBODY)
    return env


def test_uninstall_is_decided_on_pips_own_plan(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    env = conda_env(run, safe_pip_bin, prefix_factory, [wheelhouse])
    six_wheel = next(wheelhouse.glob("six-1.17.0-*.whl"))
    env.write("inner.txt", "six\n")
    env.write("outer.txt", "-r inner.txt\n")
    env.write("var.txt", "${PKG}\n")
    env.write("cont.txt", "si\\\nx\n")
    routes: list[tuple[list[str], dict[str, str]]] = [
        (["-r", "outer.txt"], {}),
        ([], {"PIP_REQUIREMENT": str(env.dir / "inner.txt")}),
        (["-r", "var.txt"], {"PKG": "six"}),
        (["-r", "cont.txt"], {}),
        ([str(six_wheel)], {}),
        ([f"file://{six_wheel}#egg=six"], {}),
    ]
    for args, extra in routes:
        count = len(audit_records(env.prefix))
        done = env.pip("uninstall", "-y", *args, env=extra)
        assert done.returncode == DENIED, (args, extra, done.stdout, done.stderr)
        assert "conda-owned" in done.stderr
        assert env.six_is_condas(), (args, extra)
        (record,) = audit_records(env.prefix)[count:]
        assert record["rule"] == "conda-owned"
        assert record["changes"]["removed"] == []

    # what pip read itself is also what the record says it removed
    assert env.pip("install", "demo-a", "demo-b").returncode == 0
    env.write("inner.txt", "demo-b\n")
    done = env.pip("uninstall", "-y", "-r", "outer.txt")
    assert done.returncode == 0, done.stderr
    assert not list(env.prefix.site_packages.glob("demo_b-*.dist-info"))
    assert removed(env.prefix) == ["demo-b"]

    # -r /dev/stdin is left to pip, and checked on its plan
    piped = 'echo six | exec "$@" uninstall -y -r /dev/stdin'
    done = run(
        ["sh", "-c", piped, "sh", *safe_pip_bin],
        user=NOBODY,
        env={"PATH": f"{env.prefix.bin}:/usr/bin:/bin"},
    )
    assert done.returncode == DENIED, done.stderr
    assert env.six_is_condas()
    piped = 'echo demo-a | exec "$@" uninstall -y -r /dev/stdin'
    done = run(
        ["sh", "-c", piped, "sh", *safe_pip_bin],
        user=NOBODY,
        env={"PATH": f"{env.prefix.bin}:/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert removed(env.prefix) == ["demo-a"]


def test_files_are_owned_not_only_names(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    plan_wheels: Path,
) -> None:
    env = conda_env(run, safe_pip_bin, prefix_factory, [wheelhouse, plan_wheels])
    lonely = add_conda_package_without_dist_info(env.prefix, "lonely", "lonely")
    python = env.prefix.bin / "python"
    python_bytes = python.read_bytes()

    for name, owner, path in (
        ("six-fork", "six 1.16.0 (conda", "six/__init__.py"),
        ("lonely-pip", "lonely 1.0 (conda", "lonely/__init__.py"),
    ):
        done = env.pip("install", name)
        assert done.returncode == DENIED, (name, done.stdout, done.stderr)
        assert owner in done.stderr and name in done.stderr and path in done.stderr
        assert audit_records(env.prefix)[-1]["rule"] == "conda-owned"
    assert env.six_is_condas()
    assert lonely.read_text() == "CONDA = True\n"
    assert not list(env.prefix.site_packages.glob("six_fork-*"))

    # a console script named like conda's python
    done = env.pip("install", "python-shadow")
    assert done.returncode == DENIED, done.stderr
    assert python.read_bytes() == python_bytes

    # bare pip overwrote conda's files; uninstalling the fork would delete them
    bare = [
        str(env.prefix.python),
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(plan_wheels),
        "six-fork",
    ]
    assert run(bare, user=NOBODY, env={"PATH": "/usr/bin:/bin"}).returncode == 0
    done = env.pip("uninstall", "-y", "six-fork")
    assert done.returncode == DENIED, done.stderr
    assert "six/__init__.py" in done.stderr and "six-fork" in done.stderr
    assert env.six_init.exists()


def test_dev_only_uninstall_removes_dev_installs_only(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    env = conda_env(run, safe_pip_bin, prefix_factory, [wheelhouse])
    assert env.pip("install", "demo-a").returncode == 0
    env.write("list.txt", "demo-a\n")
    policy = 'version = 1\n[install]\nconda-env = "dev-only"\n'
    done = run(
        [*safe_pip_bin, "uninstall", "-y", "-r", "list.txt"],
        user=NOBODY,
        env={"PATH": f"{env.prefix.bin}:/usr/bin:/bin"},
        cwd=env.dir,
        system_policy=policy,
    )
    assert done.returncode == DENIED, (done.stdout, done.stderr)
    assert "dev-only" in done.stderr
    assert list(env.prefix.site_packages.glob("demo_a-*.dist-info"))

    # a dev install admits the local project, nothing resolved from an index
    install_setuptools(env.prefix)
    project = make_project(env.dir, "devpkg", "0.1", requires=["demo-b"], owner=NOBODY)
    dev = [*safe_pip_bin, "install", "--no-build-isolation", "--no-index", "--find-links",
           str(wheelhouse), "-e", str(project)]  # fmt: skip
    path = {"PATH": f"{env.prefix.bin}:/usr/bin:/bin"}
    done = run(dev, user=NOBODY, env=path, cwd=env.dir, system_policy=policy)
    assert done.returncode == DENIED, (done.stdout, done.stderr)
    assert "rule:    dev-only" in done.stderr and "--no-deps" in done.stderr
    assert not list(env.prefix.site_packages.glob("demo_b-*"))
    assert not list(env.prefix.site_packages.glob("devpkg-*"))
    done = run([*dev, "--no-deps"], user=NOBODY, env=path, cwd=env.dir, system_policy=policy)
    assert done.returncode == 0, done.stderr
    assert list(env.prefix.site_packages.glob("devpkg-*.dist-info"))
    assert not list(env.prefix.site_packages.glob("demo_b-*"))


# --- oldest and newest pip, Python 3.9 and 3.11 -------------------------------------------


@pytest.mark.parametrize(
    ("python_version", "pip_version"),
    [("3.9", "22.2"), ("3.11", "newest")],
    ids=["py3.9-pip22.2", "py3.11-pip-newest"],
)
def test_plan_checks_on_the_oldest_and_newest_pip(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    plan_wheels: Path,
    python_version: str,
    pip_version: str,
) -> None:
    env = conda_env(
        run, safe_pip_bin, prefix_factory, [wheelhouse, plan_wheels], python_version=python_version
    )
    wheels = pip_wheel_dir(pip_version)
    upgrade = [
        str(env.prefix.python),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        str(wheels),
        "--force-reinstall",
        "pip",
    ]
    done = run(upgrade, user=NOBODY, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    env.write("inner.txt", "six\n")
    env.write("outer.txt", "-r inner.txt\n")
    done = env.pip("uninstall", "-y", "-r", "outer.txt")
    assert done.returncode == DENIED, done.stderr
    done = env.pip("install", "six-fork")
    assert done.returncode == DENIED, done.stderr
    assert env.six_is_condas()
    assert env.pip("install", "demo-a").returncode == 0
    env.write("inner.txt", "demo-a\n")
    done = env.pip("uninstall", "-y", "-r", "outer.txt")
    assert done.returncode == 0, done.stderr
    assert removed(env.prefix) == ["demo-a"]
