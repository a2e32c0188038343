"""uv under the same policy, end to end: the real safe-pip, the real uv from PyPI (the test
extra) and the real pip, offline (--no-index, --find-links), on real non-venv prefixes, as
an unprivileged user.  What lands on disk (or does not) is the assertion.

The routes and the conda-owned cases run for every backend in test_routes.py and
test_conda_owned.py (pip, `--installer uv`, the uv door); here: the records of the
backends compared field by field, the uv shim `protect --shim` writes (`<env>/bin/uv pip
...`), and choosing uv by policy.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.backends import DOOR, PIP, UV, GuardedEnv, yes
from support.prefixes import BasePython, Prefix, add_conda_package, make_prefix
from support.run import Runner
from support.wheels import build_wheel

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
#: record fields that may differ between the records two backends write for the same
#: operation: which installer carried it out ...
INSTALLER_FIELDS = {"installer", "installer_version"}
#: ... and what identifies and times one run (its ids, the hash chain, its process)
RUN_FIELDS = {"id", "time", "prev", "intent", "plan_for", "duration_s", "pid", "pid_start"}


def records(prefix: Prefix, kind: str = "outcome") -> list[dict[str, Any]]:
    """The env's audit records of one kind (outcomes: what each operation came to), oldest
    first: the env's log and, once protected, the users' drop box beside it."""
    logs = sorted((prefix.path / "var" / "log" / "safe-pip").rglob("*.jsonl"))
    found = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line]
    found.sort(key=lambda r: str(r["time"]))
    return [r for r in found if r.get("kind", "outcome") == kind]


def dist_infos(site: Path, name: str) -> list[str]:
    return sorted(p.name for p in site.glob(f"{name}-*.dist-info"))


def uv_binary(tool: list[str]) -> Path:
    """The uv next to the tool venv's safe-pip (the test extra's `uv`, as
    `safe-pip-policy[uv]` installs it)."""
    path = Path(tool[0]).parent / "uv"
    if not path.exists():
        pytest.skip("uv is not installed in the test venv (pip install -e '.[test]')")
    return path


class Env(GuardedEnv):
    """One env and one user; installs go through the backend under test, with --python."""

    @property
    def safe_pip_uv(self) -> Path:
        return uv_binary(self.safe_pip)

    def pip(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """`safe-pip --python <env> [--installer uv] <args>` (pip's command line)."""
        python = kw.pop("python", None) or str(self.prefix.python)
        return super().pip("--python", python, *args, **kw)

    def uv(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """`<env>/bin/uv <args>`: the uv door (needs `protect --shim` on an env with uv)."""
        argv = [str(self.prefix.bin / "uv"), *args]
        if args[:2] in (("pip", "install"), ("pip", "sync")):
            argv += self.index_args()
        env = kw.pop("env", None) or self.env()
        return self.run(argv, user=self.user, env=env, **kw)


@pytest.fixture(scope="session")
def extra_wheels(shared_session_tmp: Path) -> Path:
    """needs-six 1.0 (requires six>=1.17)."""
    house = shared_session_tmp / "uv-wheels"
    build_wheel(house, "needs-six", "1.0", requires=["six>=1.17"])
    os.chmod(house, 0o755)
    return house


@pytest.fixture(scope="session")
def shared_envs(shared_session_tmp: Path) -> dict[str, Prefix]:
    """Root-owned envs no test changes: a marked conda base, a shared (read-only) env."""
    return {
        "base": make_prefix(shared_session_tmp, "conda-base", "uv-base", marker=True),
        "shared": make_prefix(shared_session_tmp, "conda-env", "uv-shared", marker=True),
    }


@pytest.fixture
def make_env(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    extra_wheels: Path,
) -> Callable[..., Env]:
    uv_binary(safe_pip_bin)

    def make(backend: str = "pip", **options: Any) -> Env:
        prefix = prefix_factory("conda-env", writable_by=NOBODY, **options)
        return Env(run, safe_pip_bin, prefix, [wheelhouse, extra_wheels], NOBODY, backend)

    return make


def with_uv(env: Env) -> Env:
    """Give the env its own uv (as `conda install uv` would) and protect it with the shims."""
    target = env.prefix.bin / "uv"
    os.link(uv_binary(env.safe_pip), target)
    proc = env.run([*env.safe_pip, "protect", "--shim", "--python", str(env.prefix.python)])
    assert proc.returncode == 0, proc.stderr
    assert "# safe-pip shim" in target.read_text(errors="replace")[:200]
    return env


# --- same decision, same record -------------------------------------------------------


def by_operation(prefix: Prefix) -> list[dict[str, dict[str, Any]]]:
    """Each operation's records, oldest first: {"outcome": ..., "intent": ..., "plan": ...}
    (a refusal before any intent has only its outcome)."""
    intents = {r["id"]: r for r in records(prefix, "intent")}
    plans = {r["plan_for"]: r for r in records(prefix, "plan")}
    found = []
    for outcome in records(prefix):
        op = {"outcome": outcome}
        if outcome["intent"] is not None:
            op["intent"] = intents[outcome["intent"]]
            if outcome["intent"] in plans:
                op["plan"] = plans[outcome["intent"]]
        found.append(op)
    return found


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The fields two records disagree on; an intent's `before` (dist-info -> mtime) by its
    names only (an uninstall's targets were installed at other times)."""
    differ = {}
    for key in mine.keys() | theirs.keys():
        a, b = mine.get(key), theirs.get(key)
        if key == "before" and isinstance(a, dict) and isinstance(b, dict):
            a, b = sorted(a), sorted(b)
        if a != b:
            differ[key] = (a, b)
    return differ


def test_the_records_of_the_backends_differ_only_in_installer_and_timings(
    make_env: Callable[..., Env],
) -> None:
    """The same operations (an install, a conda-owned refusal, an uninstall) on the same
    env with the same wheels and policy, by pip, by uv (`--installer uv`) and through the
    uv door: every record (intent, plan, outcome) compared field by field."""
    env = make_env()
    add_conda_package(env.prefix, "six", "1.16.0")
    for backend in (PIP, UV, DOOR):
        env.backend = backend
        # the door finds the env's python on PATH; pip's command line names it (--python)
        run = (lambda *a: GuardedEnv.pip(env, *a)) if backend == DOOR else env.pip
        done = run("install", "demo-b")
        assert done.returncode == 0, done.stderr
        assert (env.site / "demo_b-1.0.dist-info" / "INSTALLER").read_text().strip() == (
            "pip" if backend == PIP else "uv"
        )
        # installed by name from --find-links, as bare pip and bare uv install them: no
        # direct reference (`pip freeze` says demo-b==1.0, not a file URL)
        for dist in ("demo_a-2.0", "demo_b-1.0"):
            assert not (env.site / f"{dist}.dist-info" / "direct_url.json").exists(), backend
        refused = run("install", "needs-six")
        assert refused.returncode == DENIED and "rule:    conda-owned" in refused.stderr
        removed = run("uninstall", *yes(backend), "demo-a", "demo-b")
        assert removed.returncode == 0, removed.stderr
        assert dist_infos(env.site, "demo_a") == dist_infos(env.site, "demo_b") == []
    operations = by_operation(env.prefix)
    assert [op["outcome"]["decision"] for op in operations] == ["allowed", "denied", "allowed"] * 3
    by_pip, by_uv, by_door = operations[:3], operations[3:6], operations[6:]
    for kind in ("intent", "plan", "outcome"):
        assert [kind in op for op in by_pip] == [kind in op for op in by_uv], kind
    allowed = INSTALLER_FIELDS | RUN_FIELDS
    for pip_op, uv_op, door_op in zip(by_pip, by_uv, by_door):
        for kind, pip_record in pip_op.items():
            differ = differences(pip_record, uv_op[kind])
            assert differ.keys() <= allowed, {k: differ[k] for k in differ.keys() - allowed}
            assert pip_record["installer"] == "pip" and uv_op[kind]["installer"] == "uv"
            # the door's records keep uv's own command line: `uv pip install ...`
            door = differences(pip_record, door_op[kind])
            assert door.keys() <= allowed | {"argv"}, {k: door[k] for k in door.keys() - allowed}
            assert door_op[kind]["installer"] == "uv"
    pip_outcome, uv_outcome = by_pip[0]["outcome"], by_uv[0]["outcome"]
    assert pip_outcome["installer_version"] == pip_outcome["pip_version"]
    assert uv_outcome["installer_version"].count(".") == 2
    assert [i["name"] for i in uv_outcome["changes"]["installed"]] == ["demo-a", "demo-b"]
    assert by_door[0]["outcome"]["argv"][:2] == ["pip", "install"]
    # export replays every backend's records alike: all three installs were undone
    env.backend = UV
    assert env.pip("install", "demo-b").returncode == 0
    exported = env.run(
        [*env.safe_pip, "export", "--python", str(env.prefix.python)], user=env.user, env=env.env()
    )
    assert exported.returncode == 0, exported.stderr
    assert "demo-a==2.0" in exported.stdout and "demo-b==1.0" in exported.stdout


# --- the uv door ---------------------------------------------------------------------------

#: (uv arguments, UV_* variables, the rule); {home}: the user's home, {base}: base's python
#: through the shim, routes out of its env (every route of the uv door, through `safe-pip
#: uv pip`, is in test_routes.DOOR_ROUTES): (uv arguments, UV_* variables, the rule);
#: {home}: the user's home, {base}/{base_bin}: base's python and bin, {shared}: a
#: read-only env's python
SHIM_ROUTES = [
    (["--target", "{home}/.local/lib/python3.11/site-packages"], {}, "user-site"),
    ([], {"UV_PYTHON": "{base}"}, "base-env"),
    (["--system"], {"PATH": "{base_bin}:/usr/bin:/bin"}, "base-env"),
    (["--python", "{shared}"], {}, "read-only-env"),
]


def test_the_uv_door(make_env: Callable[..., Env], shared_envs: dict[str, Prefix]) -> None:
    env = with_uv(make_env("uv", marker=True))
    add_conda_package(env.prefix, "six", "1.16.0")
    home = str(env.run.home(env.user))
    base = shared_envs["base"]

    def fill(text: str) -> str:
        return text.format(
            home=home, base=base.python, base_bin=base.bin, shared=shared_envs["shared"].python
        )

    # uv pip install|uninstall go through safe-pip: decided, carried out by uv, recorded
    proc = env.uv("pip", "install", "demo-a==1.0")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(env.site, "demo_a") == ["demo_a-1.0.dist-info"]
    record = records(env.prefix)[-1]
    assert record["installer"] == "uv" and record["argv"][:2] == ["pip", "install"]
    assert record["changes"]["installed"][0]["source"]["kind"] == "file"
    listed = env.uv("pip", "list")  # read-only: the real uv, about this env
    assert listed.returncode == 0, listed.stderr
    assert "demo-a" in listed.stdout
    version = env.uv("--version")
    assert version.returncode == 0 and version.stdout.startswith("uv ")
    gone = env.uv("pip", "uninstall", "demo-a")
    assert gone.returncode == 0, gone.stderr
    assert dist_infos(env.site, "demo_a") == []
    assert [r["command"] for r in records(env.prefix)] == ["install", "uninstall"]

    # the same routes are refused as for pip
    for args, variables, rule in SHIM_ROUTES:
        proc = env.uv(
            "pip",
            "install",
            *[fill(a) for a in args],
            "demo-a",
            env=env.env(**{k: fill(v) for k, v in variables.items()}),
        )
        assert proc.returncode == DENIED, (args, variables, proc.stderr)
        assert f"rule:    {rule}" in proc.stderr and "uv pip install" in proc.stderr, args
    assert not (Path(home) / ".local" / "lib").exists()
    for site in (env.site, base.site_packages):
        assert dist_infos(site, "demo_a") == []

    # uv pip sync may not remove what conda installed
    wanted = env.prefix.path / "wanted.txt"
    wanted.write_text("demo-a==2.0\n")
    os.chmod(wanted, 0o644)
    proc = env.uv("pip", "sync", str(wanted))
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr and "removed" in proc.stderr
    assert dist_infos(env.site, "six") == ["six-1.16.0.dist-info"]
    assert dist_infos(env.site, "demo_a") == []
    # where the policy lets conda's packages go, sync carries out exactly its plan
    unprotected = "version = 1\n[conda]\nprotect-conda-packages = false\n"
    proc = env.uv("pip", "sync", str(wanted), system_policy=unprotected)
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(env.site, "six") == [] and dist_infos(env.site, "demo_a") != []
    changes = records(env.prefix)[-1]["changes"]
    assert [i["name"] for i in changes["removed"]] == ["six"], changes
    assert [(i["name"], i["version"]) for i in changes["installed"]] == [("demo-a", "2.0")]
    log = env.run(
        [*env.safe_pip, "log", "--python", str(env.prefix.python)], user=env.user, env=env.env()
    )
    assert "uv pip sync" in log.stdout and "uv pip install" in log.stdout, log.stdout

    # bare uv would have taken the --target route: the marker does not stop it
    bare = env.run(
        [
            str(env.safe_pip_uv),
            "pip",
            "install",
            "--python",
            str(env.prefix.python),
            *env.index_args(),
            "--target",
            fill(SHIM_ROUTES[0][0][1]),
            "demo-a",
        ],
        user=env.user,
        env=env.env(),
    )
    assert bare.returncode == 0, bare.stderr
    assert (Path(home) / ".local" / "lib" / "python3.11" / "site-packages" / "demo_a").is_dir()

    # unprotect gives the env its own uv back
    back = env.run([*env.safe_pip, "unprotect", "--python", str(env.prefix.python)])
    assert back.returncode == 0, back.stderr
    assert (env.prefix.bin / "uv").read_bytes()[:4] == b"\x7fELF"


# --- choosing uv ------------------------------------------------------------------------


def test_uv_project_commands_may_not_sync_the_protected_env(
    make_env: Callable[..., Env], shared_tmp: Path
) -> None:
    """Through the env's uv shim, `uv sync` with UV_PROJECT_ENVIRONMENT naming the env
    would make it match a project's lock, removing conda's six: refused, recorded, and
    nothing changes; uv's other commands still pass through."""
    env = with_uv(make_env("uv", marker=True))
    add_conda_package(env.prefix, "six", "1.16.0")
    project = shared_tmp / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "proj"\nversion = "0"\ndependencies = []\n[tool.uv]\npackage = false\n'
    )
    os.chmod(shared_tmp, 0o755)
    os.chmod(project, 0o777)
    before = sorted(p.name for p in env.site.iterdir())
    for args in (["sync"], ["add", "demo-a"], ["run", "python", "-c", "pass"]):
        proc = env.uv(*args, env=env.env(UV_PROJECT_ENVIRONMENT=str(env.prefix.path)), cwd=project)
        assert proc.returncode == DENIED, (args, proc.stderr)
        assert "rule:    uv-project-env" in proc.stderr and f"uv {args[0]}" in proc.stderr
    assert sorted(p.name for p in env.site.iterdir()) == before
    assert dist_infos(env.site, "six") == ["six-1.16.0.dist-info"]
    assert not (project / "uv.lock").exists()
    refusals = [r for r in records(env.prefix) if r["rule"] == "uv-project-env"]
    assert len(refusals) == 3 and refusals[0]["argv"][:2] == ["uv", "sync"]
    # a project command that leaves the env alone runs uv itself
    lock = env.uv(
        "lock", "--offline", env=env.env(UV_PROJECT_ENVIRONMENT=str(env.prefix.path)), cwd=project
    )
    assert lock.returncode == 0, lock.stderr
    assert (project / "uv.lock").exists()


def test_choosing_uv(make_env: Callable[..., Env], base_python: BasePython) -> None:
    env = make_env("pip")
    # the policy makes uv the installer of conda envs
    as_default = 'version = 1\n[installer]\nconda-env = "uv"\n'
    proc = env.pip("install", "demo-a==1.0", system_policy=as_default)
    assert proc.returncode == 0, proc.stderr
    assert (env.site / "demo_a-1.0.dist-info" / "INSTALLER").read_text().strip() == "uv"
    assert records(env.prefix)[-1]["installer"] == "uv"
    status = env.run(
        [*env.safe_pip, "status", "--json", "--python", str(env.prefix.python)],
        user=env.user,
        env=env.env(),
        system_policy=as_default,
    )
    installer = json.loads(status.stdout)["installer"]
    assert installer["name"] == "uv" and installer["uv"] == str(uv_binary(env.safe_pip))
    # a pip option uv has no counterpart for: the policy's uv gives way to pip, saying so
    report = env.prefix.path / "report.json"
    proc = env.pip("install", "--report", str(report), "six", system_policy=as_default)
    assert proc.returncode == 0, proc.stderr
    assert "--report" in proc.stderr and "installing with pip instead" in proc.stderr
    assert (env.site / "six-1.17.0.dist-info" / "INSTALLER").read_text().strip() == "pip"
    assert report.is_file() and records(env.prefix)[-1]["installer"] == "pip"
    # a policy without user choice refuses a user's uv
    env.backend = "uv"
    no_choice = "version = 1\n[installer]\nuser-choice = false\n"
    proc = env.pip("install", "demo-b", system_policy=no_choice)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    installer" in proc.stderr
    assert dist_infos(env.site, "demo_b") == []
    # the same safe-pip run by an interpreter with no uv next to it: pip, or a refusal
    tool_site = next(Path(env.safe_pip[0]).parent.parent.glob("lib/python*/site-packages"))
    code = (
        f"import site; site.addsitedir({str(tool_site)!r}); "
        "from safe_pip.cli import entrypoint; entrypoint()"
    )
    env.safe_pip = [str(base_python.python), "-I", "-c", code]
    refuse = 'version = 1\n[installer]\nuv-missing = "refuse"\n'
    proc = env.pip("install", "demo-b", system_policy=refuse)
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    installer" in proc.stderr and "uv is not installed" in proc.stderr
    assert dist_infos(env.site, "demo_b") == []
    proc = env.pip("install", "demo-b")
    assert proc.returncode == 0, proc.stderr
    assert "uv is not installed" in proc.stderr and "installing with pip" in proc.stderr
    assert (env.site / "demo_b-1.0.dist-info" / "INSTALLER").read_text().strip() == "pip"
