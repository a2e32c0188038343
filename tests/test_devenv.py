"""`safe-pip devenv` end to end: an unprivileged user develops a package on a
root-owned conda env.  The dev package must be importable from the dev env's python
and from the registered kernel's argv, and from nowhere else; nothing lands in
~/.local/lib or in the env."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.prefixes import Prefix, make_conda_store_env
from support.run import Runner, install_setuptools
from support.wheels import make_project

pytestmark = pytest.mark.integration

NOBODY = 65534

FAKE_LAUNCHER = """\
import sys
# a stand-in for ipykernel's launcher: say which python runs the kernel and what it imports
import mypkg
print("kernel-python", sys.executable, "mypkg", mypkg.__version__, mypkg.__file__)
"""


def lay_fake_ipykernel(prefix: Prefix) -> None:
    (prefix.site_packages / "ipykernel").mkdir()
    (prefix.site_packages / "ipykernel" / "__init__.py").write_text('__version__ = "6.0"\n')
    (prefix.site_packages / "ipykernel_launcher.py").write_text(FAKE_LAUNCHER)


def local_lib(home: Path) -> list[Path]:
    return list((home / ".local" / "lib").rglob("*")) if (home / ".local").exists() else []


def site_listing(prefix: Prefix) -> list[str]:
    return sorted(p.name for p in prefix.site_packages.iterdir())


class Dev:
    def __init__(self, run: Runner, safe_pip: list[str], prefix: Prefix, project: Path) -> None:
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.project = project

    @property
    def home(self) -> Path:
        return self.run.home(NOBODY)

    def devenv(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            [*self.safe_pip, "devenv", *args],
            user=NOBODY,
            env={"PATH": f"{self.prefix.bin}:/usr/bin:/bin", **env},
            cwd=self.project,
        )

    def python(self, python: Path | str, code: str) -> subprocess.CompletedProcess[str]:
        return self.run([str(python), "-c", code], user=NOBODY, cwd=self.home)


@pytest.fixture
def shared_env(prefix_factory: Callable[..., Prefix]) -> Prefix:
    prefix = prefix_factory("conda-env")  # root-owned: read-only for nobody
    install_setuptools(prefix)
    return prefix


@pytest.fixture
def dev(run: Runner, safe_pip_bin: list[str], shared_env: Prefix, shared_tmp: Path) -> Dev:
    project = make_project(shared_tmp / "work", "mypkg", "0.1", owner=NOBODY)
    return Dev(run, safe_pip_bin, shared_env, project)


def test_plain_pip_install_e_is_refused_and_devenv_works(dev: Dev) -> None:
    lay_fake_ipykernel(dev.prefix)
    before = site_listing(dev.prefix)
    refused = dev.run(
        [*dev.safe_pip, "install", "--no-build-isolation", "-e", "."],
        user=NOBODY,
        env={"PATH": f"{dev.prefix.bin}:/usr/bin:/bin"},
        cwd=dev.project,
    )
    assert refused.returncode == 10, refused.stderr
    assert "safe-pip devenv ." in refused.stderr

    proc = dev.devenv(".")
    assert proc.returncode == 0, proc.stderr
    devenv = dev.project / ".venv-env"
    python = devenv / "bin" / "python"
    assert f"dev env:  {devenv}" in proc.stdout

    # the dev package: importable in the dev env, editable (a change shows at once)
    check = dev.python(python, "import mypkg; print(mypkg.__file__)")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == str(dev.project / "src" / "mypkg" / "__init__.py")
    # ... it sees the env's packages (setuptools is the env's)
    check = dev.python(python, "import setuptools; print(setuptools.__file__)")
    assert check.stdout.startswith(str(dev.prefix.site_packages)), check.stderr
    # ... and not in the env itself
    check = dev.python(dev.prefix.python, "import mypkg")
    assert check.returncode != 0
    assert "No module named 'mypkg'" in check.stderr

    # the kernel: registered in the user's Jupyter data dir, running the dev env's python
    kernel_dir = dev.home / ".local" / "share" / "jupyter" / "kernels" / "mypkg-dev"
    spec = json.loads((kernel_dir / "kernel.json").read_text())
    assert spec["argv"][0] == str(python)
    assert spec["argv"][1:3] == ["-m", "ipykernel_launcher"]
    assert spec["display_name"] == "mypkg-dev (dev on env)"
    argv = [a.replace("{connection_file}", "/dev/null") for a in spec["argv"]]
    kernel = dev.run(argv, user=NOBODY, cwd=dev.home)
    assert kernel.returncode == 0, kernel.stderr
    assert f"kernel-python {python} mypkg 0.1" in kernel.stdout

    # nothing in ~/.local/lib, nothing new in the env
    assert local_lib(dev.home) == []
    assert site_listing(dev.prefix) == before
    # the dev env's own content: the editable project only
    own = sorted(
        p.name
        for p in (devenv / "lib" / "python3.11" / "site-packages").iterdir()
        if p.name != "__pycache__"
    )
    assert [n for n in own if n.endswith(".dist-info")] == ["mypkg-0.1.dist-info"]
    # the install went through safe-pip: decided and recorded in the dev env's log
    log = devenv / "var" / "log" / "safe-pip" / "audit.jsonl"
    record = json.loads(log.read_text().splitlines()[-1])
    assert record["decision"] == "allowed" and record["rule"] == "dev-install"
    assert [i["name"] for i in record["changes"]["installed"]] == ["mypkg"]


def test_no_ipykernel_no_kernel_and_remove(dev: Dev) -> None:
    proc = dev.devenv(".")
    assert proc.returncode == 0, proc.stderr
    assert "not registered (the env has no ipykernel)" in proc.stdout
    assert not (dev.home / ".local" / "share" / "jupyter").exists()
    # a second run updates the same dev env
    proc = dev.devenv(".")
    assert proc.returncode == 0, proc.stderr
    assert "updating the dev env" in proc.stdout
    proc = dev.devenv("--remove")
    assert proc.returncode == 0, proc.stderr
    assert not (dev.project / ".venv-env").exists()


def test_kernel_in_jupyter_data_dir_and_removal(dev: Dev, shared_tmp: Path) -> None:
    lay_fake_ipykernel(dev.prefix)
    data = dev.home / "jupyter-data"
    target = shared_tmp / "devenvs" / "mine"
    (shared_tmp / "devenvs").mkdir()
    (shared_tmp / "devenvs").chmod(0o777)
    proc = dev.devenv(".", "--dir", str(target), "--name", "My Pkg", JUPYTER_DATA_DIR=str(data))
    assert proc.returncode == 0, proc.stderr
    kernel = data / "kernels" / "my-pkg" / "kernel.json"
    assert json.loads(kernel.read_text())["argv"][0] == str(target / "bin" / "python")
    proc = dev.devenv("--remove", "--dir", str(target), JUPYTER_DATA_DIR=str(data))
    assert proc.returncode == 0, proc.stderr
    assert not target.exists() and not kernel.parent.exists()


def test_refuses_what_is_not_a_dev_env_or_a_project(dev: Dev, shared_tmp: Path) -> None:
    other = shared_tmp / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    other.chmod(0o777)
    proc = dev.devenv(".", "--dir", str(other))
    assert proc.returncode != 0
    assert "is not a safe-pip dev env" in proc.stderr
    proc = dev.devenv("--remove", "--dir", str(other))
    assert proc.returncode != 0
    assert (other / "keep.txt").exists()
    proc = dev.devenv(str(shared_tmp))
    assert proc.returncode != 0
    assert "is not a Python project" in proc.stderr


def test_on_a_conda_store_env(run: Runner, safe_pip_bin: list[str], shared_tmp: Path) -> None:
    store = make_conda_store_env(shared_tmp / "store", "analytics", "analysis")
    install_setuptools(store.prefix)
    project = make_project(shared_tmp / "work", "mypkg", "0.1", owner=NOBODY)
    proc = run(
        [*safe_pip_bin, "devenv", "--no-kernel", str(project)],
        user=NOBODY,
        env={"PATH": f"{store.link}/bin:/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    devenv = project / ".venv-analysis"
    check = run([str(devenv / "bin" / "python"), "-c", "import mypkg"], user=NOBODY)
    assert check.returncode == 0, check.stderr
    # layered on the env's stable name, so a rebuilt env is picked up
    assert f"home = {store.link}/bin" in (devenv / "pyvenv.cfg").read_text()
    assert local_lib(run.home(NOBODY)) == []
