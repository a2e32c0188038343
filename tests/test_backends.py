"""The installer backends' pure parts: choosing the installer, reading uv's command line
and its plan, naming direct references, and which uv commands the uv door takes up."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_pip import rules
from safe_pip.backends import (
    choose_installer,
    missing_installer_denial,
    split_installer_flag,
)
from safe_pip.backends.uv import (
    Pins,
    UvPlanError,
    direct_reference_name,
    planned,
    read_plan,
    wheel_files,
)
from safe_pip.backends.uv_cli import parse_uv_pip, uv_args_for
from safe_pip.backends.uv_door import guarded_part
from safe_pip.changes import PLANNED_REMOVALS, planned_removals
from safe_pip.environment import Environment, EnvKind
from safe_pip.errors import InstallerMissing, UsageError
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import Policy, default_policy
from safe_pip.values import replace
from support.fakes import fake_environment
from support.wheels import build_wheel


def policy(**values: object) -> Policy:
    base = default_policy()
    return replace(base, values={**base.values, **values})


def fake_env(kind: EnvKind = EnvKind.CONDA_ENV) -> Environment:
    return fake_environment("/opt/conda/envs/analysis", kind)


# --- choosing the installer -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "rest", "chosen"),
    [
        (["install", "x"], ["install", "x"], None),
        (["--installer", "uv", "install", "x"], ["install", "x"], "uv"),
        (["install", "--installer=pip", "x"], ["install", "x"], "pip"),
        (["install", "--", "--installer", "uv"], ["install", "--", "--installer", "uv"], None),
    ],
)
def test_the_installer_flag_is_taken_out(
    argv: list[str], rest: list[str], chosen: str | None
) -> None:
    assert split_installer_flag(argv) == (rest, chosen)


@pytest.mark.parametrize("argv", [["install", "--installer"], ["--installer=conda", "install"]])
def test_a_bad_installer_flag_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        split_installer_flag(argv)


def test_the_policy_default_is_pip_and_a_user_may_choose_uv() -> None:
    env = fake_env()
    assert choose_installer(None, env, default_policy()) == ("pip", None)
    assert choose_installer("uv", env, default_policy()) == ("uv", None)


def test_the_policy_makes_uv_the_default_for_a_kind() -> None:
    env = fake_env()
    chosen = policy(**{"installer.conda-env": "uv"})
    assert choose_installer(None, env, chosen) == ("uv", None)
    assert choose_installer(None, fake_env(EnvKind.VENV), chosen) == ("pip", None)
    assert choose_installer("pip", env, chosen) == ("pip", None)


def test_no_user_choice_refuses_the_other_installer() -> None:
    env = fake_env()
    name, denial = choose_installer("uv", env, policy(**{"installer.user-choice": False}))
    assert name == "pip" and denial is not None
    assert denial.rule == rules.INSTALLER and "installer.user-choice" in denial.reason


def test_missing_uv_falls_back_to_pip_or_refuses_per_policy() -> None:
    error = InstallerMissing("uv is not installed for safe-pip", hint="install it")
    assert missing_installer_denial(default_policy(), error, uv_door=False) is None
    refusing = policy(**{"installer.uv-missing": "refuse"})
    denial = missing_installer_denial(refusing, error, uv_door=False)
    assert denial is not None and denial.rule == rules.INSTALLER
    # a uv command line is never handed to pip
    door = missing_installer_denial(default_policy(), error, uv_door=True)
    assert door is not None and "not installed" in door.reason


# --- uv's command line ----------------------------------------------------------------


def test_uv_options_become_the_same_operation_pip_gets() -> None:
    cmd = parse_uv_pip(
        [
            "install",
            "--target",
            "/tmp/t",
            "-r",
            "req.txt",
            "-e",
            "./proj",
            "--index-url=https://mirror/simple",
            "-f",
            "/wheels",
            "--no-build-isolation",
            "-qU",
            "demo-a",
        ],
        {},
    )
    op = cmd.op
    assert op.command == "install" and op.args == ("demo-a",)
    assert op.target_dir is not None and op.target_dir.value == "/tmp/t"
    assert op.requirement_files == ("req.txt",) and op.editables == ("./proj",)
    assert op.index_url == "https://mirror/simple" and op.find_links == ("/wheels",)
    assert op.build_isolation is False and op.get("upgrade") is True
    assert op.program == "uv" and op.argv[:2] == ("pip", "install")
    # what to install goes to the plan run only; where and how to both runs
    assert "-r" in cmd.plan_args and "-U" in cmd.plan_args
    assert "--target" in cmd.carry_args and "-q" in cmd.carry_args


def test_uv_variables_that_matter_are_read() -> None:
    op = parse_uv_pip(
        ["install", "x"],
        {
            "UV_PYTHON": "/opt/env/bin/python",
            "UV_BREAK_SYSTEM_PACKAGES": "true",
            "UV_INDEX_URL": "https://mirror/simple",
            "UV_FIND_LINKS": "/a,/b",
            "UV_NO_BUILD_ISOLATION": "1",
            "PIP_TARGET": "/ignored",  # uv ignores PIP_*
        },
    ).op
    assert op.python is not None and op.python.value == "/opt/env/bin/python"
    assert op.break_system_packages is not None
    assert op.break_system_packages.source == "UV_BREAK_SYSTEM_PACKAGES=true"
    assert op.index_url == "https://mirror/simple" and op.find_links == ("/a", "/b")
    assert op.build_isolation is False and op.target_dir is None


def test_the_command_line_wins_over_uv_variables() -> None:
    op = parse_uv_pip(["install", "--find-links", "/c", "x"], {"UV_FIND_LINKS": "/a"}).op
    assert op.find_links == ("/c",)
    op = parse_uv_pip(["install", "--python", "/p", "x"], {"UV_PYTHON": "/q"}).op
    assert op.python is not None and op.python.value == "/p"


def test_uv_user_is_a_user_site_install() -> None:
    op = parse_uv_pip(["install", "--user", "x"], {}).op
    assert op.user_site is not None


def test_sync_installs_exactly_its_files() -> None:
    cmd = parse_uv_pip(["sync", "lock.txt"], {})
    assert cmd.command == "sync" and cmd.op.command == "install"
    assert cmd.op.requirement_files == ("lock.txt",) and cmd.op.args == ()


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--no-such-option", "x"],
        ["install", "--directory", "/elsewhere", "x"],
        ["install", "--config-file=/tmp/uv.toml", "x"],
        ["install", "--target"],
        ["list"],
        [],
    ],
)
def test_uv_command_lines_safe_pip_cannot_judge_are_refused(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_uv_pip(argv, {})


def test_the_python_option_is_not_carried() -> None:
    cmd = parse_uv_pip(["uninstall", "-p", "/x/bin/python", "demo-a"], {})
    assert cmd.args_for_safe_pip_target() == ["--", "demo-a"]


# --- pip's command line, for uv ----------------------------------------------------------


def test_a_pip_command_line_becomes_uv_options() -> None:
    op = parse_pip_command_line(
        [
            "install",
            "--no-index",
            "-f",
            "/w",
            "--no-deps",
            "--no-build-isolation",
            "-C",
            "key=value",
            "--prefix",
            "/p",
            "demo-a",
        ],
        {"PIP_CONFIG_FILE": "/dev/null"},
        None,
    )
    args = uv_args_for(op)
    assert args[0] == "install" and args[-2:] == ["--", "demo-a"]
    for words in (["--no-index"], ["--find-links", "/w"], ["--no-deps"], ["--prefix", "/p"]):
        assert " ".join(words) in " ".join(args)
    assert "--no-build-isolation" in args and "-C key=value" in " ".join(args)


def test_a_pip_option_uv_cannot_honour_is_refused() -> None:
    op = parse_pip_command_line(
        ["install", "--root", "/r", "x"], {"PIP_CONFIG_FILE": "/dev/null"}, None
    )
    with pytest.raises(UsageError, match="--root"):
        uv_args_for(op)


# --- uv's plan -------------------------------------------------------------------------


def plan_text(*changes: dict[str, str]) -> str:
    return json.dumps({"schema": {"version": "preview"}, "changes": list(changes)})


def test_the_plan_is_read() -> None:
    installed, removed = read_plan(
        plan_text(
            {"name": "demo-a", "version": "1.0", "action": "uninstalled"},
            {"name": "demo-a", "version": "2.0", "action": "installed"},
        )
    )
    assert installed == [{"name": "demo-a", "version": "2.0"}]
    assert removed == [{"name": "demo-a", "version": "1.0"}]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"changes": {}}),
        plan_text({"name": "x", "action": "uninstalled"}),
        plan_text({"name": "x", "version": "1", "action": "teleported"}),
        json.dumps({"changes": ["x"]}),
    ],
)
def test_a_plan_that_cannot_be_read_stops_the_install(text: str) -> None:
    with pytest.raises(UvPlanError):
        read_plan(text)


def test_planned_removals_are_read_defensively() -> None:
    plan = {PLANNED_REMOVALS: [{"name": "six", "version": "1.16.0"}, "junk", {"version": "1"}]}
    assert planned_removals(plan) == [{"name": "six", "version": "1.16.0"}]
    assert planned_removals(None) == []


# --- direct references -----------------------------------------------------------------


def test_names_of_direct_references(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "My_Proj"\n')
    assert direct_reference_name("demo-a>=1") is None
    assert direct_reference_name("demo-a @ https://h/x.whl") == "demo-a"
    assert direct_reference_name("/w/Demo_B-1.0-py3-none-any.whl") == "demo-b"
    assert direct_reference_name("git+https://h/x.git#egg=Foo") == "foo"
    assert direct_reference_name(str(project)) == "my-proj"
    assert direct_reference_name("https://h/archive.tar.gz") == ""


# --- the uv door -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "guarded"),
    [
        (["pip", "install", "x"], ["install", "x"]),
        (["--no-cache", "pip", "sync", "r.txt"], ["sync", "--no-cache", "r.txt"]),
        (["--cache-dir", "/c", "pip", "uninstall", "x"], ["uninstall", "--cache-dir", "/c", "x"]),
        (["pip", "list"], None),
        (["run", "python"], None),
        (["--version"], None),
        (["tool", "install", "x"], None),
        (["pip"], None),
    ],
)
def test_which_uv_commands_the_door_takes_up(argv: list[str], guarded: list[str] | None) -> None:
    assert guarded_part(argv) == guarded


# --- exactly the plan --------------------------------------------------------------------


def pins_for(args: list[str], wheels: Path | None = None) -> Pins:
    links = ["--find-links", str(wheels)] if wheels is not None else []
    return Pins(parse_uv_pip(["install", *links, *args], {}))


def test_the_plan_is_pinned_to_the_wheel_files_it_names(tmp_path: Path) -> None:
    (tmp_path / "demo_a-2.0-py3-none-any.whl").write_bytes(b"wheel a")
    (tmp_path / "demo_b-1.0-py3-none-any.whl").write_bytes(b"wheel b")
    (tmp_path / "demo_b-1.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"another b")
    result = planned(
        plan_text(
            {"name": "six", "version": "1.16.0", "action": "uninstalled"},
            {"name": "demo-a", "version": "1.0", "action": "uninstalled"},
            {"name": "demo-a", "version": "2.0", "action": "installed"},
            {"name": "demo-b", "version": "1.0", "action": "installed"},
            {"name": "other", "version": "3", "action": "installed"},
        ),
        pins_for(["demo-b"], tmp_path),
    )
    # one local file: that file, with its hash; two candidates or none: name==version
    assert result.pins == [str(tmp_path / "demo_a-2.0-py3-none-any.whl"), "demo-b==1.0", "other==3"]
    first = result.plan["install"][0]
    assert first["download_info"]["url"] == f"file://{tmp_path}/demo_a-2.0-py3-none-any.whl"
    assert len(first["download_info"]["archive_info"]["hashes"]["sha256"]) == 64
    assert [i["requested"] for i in result.plan["install"]] == [False, True, False]
    # an upgrade replaces; what is only uninstalled is removed outright (uv pip sync)
    assert result.reinstall == ["--reinstall-package", "demo-a"]
    assert result.removals == ["six"]
    assert planned_removals(result.plan) == [{"name": "six", "version": "1.16.0"}]


@pytest.mark.parametrize(
    ("extra", "sdist", "by_name"),
    [
        (["--no-index"], None, True),  # the local wheel is uv's only candidate
        ([], None, False),  # an index could answer `demo-a==2.0` too
        (["--no-index", "--find-links", "https://example.invalid/links/"], None, False),
        (["--no-index"], "demo_a-2.0.tar.gz", False),  # uv could build the sdist instead
        (["--no-index"], "demo-a-2.0.zip", False),
        (["--no-index"], "demo_a-2.0.tar.zst", False),  # any archive format
        (["--no-index"], "demo_ab-2.0.tar.gz", True),  # another project's archive
        # another wheel of a version `==2.0` takes too (a more specific tag would win)
        (["--no-index"], "demo_a-02.0-py3-none-manylinux_2_17_x86_64.whl", False),
        (["--no-index"], "demo_a-2.0.0-cp311-cp311-linux_x86_64.whl", False),
        (["--no-index"], "demo_a-2.0+local-py3-none-any.whl", False),
        (["--no-index"], "demo_a-2.0.whl", False),  # a wheel name safe-pip cannot read
        (["--no-index"], "demo_a-1.0-py3-none-any.whl", True),  # another version
        (["--no-index"], "demo_a-2.0.post1-py3-none-any.whl", True),
    ],
)
def test_a_local_wheel_that_is_the_only_candidate_is_pinned_by_name(
    tmp_path: Path, extra: list[str], sdist: str | None, by_name: bool
) -> None:
    """Installed by name, as uv installs from --find-links (no direct_url.json, `pip
    freeze` says name==version), where nothing but that wheel can answer the pin; else by
    its path, so the file checked is the file installed.  (`sdist`: another file in the
    directory.)"""
    wheel = tmp_path / "demo_a-2.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel a")
    if sdist is not None:
        (tmp_path / sdist).write_bytes(b"source")
    result = planned(
        plan_text({"name": "demo-a", "version": "2.0", "action": "installed"}),
        pins_for(["demo-a", *extra], tmp_path),
    )
    assert result.pins == (["demo-a==2.0"] if by_name else [str(wheel)])
    # the check reads that wheel either way
    assert result.plan["install"][0]["download_info"]["url"] == f"file://{wheel}"
    assert result.unread == []


def test_direct_references_are_installed_as_written(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    wheel = tmp_path / "Demo_C-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel c")
    result = planned(
        plan_text(
            {"name": "proj", "version": "0.1", "action": "installed"},
            {"name": "demo-c", "version": "1.0", "action": "installed"},
        ),
        pins_for(["-e", str(project), str(wheel)]),
    )
    assert result.pins == ["-e", str(project), str(wheel)]
    editable, direct = result.plan["install"]
    assert editable["download_info"]["dir_info"] == {"editable": True}
    assert direct["is_direct"] and direct["download_info"]["url"] == f"file://{wheel}"


def test_a_source_tree_uv_has_not_built_yet_comes_without_a_version(tmp_path: Path) -> None:
    """uv's dry run cannot know the version of a project it has not built (`-e .`): it is
    installed as written; any other change without a version stops the install."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    result = planned(
        plan_text({"name": "proj", "action": "installed"}),
        pins_for(["--no-build-isolation", "-e", str(project)]),
    )
    assert result.pins == ["-e", str(project)]
    assert result.plan["install"][0]["metadata"] == {"name": "proj", "version": ""}
    with pytest.raises(UvPlanError, match="without a version"):
        planned(
            plan_text(
                {"name": "proj", "action": "installed"},
                {"name": "dep", "action": "installed"},
            ),
            pins_for(["-e", str(project)]),
        )


def test_a_direct_reference_safe_pip_cannot_name_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot tell which project"):
        pins_for(["https://example.invalid/archive.tar.gz"])


def test_the_files_a_planned_wheel_writes_are_in_the_plan(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path,
        "six-fork",
        "1.0",
        files={"six.py": "x = 1\n"},
        entry_points={"six-tool": "six:main"},
    )
    result = planned(
        plan_text({"name": "six-fork", "version": "1.0", "action": "installed"}),
        pins_for(["six-fork"], tmp_path),
    )
    files = result.plan["install"][0]["safe_pip_files"]
    assert "six.py" in files["wheel"] and files["scripts"] == ["six-tool"]
    assert wheel_files(str(wheel)) == files
    (tmp_path / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    assert wheel_files(str(tmp_path / "broken-1.0-py3-none-any.whl")) is None


@pytest.mark.integration  # runs a stand-in uv (a shell script)
def test_uv_is_asked_for_its_plan_once(tmp_path: Path) -> None:
    """start() runs the plan early; install() of the same request takes that answer."""
    calls = tmp_path / "calls"
    fake = tmp_path / "uv"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        'case "$*" in *--version*) echo "uv 9.9.9";; '
        "*--dry-run*) echo '{\"changes\": []}';; esac\n"
    )
    fake.chmod(0o755)
    from safe_pip.backends import Request
    from safe_pip.backends.uv import UvBackend

    uv = UvBackend(str(fake))
    request = Request("/env/bin/python", ("install", "demo-a"), {"PATH": "/usr/bin:/bin"})
    uv.start(request)
    uv.start(request)
    seen: list[object] = []

    def check(plan: object) -> tuple[bool, object]:
        seen.append(plan)
        return True, None

    run = uv.install(request, check)
    assert run.run.exit_code == 0 and seen and uv.version() == "9.9.9"
    lines = calls.read_text().splitlines()
    assert sum("--dry-run" in line for line in lines) == 1, lines
    assert not any("--no-deps" in line for line in lines)  # an empty plan installs nothing


def editable_with_stand_in_uv(
    tmp_path: Path, on_scratch: str = ""
) -> tuple[Path, Path, list[Any], Callable[[Any], tuple[bool, object]]]:
    """(a project, a stand-in uv logging its arguments to `calls`, the plans checked, the
    check): its dry run plans the project without a version; `on_scratch` is what it does
    for the scratch install (`--prefix`)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    fake = tmp_path / "uv"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path / "calls"}\n'
        'case "$*" in *--dry-run*) echo \'{"changes": [{"name": "proj", '
        f'"action": "installed"}}]}}\';; *--prefix*) {on_scratch or ":"};; esac\n'
    )
    fake.chmod(0o755)
    seen: list[Any] = []

    def check(plan: Any) -> tuple[bool, object]:
        seen.append(plan)
        return True, None

    return project, fake, seen, check


@pytest.mark.integration  # runs a stand-in uv (a shell script)
@pytest.mark.parametrize("files", [True, False])
def test_the_scratch_install_runs_only_where_the_files_are_checked(
    tmp_path: Path, files: bool
) -> None:
    """An editable project is built into the scratch prefix for its files only where the
    check reads them (conda's packages protected): elsewhere uv builds it once."""
    import signal

    from safe_pip.backends import Request
    from safe_pip.backends.uv import UvBackend

    project, fake, seen, check = editable_with_stand_in_uv(tmp_path)
    request = Request("/env/bin/python", ("install", "-e", str(project)), {"PATH": "/bin"})
    handler = signal.getsignal(signal.SIGINT)
    try:
        UvBackend(str(fake)).install(request, check, files=files)
    finally:
        signal.signal(signal.SIGINT, handler)  # the install ignores Ctrl-C once uv is done
    lines = (tmp_path / "calls").read_text().splitlines()
    scratch = [line for line in lines if "--prefix" in line]
    assert len(scratch) == int(files), lines
    if files:  # the stand-in installed nothing there: the item's files are unknown
        assert f"--editable={project}" in scratch[0]
        assert seen[0]["install"][0]["safe_pip_files"] is None
    else:
        assert "safe_pip_files" not in seen[0]["install"][0]
    assert lines[-1].endswith(f"-e {project}")  # the install itself, as written


@pytest.mark.integration  # runs a stand-in uv (a shell script)
def test_a_scratch_install_uv_fails_stops_with_uvs_own_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A project that does not build fails in the scratch prefix as it would in the env:
    uv's error and exit code, no check, no install (not a refusal naming the admin)."""
    from safe_pip.backends import Request
    from safe_pip.backends.uv import UvBackend

    failing = 'echo "build failed: bad setup" >&2; exit 2'
    project, fake, seen, check = editable_with_stand_in_uv(tmp_path, failing)
    request = Request("/env/bin/python", ("install", "-e", str(project)), {"PATH": "/bin"})
    run = UvBackend(str(fake)).install(request, check)
    assert (run.run.exit_code, run.run.interrupted, run.plan, seen) == (2, False, None, [])
    assert "build failed: bad setup" in capfd.readouterr().err
    lines = (tmp_path / "calls").read_text().splitlines()
    assert any("--prefix" in line for line in lines), lines  # the scratch install ran
    installs = [line for line in lines if line.startswith("pip install -") or "-e" in line]
    assert all("--dry-run" in line or "--prefix" in line for line in installs), lines


def test_uvs_version_comes_from_the_record_that_installed_it(tmp_path: Path) -> None:
    """The record's installer_version without running uv: the ``uv`` distribution whose
    RECORD lists this very binary (path and size); anything else asks uv itself."""
    from safe_pip.backends.uv import installed_version

    binary = tmp_path / "bin" / "uv"
    binary.parent.mkdir()
    binary.write_bytes(b"\x7fELF" + b"0" * 60)
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    info = site / "uv-0.13.9.dist-info"
    info.mkdir(parents=True)
    record = info / "RECORD"
    record.write_text("../../../bin/uv,sha256=x,64\nuv/__init__.py,,\n")
    assert installed_version(str(binary)) == "0.13.9"
    record.write_text("../../../bin/uv,sha256=x,65\n")  # another build than the one there
    assert installed_version(str(binary)) is None
    record.write_text("../../../bin/uvx,sha256=x,64\n")
    assert installed_version(str(binary)) is None
    assert installed_version(str(tmp_path / "nowhere" / "uv")) is None


def test_uv_project_commands_may_not_sync_a_protected_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``uv sync|add|remove|run`` make the project environment match the lock file: at the
    uv door, a project environment that is a protected env is refused before uv runs."""
    from safe_pip.backends.uv_door import project_env_refusal

    conda = tmp_path / "conda-env"
    (conda / "conda-meta").mkdir(parents=True)
    marked = tmp_path / "marked"
    (marked / "lib" / "python3.11").mkdir(parents=True)
    (marked / "lib" / "python3.11" / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.11").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    bound = tmp_path / "bound"
    (bound / "bin").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)

    def refused(argv: list[str], **environ: str) -> bool:
        return project_env_refusal(argv, environ) is not None

    for command in (["sync"], ["add", "six"], ["remove", "six"], ["run", "python", "-V"]):
        assert refused(command, UV_PROJECT_ENVIRONMENT=str(conda)), command
        assert refused(command, UV_PROJECT_ENVIRONMENT="marked"), command  # relative
        assert not refused(command, UV_PROJECT_ENVIRONMENT=str(venv)), command
        assert not refused(command), command  # uv's own .venv in the project
    assert refused(["--directory", "proj", "sync"], UV_PROJECT_ENVIRONMENT=str(conda))
    assert refused(["sync", "--active"], VIRTUAL_ENV=str(marked))
    assert not refused(["sync"], VIRTUAL_ENV=str(marked))  # without --active uv keeps .venv
    # the shim's own env, whatever it looks like
    assert refused(
        ["sync"], UV_PROJECT_ENVIRONMENT=str(bound), SAFE_PIP_BOUND_PYTHON=f"{bound}/bin/python"
    )
    # what does not sync the env passes
    assert not refused(["run", "--no-sync", "x"], UV_PROJECT_ENVIRONMENT=str(conda))
    assert not refused(["run", "x"], UV_PROJECT_ENVIRONMENT=str(conda), UV_NO_SYNC="1")
    for other in (["lock"], ["tree"], ["export"], ["pip", "list"], ["--version"]):
        assert not refused(other, UV_PROJECT_ENVIRONMENT=str(conda)), other
    # a --no-sync of the command uv runs is not uv's; only uv's own turns the sync off
    assert refused(["run", "python", "-c", "1", "--no-sync"], UV_PROJECT_ENVIRONMENT=str(conda))
    assert refused(["run", "x"], UV_PROJECT_ENVIRONMENT=str(conda), UV_NO_SYNC="no")
    assert not refused(["run", "x"], UV_PROJECT_ENVIRONMENT=str(conda), UV_NO_SYNC="true")
    assert not refused(["run", "--", "x", "--active"], VIRTUAL_ENV=str(marked))
    # a relative path is read from the project root too, and from --project/--directory
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    monkeypatch.chdir(project / "sub")
    assert refused(["sync"], UV_PROJECT_ENVIRONMENT="../conda-env")
    monkeypatch.chdir(tmp_path / "venv")
    assert refused(["--project", str(project), "sync"], UV_PROJECT_ENVIRONMENT="../conda-env")
    # a venv whose pip is a safe-pip shim is protected too
    (venv / "bin").mkdir()
    (venv / "bin" / "pip").write_text("#!/bin/sh\n# safe-pip shim: pip for this env\n")
    assert refused(["sync"], UV_PROJECT_ENVIRONMENT=str(venv))
    why, instead = project_env_refusal(["sync"], {"UV_PROJECT_ENVIRONMENT": str(conda)}) or ("", "")
    assert "conda's packages" in why and "uv pip install" in instead


_ENTRY_LINES = [
    "[console_scripts]", "[gui_scripts]", "[other]", "foo = a:b", "Bar=c:d", " foo = x",
    "  cont", "# c", "; c", "", "x-y.z = m:f [e]", "noeq", "=v", "foo=a", "   deeper = 1",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_ENTRY_LINES), max_size=9))
def test_entry_point_scripts_are_read_as_configparser_reads_them(lines: list[str]) -> None:
    """The scripts of a local wheel, read without configparser (its import and patterns
    cost start-up): the same names, or a failure where configparser fails."""
    import configparser

    from safe_pip.backends.uv import script_names

    text = "\n".join(lines) + "\n"
    parser = configparser.RawConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error:
        assert script_names(text) is None
        return
    expected = [
        key.strip()
        for section in ("console_scripts", "gui_scripts")
        if parser.has_section(section)
        for key in parser.options(section)
    ]
    assert sorted(script_names(text) or []) == sorted(expected)


@pytest.mark.integration  # runs a stand-in uv (a shell script)
def test_a_plan_asked_early_and_not_taken_is_stopped(tmp_path: Path) -> None:
    """A refused command (or another request) leaves no uv dry run behind."""
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    from safe_pip.backends import Request
    from safe_pip.backends.uv import UvBackend

    uv = UvBackend(str(fake))
    uv.start(Request("/env/bin/python", ("install", "demo-a"), {"PATH": "/usr/bin:/bin"}))
    child = uv._pending[1] if uv._pending is not None else None
    assert child is not None and child.poll() is None
    uv.close()
    assert child.returncode is not None  # killed and reaped
    assert uv._pending is None
    uv.close()  # nothing left: no error


def test_an_unreadable_wheel_in_the_wheelhouse_does_not_stop_the_plan(tmp_path: Path) -> None:
    """Reading the local wheels ahead is best effort: a dangling file is left alone."""
    from safe_pip.backends.uv import Pins
    from safe_pip.backends.uv_cli import parse_uv_pip

    house = tmp_path / "wheels"
    house.mkdir()
    (house / "foo-0.9-py3-none-any.whl").symlink_to(tmp_path / "gone.whl")
    cmd = parse_uv_pip(["install", "--find-links", str(house), "foo"], {})
    pins = Pins(cmd)
    pins.prepare()  # no error
    entry, args = pins.item("foo", "1.0")  # the plan takes foo from elsewhere
    assert args == ["foo==1.0"] and "safe_pip_files" not in entry
