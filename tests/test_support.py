"""The test infrastructure itself: prefixes, wheels, running as another user."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Callable

import pytest

from support.prefixes import (
    BasePython,
    Prefix,
    add_conda_package,
    conda_store_build_key,
    make_conda_store_env,
)
from support.run import UNPRIVILEGED_UID, Runner, install_setuptools
from support.wheels import build_wheel, make_project, record_hash

PrefixFactory = Callable[..., Prefix]
NO_INDEX = ("--no-index", "--find-links")
PRINT_PREFIXES = (
    "import json, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix]))"
)


def pip_install(prefix: Prefix, wheelhouse: Path, *requirements: str) -> list[str]:
    return prefix.pip("install", *NO_INDEX, str(wheelhouse), *requirements)


# -- wheels (no processes) ------------------------------------------------------


def test_built_wheel_has_a_consistent_record(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo-b", "1.0", requires=["demo-a>=1"])
    assert wheel.name == "demo_b-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("demo_b-1.0.dist-info/RECORD").decode()
        rows = list(csv.reader(io.StringIO(record)))
        assert {row[0] for row in rows} == names
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = zf.read(path)
            assert (digest, int(size)) == (record_hash(data), len(data))
        metadata = zf.read("demo_b-1.0.dist-info/METADATA").decode()
        assert "Name: demo-b\nVersion: 1.0\n" in metadata
        assert "Requires-Dist: demo-a>=1\n" in metadata
        assert zf.read("demo_b/__init__.py") == b'__version__ = "1.0"\n'


def test_project_tree_uses_setuptools_backend(tmp_path: Path) -> None:
    project = make_project(tmp_path, "demo-c", "0.1")
    pyproject = (project / "pyproject.toml").read_text()
    assert 'build-backend = "setuptools.build_meta"' in pyproject
    assert (project / "src" / "demo_c" / "__init__.py").read_text() == '__version__ = "0.1"\n'


# -- prefixes -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["plain", "conda-env", "conda-base"])
def test_prefix_is_its_own_non_venv_prefix(
    prefix_factory: PrefixFactory, run: Runner, kind: str
) -> None:
    prefix = prefix_factory(kind)
    done = run([prefix.python, "-c", PRINT_PREFIXES], user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(prefix.path)] * 3
    assert not (prefix.path / "pyvenv.cfg").exists()
    st = prefix.path.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o755)


@pytest.mark.integration
def test_base_copy_does_not_reach_into_root(base_python: BasePython) -> None:
    assert not str(base_python.root).startswith("/root")
    dynamic = subprocess.run(
        ["readelf", "-d", str(base_python.python)], check=True, capture_output=True, text=True
    ).stdout
    assert "$ORIGIN/../lib" in dynamic
    assert "/root" not in dynamic
    site_packages = sorted(p.name for p in base_python.site_packages.iterdir())
    assert site_packages == ["README.txt", "pip", f"pip-{base_python.pip_version}.dist-info"]


@pytest.mark.integration
def test_pip_runs_as_unprivileged_user(prefix_factory: PrefixFactory, run: Runner) -> None:
    prefix = prefix_factory("conda-env")
    done = run(prefix.pip("--version"), user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stderr
    assert f"from {prefix.site_packages}/pip " in done.stdout
    assert run([prefix.bin / "pip", "--version"], user=UNPRIVILEGED_UID).returncode == 0


@pytest.mark.integration
def test_root_installs_wheel_into_root_owned_prefix(
    prefix_factory: PrefixFactory, run: Runner, wheelhouse: Path
) -> None:
    prefix = prefix_factory("plain")
    done = run(pip_install(prefix, wheelhouse, "demo-b"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (prefix.site_packages / "demo_b-1.0.dist-info").is_dir()
    assert (prefix.site_packages / "demo_a-2.0.dist-info").is_dir()
    shown = run([prefix.python, "-c", "import demo_a; print(demo_a.__file__, demo_a.__version__)"])
    assert shown.stdout.split() == [str(prefix.site_packages / "demo_a" / "__init__.py"), "2.0"]


@pytest.mark.integration
def test_unprivileged_user_installs_into_own_prefix(
    prefix_factory: PrefixFactory, run: Runner, wheelhouse: Path
) -> None:
    prefix = prefix_factory("conda-env", writable_by=UNPRIVILEGED_UID)
    done = run(pip_install(prefix, wheelhouse, "demo-a==1.0", "six"), user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = prefix.site_packages / "demo_a-1.0.dist-info"
    assert installed.stat().st_uid == UNPRIVILEGED_UID
    assert (prefix.site_packages / "six.py").is_file()
    upgrade = run(pip_install(prefix, wheelhouse, "--upgrade", "demo-a"), user=UNPRIVILEGED_UID)
    assert upgrade.returncode == 0, upgrade.stderr
    assert not installed.exists()
    assert (prefix.site_packages / "demo_a-2.0.dist-info").is_dir()


@pytest.mark.integration
def test_unprivileged_pip_falls_back_to_user_site_in_read_only_prefix(
    prefix_factory: PrefixFactory, run: Runner, wheelhouse: Path
) -> None:
    """The case safe-pip exists for: pip quietly installs into ~/.local instead."""
    prefix = prefix_factory("conda-env")
    done = run(pip_install(prefix, wheelhouse, "demo-a"), user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stderr
    assert "Defaulting to user installation" in done.stdout
    home = run.home(UNPRIVILEGED_UID)
    assert (home / ".local/lib/python3.11/site-packages/demo_a-2.0.dist-info").is_dir()
    assert not (prefix.site_packages / "demo_a-2.0.dist-info").exists()


@pytest.mark.integration
def test_pip_refuses_externally_managed_prefix(
    prefix_factory: PrefixFactory, run: Runner, wheelhouse: Path
) -> None:
    prefix = prefix_factory("plain", marker=True)
    assert prefix.marker.read_text().startswith("[externally-managed]\nError=")
    done = run(pip_install(prefix, wheelhouse, "demo-a"))
    assert done.returncode != 0
    assert "externally-managed-environment" in done.stderr
    assert "managed by the hub administrators" in done.stderr
    assert not list(prefix.site_packages.glob("demo_a*"))


@pytest.mark.integration
def test_pip_in_one_prefix_is_independent_of_others(
    prefix_factory: PrefixFactory, run: Runner
) -> None:
    first, second = prefix_factory("plain"), prefix_factory("plain")
    assert first.path != second.path
    done = run(first.pip("uninstall", "--yes", "pip"))
    assert done.returncode == 0, done.stderr
    assert not (first.site_packages / "pip").exists()
    assert run(second.pip("--version")).returncode == 0
    assert (second.base.site_packages / "pip" / "__init__.py").is_file()


@pytest.mark.integration
def test_conda_env_records(prefix_factory: PrefixFactory, run: Runner) -> None:
    prefix = prefix_factory("conda-env", frozen=True)
    history = (prefix.conda_meta / "history").read_text()
    assert re.match(
        r"==> 2026-\d\d-\d\d \d\d:\d\d:\d\d <==\n# cmd: .*conda create .*python=3.11 pip\n", history
    )
    assert "# conda version: 24." in history
    assert "+conda-forge/linux-64::python-3.11." in history
    assert history.rstrip().endswith("# update specs: ['python=3.11', 'pip']")
    assert (prefix.conda_meta / "frozen").read_text() == ""

    [pip_json] = prefix.conda_meta.glob("pip-*.json")
    pip_record = json.loads(pip_json.read_text())
    pip_version = prefix.base.pip_version
    assert pip_record["channel"] == "https://conda.anaconda.org/conda-forge/noarch"
    assert pip_record["package_type"] == "noarch_python"
    assert f"lib/python3.11/site-packages/pip-{pip_version}.dist-info/RECORD" in pip_record["files"]
    assert "bin/pip" in pip_record["files"]
    installer = prefix.site_packages / f"pip-{pip_version}.dist-info" / "INSTALLER"
    assert installer.read_bytes() == b"conda"
    [python_json] = prefix.conda_meta.glob("python-3.11.*.json")
    assert "bin/python3.11" in json.loads(python_json.read_text())["files"]

    dist_info = add_conda_package(prefix, "demo-conda", "1.2")
    assert (dist_info / "INSTALLER").read_bytes() == b"conda"
    record = json.loads((prefix.conda_meta / "demo-conda-1.2-pyhd8ed1ab_0.json").read_text())
    assert "lib/python3.11/site-packages/demo_conda-1.2.dist-info/RECORD" in record["files"]
    assert record["url"] == (
        "https://conda.anaconda.org/conda-forge/noarch/demo-conda-1.2-pyhd8ed1ab_0.conda"
    )
    assert "# update specs: ['demo-conda=1.2']" in (prefix.conda_meta / "history").read_text()
    listed = run(prefix.pip("list", "--format=json"))
    assert {"name": "demo-conda", "version": "1.2"} in json.loads(listed.stdout)


@pytest.mark.integration
def test_conda_base_layout(prefix_factory: PrefixFactory, run: Runner) -> None:
    base = prefix_factory("conda-base")
    for sub in ("condabin/conda", "bin/conda", "envs", "pkgs", "conda-meta/history"):
        assert (base.path / sub).exists(), sub
    assert (
        (base.conda_meta / "history").read_text().splitlines()[1].startswith("# cmd: constructor ")
    )
    done = run([base.path / "condabin" / "conda", "--version"], user=UNPRIVILEGED_UID)
    assert done.stdout.strip() == "conda 24.11.3"
    env = prefix_factory("conda-env", "analysis", root=base.path / "envs")
    assert (
        f"# cmd: {base.path}/bin/conda create -n analysis "
        in (env.conda_meta / "history").read_text()
    )
    for prefix in (base, env):
        [python_json] = prefix.conda_meta.glob("python-3.11.*.json")
        record = json.loads(python_json.read_text())
        assert record["extracted_package_dir"].startswith(f"{base.path}/pkgs/python-3.11.")


@pytest.mark.integration
def test_conda_store_env(shared_tmp: Path, run: Runner) -> None:
    env = make_conda_store_env(shared_tmp / "home-conda", "alice", "data-science")
    assert env.link == shared_tmp / "home-conda" / "alice" / "envs" / "data-science"
    assert env.link.resolve() == env.prefix.path
    assert re.fullmatch(r"[0-9a-f]{8}-\d{10}-1-data-science", env.prefix.path.name)
    done = run([env.link / "bin" / "python", "-c", PRINT_PREFIXES], user=UNPRIVILEGED_UID)
    # Run through the link, the prefix is the link path: getpath does not resolve it.
    assert json.loads(done.stdout)[0] == str(env.link)


def test_conda_store_legacy_build_key() -> None:
    when = datetime.datetime(2026, 1, 12, 9, 30, 5, 123456)
    legacy = conda_store_build_key("ab" * 32, when, 7, "x", version=1)
    assert legacy == "ab" * 32 + "-20260112-093005-123456-7-x"


@pytest.mark.integration
def test_editable_install_with_setuptools(
    prefix_factory: PrefixFactory, run: Runner, shared_tmp: Path
) -> None:
    prefix = prefix_factory("plain", writable_by=UNPRIVILEGED_UID)
    install_setuptools(prefix)
    project = make_project(shared_tmp / "src", "demo-dev", "0.3", owner=UNPRIVILEGED_UID)
    done = run(
        prefix.pip("install", "--no-index", "--no-build-isolation", "-e", str(project)),
        user=UNPRIVILEGED_UID,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = run(
        [prefix.python, "-c", "import demo_dev; print(demo_dev.__file__)"], user=UNPRIVILEGED_UID
    )
    assert shown.stdout.strip() == str(project / "src" / "demo_dev" / "__init__.py")


# -- running ----------------------------------------------------------------------


@pytest.mark.integration
def test_run_uses_a_clean_environment(run: Runner) -> None:
    done = run(["env"], user=UNPRIVILEGED_UID, env={"EXTRA": "1", "LANG": None})
    env = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert env["HOME"] == str(run.home(UNPRIVILEGED_UID))
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["EXTRA"] == "1"
    assert "LANG" not in env
    assert not [key for key in env if key.startswith("PIP_") and key not in _OWN_PIP_VARS]
    ids = run(["id", "-u"], user=UNPRIVILEGED_UID)
    assert ids.stdout.strip() == str(UNPRIVILEGED_UID)
    assert run.home(UNPRIVILEGED_UID).stat().st_uid == UNPRIVILEGED_UID


_OWN_PIP_VARS = {"PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK"}


@pytest.mark.integration
def test_system_policy_is_visible_only_to_that_process(run: Runner) -> None:
    policy = '[rules]\nbase-env = "deny"\n'
    inside = run(["cat", "/etc/safe-pip/policy.toml"], user=UNPRIVILEGED_UID, system_policy=policy)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == policy
    assert not Path("/etc/safe-pip/policy.toml").exists()
    outside = run(["cat", "/etc/safe-pip/policy.toml"])
    assert outside.returncode != 0


@pytest.mark.integration
def test_host_pip_config_never_leaks(
    prefix_factory: PrefixFactory, run: Runner, shared_tmp: Path
) -> None:
    prefix = prefix_factory("plain")
    own = shared_tmp / "own-pip.conf"
    own.write_text("[install]\nuser = true\n")
    own.chmod(0o644)
    listed = run(prefix.pip("config", "list"), env={"PIP_CONFIG_FILE": str(own)})
    assert listed.returncode == 0, listed.stderr
    assert from_files(listed.stdout) == ["install.user='true'"]  # no global.cert from the host
    with_global = run(
        prefix.pip("config", "list"),
        env={"PIP_CONFIG_FILE": str(own)},
        pip_conf="[global]\nno-index = true\n",
        user=UNPRIVILEGED_UID,
    )
    assert from_files(with_global.stdout) == ["global.no-index='true'", "install.user='true'"]
    assert from_files(run(prefix.pip("config", "list")).stdout) == []


def from_files(config_list: str) -> list[str]:
    """`pip config list` lines that come from files, not from PIP_* variables."""
    return sorted(line for line in config_list.splitlines() if not line.startswith(":env:"))


@pytest.mark.integration
def test_safe_pip_bin_is_usable_by_unprivileged_user(safe_pip_bin: list[str], run: Runner) -> None:
    python = Path(safe_pip_bin[0]).parent / "python"
    done = run(
        [python, "-c", "import safe_pip, packaging, filelock; print(safe_pip.__file__)"],
        user=UNPRIVILEGED_UID,
    )
    assert done.returncode == 0, done.stderr
    imported = Path(done.stdout.strip())
    # the live source (.pth) or, for a checkout in a private dir, a copy of it
    assert imported.name == "__init__.py" and imported.parent.name == "safe_pip"
    checkout = Path(__file__).resolve().parents[1] / "src" / "safe_pip" / "__init__.py"
    assert imported.read_bytes() == checkout.read_bytes()
    assert Path(safe_pip_bin[0]).read_text().startswith(f"#!{python}\n")
