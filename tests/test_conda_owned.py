"""Rule conda-owned end to end: the real safe-pip, the real pip and the real uv, a conda
env made by py-rattler with a conda-forge-shaped six, and what is on disk afterwards.

The check sits between the installer's resolution and its installation: pip paused at
its pause point (preflight.py), or uv's dry-run plan followed by a pinned install
(backends/uv.py); the installer installs exactly what was checked, or nothing.  Tests
run for both backends (`pip`, `uv` = `--installer uv`) and, where uv's own command line
says the same, the uv door (`uv-door` = `safe-pip uv pip ...`), some also with uv as the
policy's installer (`uv-policy`); see support.backends.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.auditlog import operations_in
from support.backends import (
    BACKENDS,
    PIP,
    WITH_DOOR,
    WITH_POLICY,
    GuardedEnv,
    installer_of,
    yes,
)
from support.conda_channel import channel_url, local_channel
from support.prefixes import Prefix
from support.run import Runner, install_setuptools, pip_wheel_dir
from support.wheels import build_wheel, make_project

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
USAGE = 12
ALLOW_OVERRIDE = "version = 1\n[conda]\nallow-override = true\n"
UNPROTECTED = "version = 1\n[conda]\nprotect-conda-packages = false\n"


def dist_infos(site: Path, name: str) -> list[str]:
    return sorted(p.name for p in site.glob(f"{name}-*.dist-info"))


def audit_records(prefix: Prefix) -> list[dict[str, Any]]:
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


class CondaEnv(GuardedEnv):
    """A conda env (writable by `user`) with six 1.16.0 from the suite's channel; safe-pip
    runs with `backend`."""

    def bare_pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.prefix.python), "-m", "pip", *args]
        if args and args[0] == "install":
            argv += self.index_args()
        return self.run(argv, user=self.user, env=self.env())

    @property
    def six(self) -> str:
        """How refusals name conda's six: with its channel (the local one's URL)."""
        return f"six 1.16.0 (conda, {channel_url(local_channel()).rstrip('/')})"

    def six_is_condas(self) -> bool:
        """conda's six.py (1.16.0) and dist-info, untouched by pip's 1.17.0."""
        return (
            dist_infos(self.site, "six") == ["six-1.16.0.dist-info"]
            and (self.site / "six-1.16.0.dist-info" / "INSTALLER").read_text() == "conda"
            and '"1.16.0"' in (self.site / "six.py").read_text()
        )


@pytest.fixture(scope="session")
def extra_wheels(shared_session_tmp: Path) -> Path:
    """needs-six 1.0 (requires six>=1.17), plain 1.0 (no dependencies), six-fork 1.0 (ships
    its own six.py)."""
    house = shared_session_tmp / "conda-owned-wheels"
    build_wheel(house, "needs-six", "1.0", requires=["six>=1.17"])
    build_wheel(house, "plain", "1.0")
    build_wheel(house, "six-fork", "1.0", files={"six.py": "FORK = True\n"})
    os.chmod(house, 0o755)
    return house


@pytest.fixture(params=[None, NOBODY], ids=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """pip or uv (`--installer uv`); a test with `WITH_DOOR` also takes the uv door."""
    return request.param  # type: ignore[no-any-return]


def _conda_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    user: int | None,
    backend: str,
) -> CondaEnv:
    prefix = conda_env_factory("six", writable_by=user)
    return CondaEnv(run, safe_pip_bin, prefix, [wheelhouse, extra_wheels], user, backend)


@pytest.fixture
def conda_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    user: int | None,
    backend: str,
) -> CondaEnv:
    return _conda_env(run, safe_pip_bin, conda_env_factory, wheelhouse, extra_wheels, user, backend)


@pytest.fixture
def root_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    backend: str,
) -> CondaEnv:
    # owned by root; tests that edit pip's files unlink them first (they are hardlinks
    # into rattler's package cache)
    return _conda_env(run, safe_pip_bin, conda_env_factory, wheelhouse, extra_wheels, 0, backend)


@pytest.fixture
def refusing_env(
    run: Runner,
    safe_pip_bin: list[str],
    shared_conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    user: int | None,
    backend: str,
) -> CondaEnv:
    """`conda_env` for tests whose refusals leave it untouched: one per user per session."""
    prefix = shared_conda_env_factory("six", writable_by=user)
    return CondaEnv(run, safe_pip_bin, prefix, [wheelhouse, extra_wheels], user, backend)


#: for tests of pip's own behaviour (its pause point, --report): pip only
pip_only = pytest.mark.parametrize("backend", [PIP], indirect=True)


# --- install ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", WITH_POLICY, indirect=True)
def test_a_dependency_upgrade_of_a_conda_package_is_refused(refusing_env: CondaEnv) -> None:
    proc = refusing_env.pip("install", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert f"{refusing_env.six} -> 1.17.0 (pip)" in proc.stderr
    assert "conda install six=1.17.0" in proc.stderr
    assert "--no-deps" in proc.stderr
    # nothing was installed: not the conflict, not the package that asked for it
    assert refusing_env.six_is_condas()
    assert dist_infos(refusing_env.site, "needs_six") == []
    record = audit_records(refusing_env.prefix)[-1]
    assert record["decision"] == "denied" and record["rule"] == "conda-owned"
    assert record["changes"] == {"installed": [], "removed": []}
    assert record["installer"] == refusing_env.installer


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_no_deps_installs_the_package_and_leaves_condas_six(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "--no-deps", "needs-six")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "needs_six") == ["needs_six-1.0.dist-info"]
    assert installer_of(conda_env.site, "needs_six") == conda_env.installer
    assert conda_env.six_is_condas()


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_a_requested_conda_package_is_refused_without_the_no_deps_tip(
    refusing_env: CondaEnv,
) -> None:
    proc = refusing_env.pip("install", "six==1.17.0")
    assert proc.returncode == DENIED, proc.stderr
    assert f"{refusing_env.six} -> 1.17.0 (pip) [upgrade]" in proc.stderr
    assert "--no-deps" not in proc.stderr
    assert refusing_env.six_is_condas()


@pytest.mark.parametrize("user", [None], ids=["root"], indirect=True)
@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
@pytest.mark.parametrize(
    "args",
    [
        ["--force-reinstall", "six==1.17.0"],
        ["--ignore-installed", "six"],
        ["--upgrade", "six"],
        ["-r", "REQUIREMENTS"],
        ["--target", "SITE", "six"],
        ["--target", "SITE", "--upgrade", "six"],
    ],
    ids=[
        "force-reinstall",
        "ignore-installed",
        "upgrade",
        "requirements-file",
        "target-site",
        "target-site-upgrade",
    ],
)
def test_other_routes_to_replace_it(
    refusing_env: CondaEnv, shared_tmp: Path, args: list[str]
) -> None:
    requirements = shared_tmp / "requirements.txt"
    requirements.write_text("plain\nneeds-six  # wants a newer six\n")
    args = [
        str(requirements) if a == "REQUIREMENTS" else str(refusing_env.site) if a == "SITE" else a
        for a in args
    ]
    proc = refusing_env.pip("install", *args)
    if "--ignore-installed" in args and refusing_env.backend != PIP:
        # uv has no --ignore-installed: a usage error, before anything is installed
        assert proc.returncode == USAGE, proc.stderr
        assert "--ignore-installed" in proc.stderr
    elif "--target" in args and "--upgrade" not in args and refusing_env.backend != PIP:
        # uv treats the --target directory as the env: six is there already, nothing to do
        assert proc.returncode == 0, proc.stderr
        assert "uv's plan changes nothing here" in proc.stderr
    else:
        assert proc.returncode == DENIED, proc.stderr
        assert "rule:    conda-owned" in proc.stderr
    assert refusing_env.six_is_condas()
    assert dist_infos(refusing_env.site, "plain") == []


@pytest.mark.parametrize("backend", WITH_POLICY, indirect=True)
def test_an_install_that_touches_nothing_of_condas_runs(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "demo-b")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "demo_a") == ["demo_a-2.0.dist-info"]
    assert dist_infos(conda_env.site, "demo_b") == ["demo_b-1.0.dist-info"]
    assert installer_of(conda_env.site, "demo_b") == conda_env.installer
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed" and record["outcome"] == "ok"
    assert record["installer"] == conda_env.installer
    names = sorted(item["name"] for item in record["changes"]["installed"])
    assert names == ["demo-a", "demo-b"]
    # the sources come from the plan of what the installer installed: the local wheels
    assert all(item["source"]["kind"] == "file" for item in record["changes"]["installed"])
    assert all(len(item["hashes"]["sha256"]) == 64 for item in record["changes"]["installed"])


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_a_wheel_that_would_overwrite_condas_files_is_refused(refusing_env: CondaEnv) -> None:
    """Checked on the files the planned wheel writes, not only on names: six-fork ships
    six.py, which conda's six owns."""
    conda_six = (refusing_env.site / "six.py").read_text()
    proc = refusing_env.pip("install", "six-fork")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr and "six.py" in proc.stderr
    assert (refusing_env.site / "six.py").read_text() == conda_six
    assert dist_infos(refusing_env.site, "six_fork") == []
    assert refusing_env.six_is_condas()


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_a_developer_install_whose_script_would_overwrite_condas_is_refused(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    user: int | None,
    backend: str,
) -> None:
    """`-e .` is checked on the files its build writes too: a project declaring a console
    script `demo-rec` would replace bin/demo-rec of conda's demo-rec.  With uv, uv builds
    the project into a scratch prefix first (its RECORD names the script)."""
    prefix = conda_env_factory("six", "demo-rec", writable_by=user)
    env = CondaEnv(run, safe_pip_bin, prefix, [wheelhouse], user, backend)
    install_setuptools(env.prefix)
    project = make_project(env.prefix.path.parent, "devpkg", "0.1", owner=env.user)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[project.scripts]\ndemo-rec = "devpkg:main"\n')
    script = env.prefix.bin / "demo-rec"
    condas = script.read_bytes()
    proc = env.pip("install", "--no-build-isolation", "-e", str(project))
    assert proc.returncode == DENIED, (proc.stdout, proc.stderr)
    assert "rule:    conda-owned" in proc.stderr and "bin/demo-rec of demo-rec" in proc.stderr
    assert "devpkg 0.1" in proc.stderr  # uv's plan had no version: the one uv built
    assert script.read_bytes() == condas
    assert dist_infos(env.site, "devpkg") == []
    assert audit_records(env.prefix)[-1]["rule"] == "conda-owned"
    # without the clash the developer install runs, as the same user
    pyproject.write_text(pyproject.read_text().replace("demo-rec =", "devpkg-tool ="))
    proc = env.pip("install", "--no-build-isolation", "-e", str(project))
    assert proc.returncode == 0, proc.stderr
    assert installer_of(env.site, "devpkg") == env.installer
    assert (env.prefix.bin / "devpkg-tool").exists() and script.read_bytes() == condas


@pytest.mark.parametrize("backend", WITH_POLICY, indirect=True)
def test_the_override_flag_needs_the_policy(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "--replace-conda-packages", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert "--replace-conda-packages is not allowed by the policy here" in proc.stderr
    assert conda_env.six_is_condas()

    proc = conda_env.pip("install", "needs-six", system_policy=ALLOW_OVERRIDE)
    assert proc.returncode == DENIED, proc.stderr
    assert "to replace them anyway, knowingly: add --replace-conda-packages" in proc.stderr

    proc = conda_env.pip(
        "install", "--replace-conda-packages", "needs-six", system_policy=ALLOW_OVERRIDE
    )
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "six") == ["six-1.17.0.dist-info"]
    assert installer_of(conda_env.site, "six") == conda_env.installer
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed"
    assert "--replace-conda-packages" in record["reason"]
    assert f"{conda_env.six} -> 1.17.0 (pip)" in record["reason"]


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_a_policy_without_protection_lets_pip_replace(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "needs-six", system_policy=UNPROTECTED)
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "six") == ["six-1.17.0.dist-info"]
    assert installer_of(conda_env.site, "six") == conda_env.installer


# --- pip's behaviour is kept ---------------------------------------------------------------


@pip_only  # pip's --report (uv has none: with uv it is a usage error, tested in test_uv.py)
def test_dry_run_report_to_stdout_is_pips_own(root_env: CondaEnv) -> None:
    args = ["install", "--dry-run", "--quiet", "--report", "-", "needs-six"]
    ours = root_env.pip(*args)
    bare = root_env.bare_pip(*args, "--break-system-packages")
    assert ours.returncode == 0 == bare.returncode, ours.stderr
    # a dry run installs nothing, so nothing is refused; the report is pip's, on stdout
    report = json.loads(ours.stdout)
    assert report == json.loads(bare.stdout)
    assert {i["metadata"]["name"] for i in report["install"]} == {"needs-six", "six"}
    assert root_env.six_is_condas()


@pip_only  # pip's --report and pip's output
def test_report_file_and_output_of_an_allowed_install(root_env: CondaEnv, shared_tmp: Path) -> None:
    report = shared_tmp / "report.json"
    proc = root_env.pip("install", "--report", str(report), "plain")
    assert proc.returncode == 0, proc.stderr
    assert "Successfully installed plain-1.0" in proc.stdout
    data = json.loads(report.read_text())
    assert [i["metadata"]["name"] for i in data["install"]] == ["plain"]


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_pips_exit_code_passes_through(root_env: CondaEnv) -> None:
    """The installer's own failure and exit code (pip's, or uv's on its plan)."""
    proc = root_env.pip("install", "no-such-project")
    assert proc.returncode == 1, proc.stderr
    said = {PIP: "No matching distribution found for no-such-project"}
    assert said.get(root_env.backend, "no-such-project was not found") in proc.stderr
    assert "refused" not in proc.stderr
    record = audit_records(root_env.prefix)[-1]
    assert record["outcome"] == "failed" and record["exit_code"] == 1


@pip_only  # pip's internals: its pause point
def test_a_pip_without_the_hook_fails_closed(root_env: CondaEnv) -> None:
    install_py = root_env.site / "pip" / "_internal" / "commands" / "install.py"
    text = install_py.read_text()
    install_py.unlink()  # a hardlink into rattler's package cache: never write through it
    # a pip whose install command no longer calls the function by that module-level name
    moved = text.replace("import install_given_reqs", "import install_given_reqs as _moved")
    moved = moved.replace("= install_given_reqs(", "= _moved(")
    assert moved.count("_moved") == 2
    install_py.write_text(moved)
    proc = root_env.pip("install", "plain")
    assert proc.returncode == DENIED, proc.stderr
    assert "cannot be protected" in proc.stderr
    assert dist_infos(root_env.site, "plain") == []
    # where nothing needs protecting, plain pip runs
    proc = root_env.pip("install", "plain", system_policy=UNPROTECTED)
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(root_env.site, "plain") == ["plain-1.0.dist-info"]


@pip_only  # pip's internals: its report
def test_a_pip_whose_report_fails_is_still_checked(root_env: CondaEnv) -> None:
    module = root_env.site / "pip" / "_internal" / "models" / "installation_report.py"
    text = module.read_text()
    module.unlink()  # a hardlink into rattler's package cache
    broken = text.replace(
        "    def _install_req_to_dict(cls, ireq: InstallRequirement) -> Dict[str, Any]:\n",
        "    def _install_req_to_dict(cls, ireq: InstallRequirement) -> Dict[str, Any]:\n"
        "        raise AssertionError('no download_info')\n",
    )
    assert broken != text
    module.write_text(broken)
    # the names and versions come from the requirements' metadata instead
    proc = root_env.pip("install", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert f"{root_env.six} -> 1.17.0 (pip)" in proc.stderr
    assert root_env.six_is_condas()
    proc = root_env.pip("install", "plain")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(root_env.site, "plain") == ["plain-1.0.dist-info"]


# --- uninstall ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_uninstall_of_a_conda_package_is_refused(refusing_env: CondaEnv, shared_tmp: Path) -> None:
    y = yes(refusing_env.backend)
    proc = refusing_env.pip("uninstall", *y, "six")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert f"{refusing_env.six} -> removed by pip" in proc.stderr
    assert "conda remove six" in proc.stderr
    assert refusing_env.six_is_condas()
    for spelling in ("SIX>=1", "Six==1.16.0"):
        proc = refusing_env.pip("uninstall", *y, spelling)
        assert proc.returncode == DENIED, proc.stderr
    requirements = shared_tmp / "remove.txt"
    requirements.write_text("# conda's\nsix\n")
    requirements.chmod(0o644)
    proc = refusing_env.pip("uninstall", *y, "-r", str(requirements))
    assert proc.returncode == DENIED, proc.stderr
    assert refusing_env.six_is_condas()


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_uninstall_of_pip_itself_is_refused(refusing_env: CondaEnv) -> None:
    # pip in a conda env is conda's (its record lists the dist-info)
    proc = refusing_env.pip("uninstall", *yes(refusing_env.backend), "pip")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert dist_infos(refusing_env.site, "pip") != []


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_uninstall_with_the_override_where_allowed(conda_env: CondaEnv) -> None:
    proc = conda_env.pip(
        "uninstall",
        *yes(conda_env.backend),
        "--replace-conda-packages",
        "six",
        system_policy=ALLOW_OVERRIDE,
    )
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "six") == []
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed"
    assert f"{conda_env.six} -> removed by pip" in record["reason"]
    assert record["changes"]["removed"] == [{"name": "six", "version": "1.16.0"}]
    assert record["installer"] == conda_env.installer


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_uninstall_of_a_pip_package_runs(conda_env: CondaEnv) -> None:
    assert conda_env.pip("install", "plain").returncode == 0
    proc = conda_env.pip("uninstall", *yes(conda_env.backend), "plain")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "plain") == []


# --- the oldest supported pip and the newest -----------------------------------------------


@pip_only  # pip's pause point in each pip
@pytest.mark.parametrize("pip_version", ["22.2", "newest"])
def test_the_hook_in_each_pip(root_env: CondaEnv, pip_version: str) -> None:
    """pip 22.2 (downloaded once per cache) and the newest (the test venv's, repacked)."""
    pip_wheel = next(pip_wheel_dir(pip_version).glob("pip-*.whl"))
    swap = root_env.bare_pip("install", "-q", "--force-reinstall", "--no-deps", str(pip_wheel))
    assert swap.returncode == 0, swap.stderr
    proc = root_env.pip("install", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert root_env.six_is_condas() and dist_infos(root_env.site, "needs_six") == []
    args = ["install", "--dry-run", "--quiet", "--report", "-", "needs-six"]
    ours, bare = root_env.pip(*args), root_env.bare_pip(*args)
    assert ours.returncode == 0 == bare.returncode, ours.stderr
    mine, theirs = json.loads(ours.stdout), json.loads(bare.stdout)
    mine.pop("environment"), theirs.pop("environment")
    assert mine == theirs
    proc = root_env.pip("install", "plain")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(root_env.site, "plain") == ["plain-1.0.dist-info"]
