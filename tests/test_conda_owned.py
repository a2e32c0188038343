"""Rule conda-owned end to end: the real safe-pip, the real pip, a conda env made by
py-rattler with a conda-forge-shaped six, and what is on disk afterwards.

The check sits between pip's resolution and its installation (preflight.py): one
pip run, and pip installs exactly what was checked or nothing.
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
from support.conda_channel import channel_url, local_channel
from support.prefixes import Prefix
from support.run import Runner, pip_wheel_dir
from support.wheels import build_wheel

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
ALLOW_OVERRIDE = "version = 1\n[conda]\nallow-override = true\n"
UNPROTECTED = "version = 1\n[conda]\nprotect-conda-packages = false\n"


def dist_infos(site: Path, name: str) -> list[str]:
    return sorted(p.name for p in site.glob(f"{name}-*.dist-info"))


def audit_records(prefix: Prefix) -> list[dict[str, Any]]:
    return operations_in(prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")


class CondaEnv:
    """A conda env (writable by `user`) with six 1.16.0 from the suite's channel."""

    def __init__(
        self, run: Runner, safe_pip: list[str], prefix: Prefix, links: list[Path], user: int | None
    ) -> None:
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.links = links
        self.user = user

    @property
    def site(self) -> Path:
        return self.prefix.site_packages

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {"PATH": f"{self.prefix.bin}:/usr/bin:/bin", **extra}

    def index_args(self) -> list[str]:
        args = ["--no-index"]
        for link in self.links:
            args += ["--find-links", str(link)]
        return args

    def pip(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        argv = [*self.safe_pip, *args]
        if args and args[0] == "install":
            argv += self.index_args()
        env = kw.pop("env", None) or self.env()
        return self.run(argv, user=self.user, env=env, **kw)

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
    """needs-six 1.0 (requires six>=1.17), plain 1.0 (no dependencies)."""
    house = shared_session_tmp / "conda-owned-wheels"
    build_wheel(house, "needs-six", "1.0", requires=["six>=1.17"])
    build_wheel(house, "plain", "1.0")
    os.chmod(house, 0o755)
    return house


@pytest.fixture(params=[None, NOBODY], ids=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


def _conda_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    user: int | None,
) -> CondaEnv:
    prefix = conda_env_factory("six", writable_by=user)
    return CondaEnv(run, safe_pip_bin, prefix, [wheelhouse, extra_wheels], user)


@pytest.fixture
def conda_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
    user: int | None,
) -> CondaEnv:
    return _conda_env(run, safe_pip_bin, conda_env_factory, wheelhouse, extra_wheels, user)


@pytest.fixture
def root_env(
    run: Runner,
    safe_pip_bin: list[str],
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
) -> CondaEnv:
    # owned by root; tests that edit pip's files unlink them first (they are hardlinks
    # into rattler's package cache)
    return _conda_env(run, safe_pip_bin, conda_env_factory, wheelhouse, extra_wheels, 0)


# --- install ----------------------------------------------------------------------------


def test_a_dependency_upgrade_of_a_conda_package_is_refused(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert f"{conda_env.six} -> 1.17.0 (pip)" in proc.stderr
    assert "conda install six=1.17.0" in proc.stderr
    assert "--no-deps" in proc.stderr
    # nothing was installed: not the conflict, not the package that asked for it
    assert conda_env.six_is_condas()
    assert dist_infos(conda_env.site, "needs_six") == []
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "denied" and record["rule"] == "conda-owned"
    assert record["changes"] == {"installed": [], "removed": []}


def test_no_deps_installs_the_package_and_leaves_condas_six(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "--no-deps", "needs-six")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "needs_six") == ["needs_six-1.0.dist-info"]
    assert conda_env.six_is_condas()


def test_a_requested_conda_package_is_refused_without_the_no_deps_tip(
    conda_env: CondaEnv,
) -> None:
    proc = conda_env.pip("install", "six==1.17.0")
    assert proc.returncode == DENIED, proc.stderr
    assert f"{conda_env.six} -> 1.17.0 (pip) [upgrade]" in proc.stderr
    assert "--no-deps" not in proc.stderr
    assert conda_env.six_is_condas()


@pytest.mark.parametrize(
    "args",
    [
        ["--force-reinstall", "six==1.17.0"],
        ["--ignore-installed", "six"],
        ["--upgrade", "six"],
        ["-r", "REQUIREMENTS"],
        ["--target", "SITE", "six"],
    ],
    ids=["force-reinstall", "ignore-installed", "upgrade", "requirements-file", "target-site"],
)
def test_other_routes_to_replace_it(root_env: CondaEnv, shared_tmp: Path, args: list[str]) -> None:
    requirements = shared_tmp / "requirements.txt"
    requirements.write_text("plain\nneeds-six  # wants a newer six\n")
    args = [
        str(requirements) if a == "REQUIREMENTS" else str(root_env.site) if a == "SITE" else a
        for a in args
    ]
    proc = root_env.pip("install", *args)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert root_env.six_is_condas()
    assert dist_infos(root_env.site, "plain") == []


def test_an_install_that_touches_nothing_of_condas_runs(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "demo-b")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "demo_a") == ["demo_a-2.0.dist-info"]
    assert dist_infos(conda_env.site, "demo_b") == ["demo_b-1.0.dist-info"]
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed" and record["outcome"] == "ok"
    names = sorted(item["name"] for item in record["changes"]["installed"])
    assert names == ["demo-a", "demo-b"]
    # the sources come from the report of what pip installed
    assert all(item["source"]["kind"] == "file" for item in record["changes"]["installed"])


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
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed"
    assert "--replace-conda-packages" in record["reason"]
    assert f"{conda_env.six} -> 1.17.0 (pip)" in record["reason"]


def test_a_policy_without_protection_lets_pip_replace(conda_env: CondaEnv) -> None:
    proc = conda_env.pip("install", "needs-six", system_policy=UNPROTECTED)
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "six") == ["six-1.17.0.dist-info"]


# --- pip's behaviour is kept ---------------------------------------------------------------


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


def test_report_file_and_output_of_an_allowed_install(root_env: CondaEnv, shared_tmp: Path) -> None:
    report = shared_tmp / "report.json"
    proc = root_env.pip("install", "--report", str(report), "plain")
    assert proc.returncode == 0, proc.stderr
    assert "Successfully installed plain-1.0" in proc.stdout
    data = json.loads(report.read_text())
    assert [i["metadata"]["name"] for i in data["install"]] == ["plain"]


def test_pips_exit_code_passes_through(root_env: CondaEnv) -> None:
    proc = root_env.pip("install", "no-such-project")
    assert proc.returncode == 1, proc.stderr
    assert "No matching distribution found for no-such-project" in proc.stderr
    assert "refused" not in proc.stderr
    record = audit_records(root_env.prefix)[-1]
    assert record["outcome"] == "failed" and record["exit_code"] == 1


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


def test_uninstall_of_a_conda_package_is_refused(conda_env: CondaEnv, shared_tmp: Path) -> None:
    proc = conda_env.pip("uninstall", "-y", "six")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert f"{conda_env.six} -> removed by pip" in proc.stderr
    assert "conda remove six" in proc.stderr
    assert conda_env.six_is_condas()
    for spelling in ("SIX>=1", "Six==1.16.0"):
        proc = conda_env.pip("uninstall", "-y", spelling)
        assert proc.returncode == DENIED, proc.stderr
    requirements = shared_tmp / "remove.txt"
    requirements.write_text("# conda's\nsix\n")
    requirements.chmod(0o644)
    proc = conda_env.pip("uninstall", "-y", "-r", str(requirements))
    assert proc.returncode == DENIED, proc.stderr
    assert conda_env.six_is_condas()


def test_uninstall_of_pip_itself_is_refused(conda_env: CondaEnv) -> None:
    # pip in a conda env is conda's (its record lists the dist-info)
    proc = conda_env.pip("uninstall", "-y", "pip")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    assert dist_infos(conda_env.site, "pip") != []


def test_uninstall_with_the_override_where_allowed(conda_env: CondaEnv) -> None:
    proc = conda_env.pip(
        "uninstall", "-y", "--replace-conda-packages", "six", system_policy=ALLOW_OVERRIDE
    )
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "six") == []
    record = audit_records(conda_env.prefix)[-1]
    assert record["decision"] == "allowed"
    assert f"{conda_env.six} -> removed by pip" in record["reason"]
    assert record["changes"]["removed"] == [{"name": "six", "version": "1.16.0"}]


def test_uninstall_of_a_pip_package_runs(conda_env: CondaEnv) -> None:
    assert conda_env.pip("install", "plain").returncode == 0
    proc = conda_env.pip("uninstall", "-y", "plain")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(conda_env.site, "plain") == []


# --- the oldest supported pip and the newest -----------------------------------------------


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
