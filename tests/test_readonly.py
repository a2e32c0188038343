"""Rule read-only-env end to end: a conda-store env (a root-owned build behind the
`envs/<name>` symlink) used by an unprivileged user.  The refusal installs nothing,
falls back to nothing, and hands over the next step: the env's spec with the request
added, ready for conda-store; for a developer install, `safe-pip devenv`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support.prefixes import CondaStoreEnv, make_conda_store_env
from support.run import Runner
from support.wheels import make_project

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
POLICY = 'version = 1\n[conda-store]\nurl = "https://hub.example.org/conda-store"\n'


def home_files(home: Path) -> list[Path]:
    return [p for p in home.rglob("*") if p.is_file()]


def local_lib(home: Path) -> list[Path]:
    return list((home / ".local" / "lib").rglob("*")) if (home / ".local").exists() else []


@pytest.fixture
def store_env(shared_tmp: Path) -> CondaStoreEnv:
    # by hand, not by py-rattler: the shape of a conda-store build (build-key directory,
    # envs/<name> symlink, lockfile history); the real-installers fixtures test its records
    return make_conda_store_env(shared_tmp / "store", "analytics", "analysis")


def pip(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, *args: str, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{store_env.link}/bin:/usr/bin:/bin"}
    return run([*safe_pip_bin, *args], user=NOBODY, env=env, system_policy=POLICY, **kw)


def with_specs_in_history(store_env: CondaStoreEnv) -> None:
    """A build whose history names its specs (`conda env create`, older conda-store)."""
    history = store_env.prefix.conda_meta / "history"
    text = history.read_text().rstrip("\n")
    history.write_text(text + "\n# update specs: ['python=3.11', 'pip']\n")


def test_install_is_refused_with_the_rebuilt_spec(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, wheelhouse: Path
) -> None:
    with_specs_in_history(store_env)
    proc = pip(
        run,
        safe_pip_bin,
        store_env,
        "install",
        "demo-a==1.0",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    read-only-env" in proc.stderr
    home = run.home(NOBODY)
    # no user-site fallback, nothing installed anywhere
    assert local_lib(home) == []
    assert not list(store_env.prefix.site_packages.glob("demo_a-*"))
    # the spec, with the request in its pip: section
    spec = home / "safe-pip-requests" / "analysis.environment.yml"
    assert str(spec) in proc.stderr
    text = spec.read_text()
    assert "name: analysis" in text
    assert "- python=3.11" in text
    assert "- pip:" in text and "demo-a==1.0" in text
    # the request body for conda-store's REST API, next to it
    body = json.loads((home / "safe-pip-requests" / "analysis.specification.json").read_text())
    assert body == {
        "namespace": "analytics",
        "specification": text,
        "environment_name": "analysis",
        "environment_description": "requested by nobody with safe-pip: demo-a==1.0",
    }
    assert "submit it to conda-store: safe-pip request" in proc.stderr
    assert "https://hub.example.org/conda-store/api/v1/specification/" in proc.stderr
    assert f"--data @{home}/safe-pip-requests/analysis.specification.json" in proc.stderr
    assert "open the env analytics/analysis" in proc.stderr
    assert spec.stat().st_uid == NOBODY


def test_a_lock_file_build_gets_the_lines_to_add(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, wheelhouse: Path
) -> None:
    # conda-store builds with conda-lock: the history names no specs, so a spec made
    # from it would drop every conda package; the request goes into conda-store's own
    proc = pip(
        run,
        safe_pip_bin,
        store_env,
        "install",
        "demo-a==1.0",
        "demo-b",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "open the env analytics/analysis, edit its specification and add under pip:" in (
        proc.stderr
    )
    assert "- demo-a==1.0" in proc.stderr and "- demo-b" in proc.stderr
    assert "built from a lock file" in proc.stderr
    assert not (run.home(NOBODY) / "safe-pip-requests").exists()
    assert local_lib(run.home(NOBODY)) == []


def test_without_a_writable_home_the_spec_is_printed(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, wheelhouse: Path
) -> None:
    with_specs_in_history(store_env)
    home = run.home(NOBODY)
    home.chmod(0o555)
    proc = pip(
        run,
        safe_pip_bin,
        store_env,
        "install",
        "demo-b",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "your home is not writable" in proc.stderr
    assert "- demo-b" in proc.stderr
    assert home_files(home) == []


def test_requirements_file_requests_go_into_the_spec(
    run: Runner,
    safe_pip_bin: list[str],
    store_env: CondaStoreEnv,
    shared_tmp: Path,
) -> None:
    with_specs_in_history(store_env)
    requirements = shared_tmp / "req.txt"
    requirements.write_text("# wanted\nrequests>=2.31  # http\n-i https://example.org/simple\n")
    requirements.chmod(0o644)
    proc = pip(run, safe_pip_bin, store_env, "install", "-r", str(requirements))
    assert proc.returncode == DENIED, proc.stderr
    text = (run.home(NOBODY) / "safe-pip-requests" / "analysis.environment.yml").read_text()
    assert "requests>=2.31" in text
    assert "example.org" not in text.split("- pip:")[1].split("requests")[1]


def test_editable_install_points_at_devenv(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, shared_tmp: Path
) -> None:
    project = make_project(shared_tmp / "work", "mypkg", "0.1", owner=NOBODY)
    proc = pip(run, safe_pip_bin, store_env, "install", "-e", str(project), cwd=project)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    read-only-env" in proc.stderr
    assert f"safe-pip devenv {project}" in proc.stderr
    assert local_lib(run.home(NOBODY)) == []
    # the same with the usual `-e .` and --no-build-isolation
    proc = pip(
        run, safe_pip_bin, store_env, "install", "--no-build-isolation", "-e", ".", cwd=project
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "safe-pip devenv ." in proc.stderr
    assert not (run.home(NOBODY) / "safe-pip-requests").exists()


def test_uninstall_is_refused(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv
) -> None:
    proc = pip(run, safe_pip_bin, store_env, "uninstall", "-y", "pip")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    read-only-env" in proc.stderr
    assert list(store_env.prefix.site_packages.glob("pip-*.dist-info"))


def test_the_env_through_python_and_the_build_dir(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv, wheelhouse: Path
) -> None:
    with_specs_in_history(store_env)
    spec = run.home(NOBODY) / "safe-pip-requests" / "analysis.environment.yml"
    for python in (store_env.link / "bin" / "python", store_env.prefix.python):
        proc = run(
            [
                *safe_pip_bin,
                "--python",
                str(python),
                "install",
                "demo-a",
                "--no-index",
                "--find-links",
                str(wheelhouse),
            ],
            user=NOBODY,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == DENIED, proc.stderr
        assert "rule:    read-only-env" in proc.stderr
        assert local_lib(run.home(NOBODY)) == []
        # both routes name the same env in conda-store
        assert "open the env analytics/analysis" in proc.stderr
        assert "name: analysis\n" in spec.read_text()
        spec.unlink()


def test_no_secret_in_the_lines_to_add(
    run: Runner, safe_pip_bin: list[str], store_env: CondaStoreEnv
) -> None:
    proc = pip(
        run,
        safe_pip_bin,
        store_env,
        "install",
        "git+https://ghp_T0KENabcdef123456@github.com/org/repo.git",
        "--index-url",
        "https://u:s3cret@pypi.example.org/simple",
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "github.com/org/repo.git" in proc.stderr
    assert "ghp_T0KEN" not in proc.stderr and "s3cret" not in proc.stderr
