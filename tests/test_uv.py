"""uv under the same policy, end to end: the real safe-pip, the real uv from PyPI (the test
extra) and the real pip, offline (--no-index, --find-links), on real non-venv prefixes, as
root and as an unprivileged user.  What lands on disk (or does not) is the assertion.

Each route and conda-owned case runs for both backends: pip (`safe-pip install ...`) and
uv (`safe-pip --installer uv install ...`); the uv door (`<env>/bin/uv pip ...` through the
shim `protect --shim` writes) is checked with uv's own command line.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.prefixes import BasePython, Prefix, add_conda_package, make_prefix
from support.run import Runner
from support.wheels import build_wheel

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
BACKENDS = ["pip", "uv"]
#: record fields that may differ between two runs of the same operation by two backends
RUN_FIELDS = {"id", "time", "prev", "intent", "duration_s", "installer", "installer_version"}


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


class Env:
    """One env and one user; installs go through the backend under test."""

    def __init__(
        self,
        run: Runner,
        safe_pip: list[str],
        prefix: Prefix,
        links: list[Path],
        user: int | None,
        backend: str,
    ) -> None:
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.links = links
        self.user = user
        self.backend = backend

    @property
    def site(self) -> Path:
        return self.prefix.site_packages

    @property
    def safe_pip_uv(self) -> Path:
        return uv_binary(self.safe_pip)

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {"PATH": f"{self.prefix.bin}:/usr/bin:/bin", **extra}

    def index_args(self) -> list[str]:
        args = ["--no-index"]
        for link in self.links:
            args += ["--find-links", str(link)]
        return args

    def pip(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """`safe-pip [--installer uv] <args>` against this env (pip's command line)."""
        chosen = ["--installer", "uv"] if self.backend == "uv" else []
        python = kw.pop("python", None) or str(self.prefix.python)
        argv = [*self.safe_pip, "--python", python, *chosen, *args]
        if args and args[0] == "install":
            argv += self.index_args()
        env = kw.pop("env", None) or self.env()
        return self.run(argv, user=self.user, env=env, **kw)

    def uv(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """`<env>/bin/uv <args>`: the uv door (needs `protect --shim` on an env with uv)."""
        argv = [str(self.prefix.bin / "uv"), *args]
        if args[:2] in (("pip", "install"), ("pip", "sync")):
            argv += self.index_args()
        env = kw.pop("env", None) or self.env()
        return self.run(argv, user=self.user, env=env, **kw)


@pytest.fixture(scope="session")
def extra_wheels(shared_session_tmp: Path) -> Path:
    """needs-six 1.0 (requires six>=1.17); six-fork 1.0, which ships six/__init__.py."""
    house = shared_session_tmp / "uv-wheels"
    build_wheel(house, "needs-six", "1.0", requires=["six>=1.17"])
    build_wheel(house, "six-fork", "1.0", files={"six/__init__.py": "FORK = True\n"})
    os.chmod(house, 0o755)
    return house


@pytest.fixture(scope="session")
def shared_envs(shared_session_tmp: Path) -> dict[str, Prefix]:
    """Root-owned envs no test changes: a marked conda base, a shared (read-only) env."""
    return {
        "base": make_prefix(shared_session_tmp, "conda-base", "uv-base", marker=True),
        "shared": make_prefix(shared_session_tmp, "conda-env", "uv-shared", marker=True),
    }


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


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


def test_the_records_of_both_backends_differ_only_in_installer_and_timings(
    make_env: Callable[..., Env],
) -> None:
    env = make_env()
    first = env.pip("install", "demo-b")
    assert first.returncode == 0, first.stderr
    assert dist_infos(env.site, "demo_a") == ["demo_a-2.0.dist-info"]
    removed = env.pip("uninstall", "-y", "demo-a", "demo-b")
    assert removed.returncode == 0, removed.stderr
    env.backend = "uv"
    second = env.pip("install", "demo-b")
    assert second.returncode == 0, second.stderr
    assert dist_infos(env.site, "demo_b") == ["demo_b-1.0.dist-info"]
    assert (env.site / "demo_b-1.0.dist-info" / "INSTALLER").read_text().strip() == "uv"
    by_pip, _, by_uv = records(env.prefix)
    pip_intent, _, uv_intent = records(env.prefix, "intent")
    assert (pip_intent["installer"], uv_intent["installer"]) == ("pip", "uv")
    assert (by_pip["intent"], by_uv["intent"]) == (pip_intent["id"], uv_intent["id"])
    pip_plan, _, uv_plan = records(env.prefix, "plan")
    assert pip_plan["plan"] == uv_plan["plan"], (pip_plan["plan"], uv_plan["plan"])
    assert (pip_plan["plan_for"], uv_plan["plan_for"]) == (pip_intent["id"], uv_intent["id"])
    assert by_pip["installer"] == "pip" and by_pip["installer_version"] == by_pip["pip_version"]
    assert by_uv["installer"] == "uv" and by_uv["installer_version"].count(".") == 2
    differ = {k for k in by_pip.keys() | by_uv.keys() if by_pip.get(k) != by_uv.get(k)}
    assert differ <= RUN_FIELDS, {k: (by_pip.get(k), by_uv.get(k)) for k in differ - RUN_FIELDS}
    assert [i["name"] for i in by_uv["changes"]["installed"]] == ["demo-a", "demo-b"]
    # export replays uv's records like pip's
    exported = env.run(
        [*env.safe_pip, "export", "--python", str(env.prefix.python)], user=env.user, env=env.env()
    )
    assert exported.returncode == 0, exported.stderr
    assert "demo-a==2.0" in exported.stdout and "demo-b==1.0" in exported.stdout


# --- routes: the decision comes first, whichever backend -------------------------------

#: (arguments, the rule that refuses them); {home}: the user's home
ROUTES = [
    (["--user"], "user-site"),
    (["--target", "{home}/.local/lib/python3.11/site-packages"], "user-site"),
    (["--prefix", "{home}/.local"], "user-site"),
    (["--target", "/tmp/safe-pip-tests/elsewhere"], "outside-env"),
    (["--break-system-packages"], "base-env"),  # with --python {base}
    ([], "read-only-env"),  # with --python {shared}
]
ROUTE_PYTHON = {"base-env": "base", "read-only-env": "shared"}


def test_routes_are_judged_the_same_and_what_is_allowed_lands(
    make_env: Callable[..., Env], shared_envs: dict[str, Prefix], backend: str
) -> None:
    env = make_env(backend, marker=True)
    home = str(env.run.home(env.user))
    for args, rule in ROUTES:
        python = shared_envs[ROUTE_PYTHON[rule]].python if rule in ROUTE_PYTHON else None
        argv = [a.format(home=home) for a in args]
        proc = env.pip("install", *argv, "demo-a", python=python and str(python))
        assert proc.returncode == DENIED, (args, proc.stderr)
        assert f"rule:    {rule}" in proc.stderr, args
    assert not (Path(home) / ".local" / "lib").exists()
    assert not Path("/tmp/safe-pip-tests/elsewhere").exists()
    for site in (env.site, *(p.site_packages for p in shared_envs.values())):
        assert dist_infos(site, "demo_a") == []
    assert {r["installer"] for r in records(env.prefix)} == {backend}
    # the env is marked (PEP 668): the install goes through safe-pip, with this backend
    proc = env.pip("install", "demo-a")
    assert proc.returncode == 0, proc.stderr
    assert dist_infos(env.site, "demo_a") == ["demo_a-2.0.dist-info"]
    installer = (env.site / "demo_a-2.0.dist-info" / "INSTALLER").read_text().strip()
    assert installer == records(env.prefix)[-1]["installer"] == backend


# --- conda-owned: checked on the backend's plan -----------------------------------------


def test_conda_owned_packages_are_protected(make_env: Callable[..., Env], backend: str) -> None:
    env = make_env(backend)
    add_conda_package(env.prefix, "six", "1.16.0")
    proc = env.pip("install", "needs-six")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr and "six 1.16.0" in proc.stderr
    assert dist_infos(env.site, "six") == ["six-1.16.0.dist-info"]
    assert dist_infos(env.site, "needs_six") == []
    record = records(env.prefix)[-1]
    assert (record["rule"], record["installer"]) == ("conda-owned", backend)
    gone = env.pip("uninstall", "-y", "six")
    assert gone.returncode == DENIED, gone.stderr
    assert "rule:    conda-owned" in gone.stderr
    # checked on the files the planned wheel writes, not only on names
    conda_six = (env.site / "six" / "__init__.py").read_text()
    fork = env.pip("install", "six-fork")
    assert fork.returncode == DENIED, fork.stderr
    assert "rule:    conda-owned" in fork.stderr and "six/__init__.py" in fork.stderr
    assert (env.site / "six" / "__init__.py").read_text() == conda_six
    assert dist_infos(env.site, "six_fork") == []
    # the hint's way out works with the same backend
    ok = env.pip("install", "--no-deps", "needs-six")
    assert ok.returncode == 0, ok.stderr
    assert dist_infos(env.site, "six") == ["six-1.16.0.dist-info"]
    assert dist_infos(env.site, "needs_six") == ["needs_six-1.0.dist-info"]


# --- the uv door ---------------------------------------------------------------------------

#: (uv arguments, UV_* variables, the rule); {home}: the user's home, {base}: base's python
DOOR_ROUTES = [
    (["--target", "{home}/.local/lib/python3.11/site-packages"], {}, "user-site"),
    (["--prefix", "/tmp/safe-pip-tests/uv-prefix"], {}, "outside-env"),
    (["--user"], {}, "user-site"),
    ([], {"UV_PYTHON": "{base}"}, "base-env"),
    (["--break-system-packages", "--python", "{base}"], {}, "base-env"),
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
    for args, variables, rule in DOOR_ROUTES:
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
    assert not Path("/tmp/safe-pip-tests/uv-prefix").exists()
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
            fill(DOOR_ROUTES[0][0][1]),
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
