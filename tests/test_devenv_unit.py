"""The pure parts of ``safe-pip devenv``: names, where Jupyter finds kernels, the kernel
spec, and a removal that takes only what is its own.  Files under tmp_path, no process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safe_pip.commands import devenv
from safe_pip.errors import UsageError


def test_the_project_name_comes_from_pyproject_else_the_directory(tmp_path: Path) -> None:
    project = tmp_path / "My Project"
    project.mkdir()
    assert devenv._project_name(project) == "My Project"
    (project / "pyproject.toml").write_text('[project]\nname = "my-lib"\nversion = "1"\n')
    assert devenv._project_name(project) == "my-lib"
    assert devenv._slug("My Project (v2)") == "my-project-v2"
    assert devenv._slug("///") == "dev"


def test_jupyter_data_dir_follows_jupyter_and_xdg() -> None:
    assert devenv.jupyter_data_dir({"JUPYTER_DATA_DIR": "/j", "XDG_DATA_HOME": "/x"}) == Path("/j")
    assert devenv.jupyter_data_dir({"XDG_DATA_HOME": "/x", "HOME": "/h"}) == Path("/x/jupyter")
    assert devenv.jupyter_data_dir({"HOME": "/h"}) == Path("/h/.local/share/jupyter")
    # a relative XDG_DATA_HOME is ignored, as the XDG spec says
    assert devenv.jupyter_data_dir({"XDG_DATA_HOME": "x", "HOME": "/h"}) == Path(
        "/h/.local/share/jupyter"
    )


def test_the_kernel_runs_the_dev_envs_python_without_the_user_site(tmp_path: Path) -> None:
    environ = {"JUPYTER_DATA_DIR": str(tmp_path / "jupyter")}
    python = str(tmp_path / "proj" / ".venv-analysis" / "bin" / "python")
    kernel = devenv._write_kernel("proj-dev", "proj (dev)", python, environ)
    assert kernel == tmp_path / "jupyter" / "kernels" / "proj-dev"
    spec = json.loads((kernel / "kernel.json").read_text())
    assert spec["argv"][:3] == [python, "-m", "ipykernel_launcher"]
    assert spec["env"] == {"PYTHONNOUSERSITE": "1"}
    assert spec["display_name"] == "proj (dev)"


def test_remove_takes_the_dev_env_and_only_its_own_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {"JUPYTER_DATA_DIR": str(tmp_path / "jupyter")}
    directory = tmp_path / "proj" / ".venv-analysis"
    (directory / "bin").mkdir(parents=True)
    own = devenv._write_kernel("proj-dev", "proj", str(directory / "bin" / "python"), environ)
    other = devenv._write_kernel("other", "other", "/elsewhere/bin/python", environ)
    (directory / devenv.MARKER).write_text(
        json.dumps({"schema": devenv.SCHEMA, "kernel": str(other)})
    )
    assert devenv.remove(directory) == 0
    assert not directory.exists()
    assert other.exists()  # its argv is not inside the dev env: not ours to remove
    assert own.exists()
    assert capsys.readouterr().out == f"removed  {directory}\n"

    (directory / "bin").mkdir(parents=True)
    (directory / devenv.MARKER).write_text(
        json.dumps({"schema": devenv.SCHEMA, "kernel": str(own)})
    )
    devenv.remove(directory)
    assert not own.exists()


def test_remove_refuses_a_directory_that_is_not_a_dev_env(tmp_path: Path) -> None:
    (tmp_path / devenv.MARKER).write_text("[1, 2")  # damaged: not trusted either
    with pytest.raises(UsageError, match="not a safe-pip dev env"):
        devenv.remove(tmp_path)
    assert tmp_path.exists()
