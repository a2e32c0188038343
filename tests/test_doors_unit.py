"""The doors' pure parts: kernel detection on a fake /proc, the config blocks protect
adds, the %pip/%uv command lines, the door names and safe-pip's own help."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any

import pytest

from safe_pip import envconfig
from safe_pip.commands import about
from safe_pip.door import door, own_command
from safe_pip.ipython import ENV_COMMAND, pip_shell_command, uv_shell_command
from safe_pip.kernel import find_kernel, is_kernel_command
from safe_pip.target import BOUND_PYTHON_VAR, DOOR_VAR
from safe_pip.values import replace

KERNEL_ENV = {"JPY_PARENT_PID": "100"}


def fake_proc(root: Path, processes: dict[int, tuple[int, list[str]]]) -> str:
    """A /proc with `stat` (ppid) and `cmdline` for each pid: {pid: (ppid, argv)}."""
    for pid, (ppid, argv) in processes.items():
        directory = root / str(pid)
        directory.mkdir(parents=True)
        (directory / "stat").write_text(f"{pid} (a (b) c) S {ppid} 1 1 0\n")
        (directory / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return str(root)


def test_the_kernel_is_found_up_the_ancestry(tmp_path: Path) -> None:
    python = tmp_path / "envs" / "analysis" / "bin" / "python3.11"
    python.parent.mkdir(parents=True)
    python.write_text("")
    proc = fake_proc(
        tmp_path / "proc",
        {
            200: (150, ["/opt/safe-pip/bin/python", "-I", "-S", "-c", "..."]),
            150: (120, ["/bin/sh", "-c", "pip install x"]),
            120: (100, [str(python), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f"]),
            100: (1, ["/opt/conda/bin/python", "/opt/conda/bin/jupyter-lab"]),
        },
    )
    kernel = find_kernel(KERNEL_ENV, proc=proc, start=200)
    assert kernel is not None and kernel.pid == 120 and kernel.python == str(python)


def test_no_kernel_without_jupyter_variables_or_in_the_ancestry(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path / "proc",
        {200: (150, ["/bin/python", "-m", "safe_pip"]), 150: (1, ["/bin/bash", "-l"])},
    )
    assert find_kernel({}, proc=proc, start=200) is None
    assert find_kernel(KERNEL_ENV, proc=proc, start=200) is None


def test_ipykernels_inline_backend_also_marks_a_kernel(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path / "proc",
        {200: (120, ["/bin/sh", "-c", "pip install x"]), 120: (1, ["python", "-m", "ipykernel"])},
    )
    inline = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    assert find_kernel({}, proc=proc, start=200) is None
    kernel = find_kernel(inline, proc=proc, start=200)
    assert kernel is not None and kernel.pid == 120


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/e/bin/python", "-m", "ipykernel_launcher", "-f", "k.json"], True),
        (["python", "-X", "frozen_modules=off", "-m", "ipykernel", "-f", "k.json"], True),
        (["/e/bin/python", "/e/lib/python3.11/site-packages/ipykernel_launcher.py"], True),
        (["/e/bin/python", "-m", "pip", "install", "ipykernel_launcher"], False),
        (["/e/bin/python", "script.py", "-m", "ipykernel_launcher"], False),
        ([], False),
    ],
)
def test_kernel_command_lines(argv: list[str], expected: bool) -> None:
    assert is_kernel_command(argv) is expected


def parsed(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()  # strict, as pip reads it
    parser.read_string(text)
    return parser


@pytest.mark.parametrize(
    "original",
    [
        "",
        "[global]\nindex-url = https://pypi.example/simple\n",
        "[install]\nprogress-bar = off\nUser = true\n[global]\ntimeout = 5",
        "# only a comment\n",
        "[INSTALL]\nuser = true\n",  # not pip's section: pip matches names exactly
    ],
)
def test_pip_conf_block_sets_user_false_and_comes_out_again(original: str) -> None:
    protected = envconfig.with_pip_conf_block(original)
    assert parsed(protected).get("install", "user") == "false"
    assert envconfig.has_block(protected)
    restored = envconfig.without_blocks(protected)
    assert restored == (original if original.endswith("\n") or not original else original + "\n")


def test_ipython_block_is_valid_python_and_comes_out_again() -> None:
    block = envconfig.ipython_block(["/opt/sp/bin/python", "-I", "-S", "-c", "x"], "/opt/sp/pkg")
    compile(block, "ipython_config.py", "exec")
    admin = "c = get_config()\nc.InteractiveShell.autocall = 0\n"
    text = envconfig.with_ipython_block(admin, block)
    assert text.startswith(admin) and '"safe_pip.ipython"' in text
    assert envconfig.without_blocks(text) == admin
    assert envconfig.without_blocks(envconfig.with_ipython_block("", block)) == ""


def test_the_ipython_block_configures_the_extension() -> None:
    class Section(dict[str, Any]):
        def __getattr__(self, name: str) -> Any:
            return self.setdefault(name, Section())

        def __setattr__(self, name: str, value: object) -> None:
            self[name] = value

    config = Section()
    config.InteractiveShellApp.extensions = []
    block = envconfig.ipython_block(["/tool/python", "-c", "x"], os.path.dirname(about.__file__))
    namespace = {"get_config": lambda: config}
    import sys

    had = sys.modules.get("safe_pip")
    exec(compile(block, "ipython_config.py", "exec"), namespace)
    assert sys.modules.get("safe_pip") is had  # already imported: left alone
    assert config.SafePip.command == ["/tool/python", "-c", "x"]
    assert config.InteractiveShellApp.extensions == ["safe_pip.ipython"]


def test_pip_magic_command_lines() -> None:
    tool = ["/opt/sp/bin/python", "-I", "-S", "-c", "import sys; entrypoint()"]
    kernel = "/envs/a b/bin/python"
    assert pip_shell_command("list --format json", tool, kernel) == (
        "'/envs/a b/bin/python' -m pip list --format json"
    )
    guarded = pip_shell_command("install 'x>=1'", tool, kernel)
    assert guarded.startswith(
        f"{ENV_COMMAND} '{BOUND_PYTHON_VAR}=/envs/a b/bin/python' {DOOR_VAR}=%pip "
    )
    assert guarded.endswith(
        " /opt/sp/bin/python -I -S -c 'import sys; entrypoint()' install 'x>=1'"
    )
    assert "{" not in guarded and "$" not in guarded  # IPython would expand them
    assert " status" in pip_shell_command("status", tool, kernel)
    assert pip_shell_command("status", tool, kernel).startswith(f"{ENV_COMMAND} ")


def test_uv_changes_go_through_the_uv_door() -> None:
    tool = ["/opt/sp/bin/python", "-I", "-S", "-c", "import sys; entrypoint()"]
    kernel = "/opt/conda/envs/analysis/bin/python"
    guarded = uv_shell_command("pip install 'x>=1'", tool, kernel)
    assert guarded.startswith(f"{ENV_COMMAND} SAFE_PIP_BOUND_PYTHON={kernel} ")
    assert guarded.endswith("entrypoint()' uv pip install 'x>=1'")
    assert " uv pip sync reqs.txt" in uv_shell_command("pip sync reqs.txt", tool, kernel)
    # uv's other commands: IPython's own %uv
    assert uv_shell_command("pip list", tool, kernel) == f"{kernel} -m uv pip list"
    assert uv_shell_command("venv", tool, kernel) == f"{kernel} -m uv venv"


def test_messages_name_the_door_the_user_came_through() -> None:
    assert door({}) == "safe-pip"
    assert door({BOUND_PYTHON_VAR: "/e/bin/python"}) == "pip"
    assert door({BOUND_PYTHON_VAR: "/e/bin/python", DOOR_VAR: "%pip"}) == "%pip"
    assert own_command({BOUND_PYTHON_VAR: "/e/bin/python"}, "status") == "pip status"


def test_help_lists_every_own_command_and_says_the_rest_goes_to_pip() -> None:
    from safe_pip.cli import OWN_COMMANDS

    text = about.help_text()
    for name in (*OWN_COMMANDS, "uv"):
        assert f"\n  {name} " in text, name
    assert "Every other argument goes to pip" in text


def test_help_and_version_under_the_name_pip_stay_pips(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from safe_pip import cli, passthrough

    calls: list[list[str]] = []

    def fake_become_pip(argv: list[str], _environ: object, *_args: object) -> int:
        calls.append(list(argv))
        return 0

    monkeypatch.setattr(passthrough, "become_pip", fake_become_pip)
    assert cli.main(["--help"], {BOUND_PYTHON_VAR: "/e/bin/python"}) == 0
    assert cli.main(["--version"], {BOUND_PYTHON_VAR: "/e/bin/python"}) == 0
    assert calls == [["--help"], ["--version"]]
    assert capsys.readouterr().out == ""
    assert cli.main(["--version"], {"PATH": "/nonexistent"}) == 0
    assert calls[-1] == ["--version"]
    assert "safe-pip 0." in capsys.readouterr().out


def test_from_a_notebook_of_another_env_pip_warns_or_refuses_as_the_policy_says() -> None:

    from safe_pip import rules
    from safe_pip.decide import decide
    from safe_pip.environment import EnvKind
    from safe_pip.pipcli import parse_pip_command_line
    from safe_pip.policy import Policy, default_policy
    from support.fakes import fake_environment

    env = fake_environment("/opt/conda/envs/tools", EnvKind.CONDA_ENV, name="tools")
    env = replace(env, writable=True)
    op = parse_pip_command_line(["install", "demo-a"], {}, None)
    kernel_env = "/home/u/envs/analysis"
    assert decide(op, env, default_policy(), notebook_env=kernel_env).allowed
    refuse = Policy(values={**default_policy().values, "notebook.other-env": "refuse"})
    decision = decide(op, env, refuse, notebook_env=kernel_env)
    assert not decision.allowed and decision.rule == rules.NOTEBOOK_ENV
    assert kernel_env in decision.reason and decision.hint.endswith("%pip install demo-a")
    assert decide(op, env, refuse, notebook_env=None).allowed


def test_user_site_copies_say_how_they_relate_and_how_to_remove_them(tmp_path: Path) -> None:
    import shlex

    from safe_pip.environment import EnvKind
    from safe_pip.usersite import user_site_copies
    from support.fakes import env_on_disk, lay_dist_info

    user_base = tmp_path / "home" / ".local"
    user_site = user_base / "lib" / "python3.11" / "site-packages"
    env = env_on_disk(
        tmp_path / "env", EnvKind.CONDA_ENV, user_base=str(user_base), user_site=str(user_site)
    )
    site = Path(env.purelib)
    lay_dist_info(site, "same", "1.0")
    lay_dist_info(site, "older", "1.0")
    lay_dist_info(user_site, "same", "1.0")
    lay_dist_info(user_site, "older", "2.0")
    extra = lay_dist_info(user_site, "extra", "0.1")
    script = user_base / "bin" / "extra-cli"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    with open(extra / "RECORD", "a") as record:
        record.write("../../../bin/extra-cli,,\n")

    copies = {copy.name: copy for copy in user_site_copies(env)}
    assert {n: c.relation for n, c in copies.items()} == {
        "same": "duplicates",
        "older": "shadows",
        "extra": "adds",
    }
    assert copies["older"].env_version == "1.0" and copies["older"].version == "2.0"
    words = shlex.split(copies["extra"].cleanup)
    assert words[:2] == ["rm", "-r"]
    assert set(words[2:]) == {str(extra), str(user_site / "extra.py"), str(script)}
    # a venv (without system site-packages) reads no user site

    assert user_site_copies(replace(env, user_site_enabled=False)) == []


def test_the_marker_names_the_commands_that_work_and_the_contact(tmp_path: Path) -> None:
    from safe_pip.marker import marker_message, marker_text, terminal_pip
    from safe_pip.policy import DEFAULT_MARKER_MESSAGE
    from support.fakes import fake_environment

    env = fake_environment("/opt/conda/envs/analysis")
    shim = terminal_pip(env, True, "/opt/safe-pip/bin/python")
    assert shim == "/opt/conda/envs/analysis/bin/pip"
    tool = tmp_path / "bin"
    tool.mkdir()
    (tool / "safe-pip").write_text("")
    without_shim = terminal_pip(env, False, str(tool / "python"))
    assert without_shim == f"{tool / 'safe-pip'} --python /opt/conda/envs/analysis"
    assert (
        terminal_pip(env, False, "/nowhere/python") == "safe-pip --python /opt/conda/envs/analysis"
    )

    text = marker_text(marker_message(DEFAULT_MARKER_MESSAGE, env, shim, "help: #hub-support"))
    assert text.startswith("[externally-managed]\nError=")
    assert "%pip install <package>" in text
    assert "/opt/conda/envs/analysis/bin/pip install <package>" in text
    assert text.rstrip().endswith("help: #hub-support") and len(text.splitlines()) <= 6
    parsed_marker = configparser.ConfigParser(interpolation=None)
    parsed_marker.read_string(text)  # pip reads it with configparser
    assert "%pip install" in parsed_marker["externally-managed"]["Error"]
