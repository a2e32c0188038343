"""Notebooks on a hub, for real: nbclient (the server's env) runs cells as an
unprivileged user in an ipykernel of another env, both protected with
``safe-pip protect --shim``; ``~/.local`` already holds the package the user installs.

Every route a user types in a notebook either installs into the notebook's env
(recorded) or is refused with a message naming the envs and a command that works.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.jupyter import add_jupyter, execute_notebook, jupyter_site, register_kernel
from support.prefixes import BasePython, Prefix
from support.run import Runner

pytestmark = pytest.mark.integration

NOBODY = 65534
KERNEL = "analysis"


@pytest.fixture(scope="session")
def jupyter(base_python: BasePython) -> Path:
    return jupyter_site(base_python)


def user_site(home: Path) -> Path:
    return home / ".local" / "lib" / "python3.11" / "site-packages"


@pytest.fixture
def hub(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    jupyter: Path,
    wheelhouse: Path,
) -> Iterator[dict[str, Path | Prefix]]:
    """The server in a conda base (root-owned), the user's kernel env (theirs), both
    protected; demo-a 1.0 left in ~/.local from before; the kernel registered with
    PYTHONNOUSERSITE=1 as docs/deploy.md says."""
    server = prefix_factory("conda-base")
    kernel = prefix_factory("conda-env", name="analysis", writable_by=NOBODY)
    tools = prefix_factory("conda-env", name="tools", writable_by=NOBODY)
    for prefix in (server, kernel):
        add_jupyter(prefix, jupyter)
    old = run(
        kernel.pip("install", "--user", "--no-index", "--find-links", str(wheelhouse), "demo-a"),
        user=NOBODY,
    )
    assert old.returncode == 0, old.stderr
    for prefix in (server, kernel, tools):
        done = run([*safe_pip_bin, "protect", "--shim", "--python", str(prefix.python)])
        assert done.returncode == 0, done.stderr
    home = run.home(NOBODY)
    data = home / "jupyter-data"
    register_kernel(data, KERNEL, kernel, {"PYTHONNOUSERSITE": "1"})
    yield {"server": server, "kernel": kernel, "tools": tools, "home": home, "data": data}


def test_every_notebook_route_installs_into_the_notebook_env_or_says_what_works(
    run: Runner, hub: dict[str, Path | Prefix], wheelhouse: Path
) -> None:
    server, kernel, tools = hub["server"], hub["kernel"], hub["tools"]
    home, data = hub["home"], hub["data"]
    assert isinstance(server, Prefix) and isinstance(kernel, Prefix) and isinstance(tools, Prefix)
    assert isinstance(home, Path) and isinstance(data, Path)
    find = f"--no-index --find-links {wheelhouse}"
    before_user_site = sorted(p.name for p in user_site(home).iterdir())
    cells = [
        f"%pip install {find} demo-a",
        "print('exit', _exit_code)\nimport demo_a; print('from', demo_a.__file__)",
        f"%pip install --user {find} demo-b",
        "print('exit', _exit_code)",
        "%pip list",
        f"!pip install {find} demo-b",
        f"!{{sys.executable}} -m pip install {find} demo-b",
        f"%uv pip install {find} six",
        "!pip status",
        f"!{tools.bin / 'pip'} install {find} demo-b",
        "%pip status",
    ]
    out = execute_notebook(
        run,
        home / "work",
        server,
        KERNEL,
        ["import sys", *cells],
        user=NOBODY,
        env={
            "PATH": f"{server.bin}:/usr/bin:/bin",  # the server's env, as JupyterHub starts it
            "JUPYTER_PATH": str(data),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "IPYTHONDIR": str(home / "ipython"),
        },
    )[1:]
    installed, imported, user, user_exit, listed, bang, bare, uv, status, other, status_magic = out

    # %pip install: into the kernel's env, though ~/.local had it; recorded
    assert "already satisfied" not in installed, installed
    assert list(kernel.site_packages.glob("demo_a-*.dist-info")), installed
    assert "exit 0" in imported and f"from {kernel.site_packages}" in imported, imported
    # %pip install --user: refused by the policy, through the magic
    assert "rule:    user-site" in user and "refused: pip install --user" in user, user
    assert "exit 10" in user_exit
    assert "%pip status" in user  # the hint names a command that works in a notebook
    assert "chosen by %pip in the notebook" in user
    assert "`!pip` in this notebook is" in status_magic and "use `%pip`, not `!pip`" in status_magic
    assert "restart the kernel" in installed and "restart the kernel" not in user
    # %pip list: pip's own listing of the kernel's env
    assert "demo-a" in listed or "demo_a" in listed, listed
    # !pip with the server's env on PATH: refused, naming both envs and the %pip command
    assert "rule:    base-env" in bang, bang
    assert f"this notebook runs {kernel.path}" in bang and str(server.path) in bang, bang
    assert f"%pip install {find} demo-b" in bang, bang
    assert not list(server.site_packages.glob("demo_b*"))
    # !{sys.executable} -m pip: the marker names what works for this env
    assert "externally-managed-environment" in bare, bare
    assert "%pip install <package>" in bare and f"{kernel.bin / 'pip'} install" in bare, bare
    # %uv: through safe-pip's uv door, into the kernel's env, installed by uv
    six = kernel.site_packages / "six-1.17.0.dist-info"
    assert (six / "INSTALLER").read_text().strip() == "uv", uv
    assert "restart the kernel" in uv, uv
    # status from the kernel names the kernel's env
    assert f"this notebook's kernel runs {kernel.path}" in status, status
    # !<other env>/bin/pip: allowed there (notebook.other-env = "warn"), with a warning
    assert "pip is about to change another env than the notebook's" in other, other
    assert f"%pip install {find} demo-b" in other and list(tools.site_packages.glob("demo_b*"))
    assert not list(kernel.site_packages.glob("demo_b*"))
    assert sorted(p.name for p in user_site(home).iterdir()) == before_user_site

    # terminal IPython in the same env reads <env>/etc/ipython/ipython_config.py too
    terminal = run(
        [str(kernel.python), "-m", "IPython", "--no-banner", "-c", f"%pip install {find} demo-b"],
        user=NOBODY,
        env={"IPYTHONDIR": str(home / "ipython")},
    )
    assert "Successfully installed demo-b" in terminal.stdout, terminal.stdout + terminal.stderr
    assert list(kernel.site_packages.glob("demo_b-*.dist-info"))

    log = run([str(kernel.bin / "pip"), "log", "--json"], user=NOBODY)
    records = [json.loads(line) for line in log.stdout.splitlines()]
    decisions = [(r["decision"], r["rule"]) for r in records]
    assert ("allowed", "allowed") in decisions and ("denied", "user-site") in decisions
    allowed = next(r for r in records if r["decision"] == "allowed")
    assert [i["name"] for i in allowed["changes"]["installed"]] == ["demo-a"]
    assert records[-1]["decision"] == "allowed"  # the terminal's %pip, recorded too
    assert [i["name"] for i in records[-1]["changes"]["installed"]] == ["demo-b"]
