"""protect / unprotect on an env on disk (no interpreter): the marker, the shims, the
env's config files, and an exact undo, byte for byte."""

from __future__ import annotations

import configparser
import os
import stat
from pathlib import Path

import pytest

from safe_pip import launcher, marker
from safe_pip.environment import MARKER_NAME, Environment
from safe_pip.errors import TargetError
from safe_pip.target import BOUND_PYTHON_VAR
from support.fakes import env_on_disk

TOOL = "/opt/safe-pip/bin/python"
MESSAGE = "use {pip} for this env ({prefix})"


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every file and link below ``root``: mode and content (link target)."""
    found: dict[str, tuple[int, bytes | str]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            found[str(path.relative_to(root))] = (0, os.readlink(path))
        elif stat.S_ISREG(info.st_mode):
            found[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), path.read_bytes())
        else:
            found[str(path.relative_to(root))] = (stat.S_IMODE(info.st_mode), "dir")
    return found


@pytest.fixture
def env(tmp_path: Path) -> Environment:
    env = env_on_disk(tmp_path / "env")
    Path(env.stdlib).mkdir(parents=True, exist_ok=True)
    scripts = Path(env.scripts)
    scripts.mkdir()
    (scripts / "pip").write_text('#!/bin/sh\nexec python -m pip "$@"\n')
    (scripts / "pip").chmod(0o755)
    (scripts / "pip3").symlink_to("pip")
    (Path(env.prefix) / "pip.conf").write_text("[global]\ntimeout = 60\n")
    return env


def test_protect_writes_the_marker_with_the_working_command(env: Environment) -> None:
    changes = marker.protect(env, MESSAGE, shim=True, tool_python=TOOL, contact="ask #hub")
    text = Path(env.stdlib, MARKER_NAME).read_text()
    assert text == (
        "[externally-managed]\n"
        f"Error=use {env.scripts}/pip for this env ({env.prefix})\n"
        "  ask #hub\n"
    )
    parsed = configparser.ConfigParser()
    parsed.read_string(text)  # pip reads it with configparser
    assert parsed["externally-managed"]["Error"].startswith("use ")
    actions = {os.path.relpath(c.path, env.prefix): c.action for c in changes}
    assert actions["lib/python3.11/EXTERNALLY-MANAGED"] == "created"
    assert actions["bin/pip"] == "replaced"
    # pip3 -> pip now leads to the shim: the link is left as it is
    assert actions["bin/pip3"] == "kept" and Path(env.scripts, "pip3").is_symlink()
    assert actions["bin/pip3.11"] == "created"
    assert actions["pip.conf"] == "edited"


def test_the_shims_run_safe_pip_bound_to_the_env(env: Environment) -> None:
    marker.protect(env, MESSAGE, shim=True, tool_python=TOOL)
    for name in marker.shim_names(env):
        shim = Path(env.scripts, name)
        assert stat.S_IMODE(shim.stat().st_mode) == 0o755
        text = shim.read_text()  # through pip3 -> pip as the shell would
        assert text.startswith("#!/bin/sh\n" + launcher.SHIM_TAG)
        assert f"{BOUND_PYTHON_VAR}={env.python}\n" in text
        assert f"exec {TOOL} -I -S -c " in text


def test_pip_conf_gets_user_false_beside_the_admins_settings(env: Environment) -> None:
    marker.protect(env, MESSAGE, shim=False, tool_python=TOOL)
    parsed = configparser.ConfigParser()
    parsed.read(Path(env.prefix, "pip.conf"))
    assert parsed["global"]["timeout"] == "60"
    assert parsed["install"]["user"] == "false"


def test_protect_twice_changes_nothing_more(env: Environment) -> None:
    marker.protect(env, MESSAGE, shim=True, tool_python=TOOL)
    once = snapshot(Path(env.prefix))
    marker.protect(env, MESSAGE, shim=True, tool_python=TOOL)
    assert snapshot(Path(env.prefix)) == once


def test_unprotect_restores_the_env_exactly(env: Environment) -> None:
    before = snapshot(Path(env.prefix))
    marker.protect(env, MESSAGE, shim=True, tool_python=TOOL)
    assert snapshot(Path(env.prefix)) != before
    changes = marker.unprotect(env)
    assert snapshot(Path(env.prefix)) == before
    actions = {os.path.relpath(c.path, env.prefix): c.action for c in changes}
    assert actions["bin/pip"] == "restored" and actions["bin/pip3.11"] == "removed"
    assert marker.unprotect(env) == []  # nothing left to undo


def test_an_admins_later_edit_of_pip_conf_survives_unprotect(env: Environment) -> None:
    marker.protect(env, MESSAGE, shim=False, tool_python=TOOL)
    conf = Path(env.prefix, "pip.conf")
    conf.write_text(conf.read_text() + "[list]\nformat = columns\n")
    marker.unprotect(env)
    parsed = configparser.ConfigParser()
    parsed.read(conf)
    assert parsed["list"]["format"] == "columns" and parsed["global"]["timeout"] == "60"
    assert not parsed.has_option("install", "user")


def test_protect_needs_a_writable_stdlib(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(Path(env.prefix))
    monkeypatch.setattr(os, "access", lambda *_args, **_kwargs: False)  # as a hub user
    with pytest.raises(TargetError, match="not writable by you"):
        marker.protect(env, MESSAGE, shim=False, tool_python=TOOL)
    monkeypatch.undo()
    assert snapshot(Path(env.prefix)) == before
