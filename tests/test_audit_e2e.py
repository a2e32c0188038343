"""Issue 3 end to end: the audit log as a new user meets it, through the real safe-pip CLI
and the real pip, on real prefixes, as root and as an unprivileged user.

Each test does what a hub user does (install, upgrade, uninstall, get refused, press
Ctrl-C, run installs side by side, ...) and then asserts on the log files on disk and
on what `safe-pip log` and `safe-pip export` show.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from safe_pip.audit.locations import prefix_hash
from safe_pip.audit.record import line_hash
from support.auditlog import operations
from support.prefixes import Prefix
from support.run import Runner, clean_env, install_setuptools, user_home
from support.wheels import build_wheel, make_project, normalize_name

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10

#: every field of a schema 1 record (docs/audit-log.md), and nothing else
FIELDS = {
    "schema",
    "id",
    "kind",
    "intent",
    "time",
    "prev",
    "safe_pip",
    "user",
    "uid",
    "host",
    "hub_user",
    "prefix",
    "env_name",
    "env_kind",
    "python",
    "pip_version",
    "installer",
    "installer_version",
    "command",
    "argv",
    "requested",
    "index",
    "decision",
    "rule",
    "reason",
    "outcome",
    "exit_code",
    "duration_s",
    "changes",
    "packages",
}
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


# --- helpers --------------------------------------------------------------------------------


def env_log(prefix: Prefix) -> Path:
    return prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl"


def user_log(home: Path, env_name: str, prefix: Prefix) -> Path:
    """The per-user fallback file (XDG state dir) of `prefix` for the user whose home it is."""
    return (
        home / ".local" / "state" / "safe-pip" / f"{env_name}-{prefix_hash(str(prefix.path))}.jsonl"
    )


def records_of(path: Path) -> list[dict[str, Any]]:
    """The record of each operation (``support.auditlog.operations``) in a log, every line
    of which must be one whole JSON object."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} does not end with a newline"
    found = []
    for number, line in enumerate(data.split(b"\n")[:-1], 1):
        record = json.loads(line)
        assert isinstance(record, dict), f"{path}:{number} is not a JSON object"
        found.append(record)
    return operations(found)


def chain_is_intact(path: Path) -> bool:
    previous = None
    for line in path.read_bytes().split(b"\n")[:-1]:
        if json.loads(line)["prev"] != previous:
            return False
        previous = hashlib.sha256(line).hexdigest()
    return True


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def has_dist(site: Path, name: str, version: str | None = None) -> bool:
    for entry in site.iterdir():
        if entry.name.endswith(".dist-info"):
            found, _, found_version = entry.name[: -len(".dist-info")].rpartition("-")
            if normalize_name(found) == normalize_name(name) and version in (None, found_version):
                return True
    return False


def world_readable(top: Path) -> None:
    """``chmod -R a+rX``: what nobody's pip (and git) must read."""
    for path in [top, *top.rglob("*")]:
        mode = path.stat().st_mode
        os.chmod(path, mode | 0o444 | (0o111 if path.is_dir() or mode & 0o100 else 0))


def pip_tripped(done: subprocess.CompletedProcess[str]) -> bool:
    """pip crashed listing site-packages while another pip removed a dist-info it had
    renamed to ``~...`` (pip's own race between parallel runs)."""
    return done.returncode == 2 and "FileNotFoundError" in done.stderr and "/~" in done.stderr


def check(done: subprocess.CompletedProcess[str], what: str = "") -> None:
    assert done.returncode == 0, f"{what} ({done.returncode}):\n{done.stdout}\n{done.stderr}"


class Hub:
    """One env, one user: run safe-pip there as that user, read what it recorded."""

    def __init__(
        self,
        run: Runner,
        safe_pip: list[str],
        prefix: Prefix,
        wheels: Path,
        user: int | None = None,
        hub_user: str | None = "alice",
    ) -> None:
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.wheels = wheels
        self.user = user
        self.hub_user = hub_user

    @property
    def home(self) -> Path:
        return self.run.home(self.user)

    def environ(self, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "PATH": f"{self.prefix.bin}:/usr/bin:/bin",
            "JUPYTERHUB_USER": self.hub_user,
        }
        env.update(extra)
        return env

    def __call__(
        self, *args: str, env: dict[str, str | None] | None = None, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        """`safe-pip ARGS` in the env, as the user."""
        return self.run(
            [*self.safe_pip, *args], user=self.user, env=env or self.environ(), **options
        )

    def install(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        """`safe-pip install --no-index --find-links WHEELS ARGS`: offline."""
        return self("install", "--no-index", "--find-links", str(self.wheels), *args, **options)

    def log_json(self, *args: str) -> list[dict[str, Any]]:
        done = self("log", "--json", *args)
        check(done, "safe-pip log --json")
        return [json.loads(line) for line in done.stdout.splitlines()]

    def records(self) -> list[dict[str, Any]]:
        return records_of(env_log(self.prefix))

    def last(self) -> dict[str, Any]:
        return self.records()[-1]


@pytest.fixture
def own_env(prefix_factory: Callable[..., Prefix]) -> Prefix:
    return prefix_factory("conda-env", name="analysis")


@pytest.fixture
def hub(run: Runner, safe_pip_bin: list[str], own_env: Prefix, wheelhouse: Path) -> Hub:
    """root in a conda env of its own, on a hub where JUPYTERHUB_USER=alice."""
    return Hub(run, safe_pip_bin, own_env, wheelhouse)


# --- allowed, denied, failed ----------------------------------------------------------------


def test_an_allowed_install_is_one_complete_record(hub: Hub, wheelhouse: Path) -> None:
    started = time.time()
    done = hub.install("demo-a==1.0")
    check(done, "safe-pip install demo-a==1.0")
    finished = time.time()

    log = env_log(hub.prefix)
    (record,) = records_of(log)
    assert set(record) == FIELDS
    assert record["schema"] == 2
    assert re.fullmatch(r"[0-9a-f]{32}", record["id"])
    assert TIME_RE.match(record["time"])
    when = time.mktime(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert started - 1 <= when <= finished
    # written before pip ran, durably: the intent, which the outcome completes
    intent_line, plan_line, _outcome_line = log.read_bytes().splitlines()
    intent = json.loads(intent_line)
    assert set(intent) == FIELDS | {"before", "pid", "pid_start"}
    assert (intent["kind"], intent["intent"], intent["outcome"]) == ("intent", None, None)
    assert (record["kind"], record["intent"]) == ("outcome", intent["id"])
    plan = json.loads(plan_line)
    assert (plan["kind"], plan["plan_for"], plan["plan"]["install"]) == (
        "plan",
        intent["id"],
        ["demo-a==1.0"],
    )
    assert intent["prev"] is None and plan["prev"] == line_hash(intent_line)
    assert record["prev"] == line_hash(plan_line)
    assert "demo_a-1.0.dist-info" not in intent["before"]
    assert any(name.startswith("pip-") for name in intent["before"])
    same = ("time", "user", "host", "prefix", "argv", "requested", "index", "decision", "rule")
    assert {k: intent[k] for k in same} == {k: record[k] for k in same}
    assert record["safe_pip"]
    assert (record["user"], record["uid"]) == ("root", 0)
    assert record["host"] == os.uname().nodename
    assert record["hub_user"] == "alice"
    assert record["prefix"] == str(hub.prefix.path)
    assert (record["env_name"], record["env_kind"]) == ("analysis", "conda-env")
    assert record["python"] == hub.prefix.base.full_version
    assert record["pip_version"] == hub.prefix.base.pip_version
    assert record["command"] == "install"
    assert record["argv"] == [
        "install",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "demo-a==1.0",
    ]
    assert record["requested"] == ["demo-a==1.0"]
    assert record["index"] == {
        "index_url": None,
        "extra_index_urls": [],
        "find_links": [str(wheelhouse)],
        "no_index": True,
    }
    assert (record["decision"], record["rule"], record["outcome"]) == ("allowed", "allowed", "ok")
    assert record["reason"]
    assert record["exit_code"] == 0
    assert 0 < record["duration_s"] < finished - started
    wheel = wheelhouse / "demo_a-1.0-py3-none-any.whl"
    assert record["changes"] == {
        "installed": [
            {
                "name": "demo-a",
                "version": "1.0",
                "source": {"kind": "file", "path": str(wheel)},
                "hashes": {"sha256": sha256_of(wheel)},
                "requested": True,
            }
        ],
        "removed": [],
    }
    assert record["packages"] == ["demo-a"]
    # one compact ASCII line
    assert log.read_bytes().isascii() and log.read_bytes().count(b"\n") == 3

    table = hub("log")
    check(table, "safe-pip log")
    header, row = table.stdout.splitlines()
    assert header.split() == ["TIME", "(UTC)", "USER", "DECISION", "COMMAND", "CHANGES", "RULE"]
    assert row.startswith(record["time"][:19].replace("T", " ") + "  root (alice)  allowed  ")
    assert "pip install --no-index --find-links" in row
    assert "+demo-a==1.0" in row and row.endswith("allowed")
    # --json prints the line as stored
    as_json = hub("log", "--json")
    check(as_json)
    assert as_json.stdout.encode() == log.read_bytes().splitlines(keepends=True)[2]
    assert hub.log_json("--package", "DEMO_A") == [record]
    # --python as everywhere: from anywhere, for that env
    elsewhere = hub(
        "log", "--json", "--python", str(hub.prefix.path), env={"PATH": "/usr/bin:/bin"}
    )
    check(elsewhere)
    assert [json.loads(line) for line in elsewhere.stdout.splitlines()] == [record]
    assert hub.log_json("--user", "alice") == [record]
    assert hub.log_json("--decision", "denied") == []


def test_a_refused_user_install_is_recorded(hub: Hub) -> None:
    done = hub.install("--user", "demo-a")
    assert done.returncode == DENIED, done.stderr
    record = hub.last()
    assert set(record) == FIELDS
    assert (record["decision"], record["rule"], record["outcome"]) == (
        "denied",
        "user-site",
        "denied",
    )
    assert (record["exit_code"], record["duration_s"]) == (DENIED, 0)
    assert record["changes"] == {"installed": [], "removed": []}
    assert record["packages"] == ["demo-a"]
    assert record["hub_user"] == "alice"
    assert not has_dist(hub.prefix.site_packages, "demo-a")
    assert [r["rule"] for r in hub.log_json("--decision", "denied")] == ["user-site"]
    table = hub("log", "--decision", "denied")
    row = table.stdout.splitlines()[1]
    assert "  denied  " in row and row.endswith("user-site")
    # what was tried stays in view, however long the paths before it
    assert "pip install --no-index --find-links " in row and " --user demo-a " in row


def test_refusals_on_envs_the_user_cannot_write_go_to_their_own_file(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    shared = prefix_factory("conda-env", name="shared")  # root-owned: read-only for nobody
    base = prefix_factory("conda-base")  # root-owned too
    for prefix, env_name, rule in ((shared, "shared", "read-only-env"), (base, "base", "base-env")):
        bob = Hub(run, safe_pip_bin, prefix, wheelhouse, user=NOBODY, hub_user="bob")
        done = bob.install("demo-a")
        assert done.returncode == DENIED, done.stderr
        assert f"rule:    {rule}" in done.stderr
        assert "not recorded" not in done.stderr
        assert not env_log(prefix).exists()
        assert not has_dist(prefix.site_packages, "demo-a")

        fallback = user_log(bob.home, env_name, prefix)
        assert stat.S_IMODE(fallback.stat().st_mode) == 0o600
        assert fallback.stat().st_uid == NOBODY
        assert stat.S_IMODE(fallback.parent.stat().st_mode) == 0o700
        (record,) = records_of(fallback)
        assert set(record) == FIELDS
        assert (record["uid"], record["user"], record["hub_user"]) == (NOBODY, "nobody", "bob")
        assert (record["prefix"], record["env_name"]) == (str(prefix.path), env_name)
        assert (record["decision"], record["rule"], record["exit_code"]) == ("denied", rule, DENIED)

        # that user's `safe-pip log` shows it, as a table and as JSON
        assert bob.log_json() == [record]
        table = bob("log")
        check(table)
        assert "nobody (bob)" in table.stdout and rule in table.stdout
        verify = bob("log", "--verify")
        check(verify)
        assert f"{fallback}: the hash chain is intact" in verify.stdout


def test_a_refusal_is_recorded_even_when_its_message_cannot_be_shown(
    hub: Hub, shared_tmp: Path
) -> None:
    environ = clean_env(user_home(shared_tmp, None), {"PATH": f"{hub.prefix.bin}:/usr/bin:/bin"})
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*hub.safe_pip, "install", "--user", "demo-a"],
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=full,
            check=False,
        )
    assert done.returncode != 0  # 10, or 120: Python could not flush stderr at exit
    assert [r["rule"] for r in hub.records()] == ["user-site"]


def test_a_base_env_write_is_refused_and_recorded_in_the_base_log(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    base = prefix_factory("conda-base")
    admin = Hub(run, safe_pip_bin, base, wheelhouse, hub_user=None)
    done = admin.install("demo-a")
    assert done.returncode == DENIED
    done = admin("uninstall", "-y", "pip")
    assert done.returncode == DENIED
    assert has_dist(base.site_packages, "pip")
    install, uninstall = admin.records()
    assert (install["env_kind"], install["env_name"], install["hub_user"]) == (
        "conda-base",
        "base",
        None,
    )
    assert [(r["command"], r["decision"], r["rule"]) for r in (install, uninstall)] == [
        ("install", "denied", "base-env"),
        ("uninstall", "denied", "base-env"),
    ]
    assert uninstall["requested"] == ["pip"] and uninstall["packages"] == ["pip"]


def test_a_requirement_that_does_not_exist_is_a_failed_run(hub: Hub) -> None:
    done = hub.install("no-such-dist")
    assert done.returncode not in (0, DENIED)
    record = hub.last()
    assert (record["decision"], record["outcome"]) == ("allowed", "failed")
    assert record["exit_code"] == done.returncode
    assert record["changes"] == {"installed": [], "removed": []}
    assert record["packages"] == ["no-such-dist"]
    assert "allowed/failed" in hub("log").stdout


def test_a_partial_install_records_what_it_left_behind(hub: Hub, shared_tmp: Path) -> None:
    wheels = shared_tmp / "broken-wheels"
    build_wheel(wheels, "demo-ok", "1.0")
    # pip refuses this wheel while installing it: after demo-ok, its dependency, is in place
    build_wheel(
        wheels,
        "demo-broken",
        "1.0",
        files={"../../../../escape.py": "", "demo_broken/__init__.py": ""},
        requires=["demo-ok"],
    )
    os.chmod(wheels, 0o755)
    done = hub("install", "--no-index", "--find-links", str(wheels), "demo-broken")
    assert done.returncode not in (0, DENIED), done.stderr
    assert has_dist(hub.prefix.site_packages, "demo-ok")
    assert not has_dist(hub.prefix.site_packages, "demo-broken")
    record = hub.last()
    assert (record["outcome"], record["exit_code"]) == ("failed", done.returncode)
    wheel = wheels / "demo_ok-1.0-py3-none-any.whl"
    assert record["changes"]["installed"] == [
        {
            "name": "demo-ok",
            "version": "1.0",
            "source": {"kind": "file", "path": str(wheel)},
            "hashes": {"sha256": sha256_of(wheel)},
            "requested": False,
        }
    ]
    assert record["packages"] == ["demo-broken", "demo-ok"]
    # what a failed run left behind is part of the env, and of its export
    exported = hub("export", "--format", "requirements")
    check(exported)
    assert "demo-ok==1.0" in exported.stdout.splitlines()


# --- upgrades, removals, dev installs, VCS ----------------------------------------------------


def test_upgrade_and_uninstall(hub: Hub) -> None:
    check(hub.install("demo-a==1.0", "six"))
    check(hub.install("--upgrade", "demo-a"))
    check(hub("uninstall", "-y", "six", "demo-a"))
    first, upgrade, uninstall = hub.records()
    assert [(i["name"], i["version"]) for i in first["changes"]["installed"]] == [
        ("demo-a", "1.0"),
        ("six", "1.17.0"),
    ]
    # an upgrade is the new version; the old one is not listed as removed
    assert [(i["name"], i["version"]) for i in upgrade["changes"]["installed"]] == [
        ("demo-a", "2.0")
    ]
    assert upgrade["changes"]["removed"] == []
    assert uninstall["command"] == "uninstall"
    assert uninstall["changes"]["installed"] == []
    removed = uninstall["changes"]["removed"]
    assert [(normalize_name(i["name"]), i["version"]) for i in removed] == [
        ("demo-a", "2.0"),
        ("six", "1.17.0"),
    ]
    assert set(removed[0]) == {"name", "version"}
    assert [r["time"] for r in hub.log_json("--package", "six")] == [
        first["time"],
        uninstall["time"],
    ]
    assert chain_is_intact(env_log(hub.prefix))
    lines = hub("log").stdout.splitlines()
    assert "+demo-a==2.0" in lines[2]
    assert "-six==1.17.0" in lines[3]
    # the filters a reviewer uses
    assert hub.log_json("--limit", "1") == [uninstall]
    assert hub.log_json("--since", upgrade["time"]) == [upgrade, uninstall]
    assert hub.log_json("--until", first["time"][:10]) == [first, upgrade, uninstall]
    assert hub.log_json("--until", "2000-01-01") == []
    assert hub.log_json("--user", "root", "--package", "demo_a", "--limit", "2") == [
        upgrade,
        uninstall,
    ]


def test_a_dev_install_records_its_source_tree(hub: Hub, shared_tmp: Path) -> None:
    install_setuptools(hub.prefix)
    project = make_project(shared_tmp / "src", "devpkg", "0.1")
    check(hub("install", "--no-build-isolation", "-e", str(project)))
    record = hub.last()
    assert (record["decision"], record["rule"], record["outcome"]) == (
        "allowed",
        "dev-install",
        "ok",
    )
    assert record["requested"] == [f"-e {project}"]
    assert record["changes"]["installed"] == [
        {
            "name": "devpkg",
            "version": "0.1",
            "source": {"kind": "editable", "path": str(project)},
            "hashes": {},
            "requested": True,
        }
    ]
    exported = hub("export")
    check(exported)
    assert (
        f"# editable (dev install, not rebuildable by conda-store): devpkg==0.1 from {project}"
        in exported.stdout
    )


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
            "GIT_CONFIG_NOSYSTEM": "1",
        },
    )
    return done.stdout.strip()


def test_a_vcs_install_records_the_commit_and_exports_it_pinned(
    hub: Hub, shared_tmp: Path, prefix_factory: Callable[..., Prefix], run: Runner
) -> None:
    install_setuptools(hub.prefix)
    repo = make_project(shared_tmp / "repos", "vcspkg", "0.3")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "0.3", cwd=repo)
    git("tag", "v0.3", cwd=repo)
    commit = git("rev-parse", "HEAD", cwd=repo)
    # a later commit on the branch: the tag, not the branch head, is what gets installed
    (repo / "NEWS").write_text("later\n")
    git("add", "NEWS", cwd=repo)
    git("commit", "-q", "-m", "later", cwd=repo)
    world_readable(repo)
    url = f"git+file://{repo}@v0.3"
    check(hub("install", "--no-build-isolation", "--no-index", url))
    record = hub.last()
    assert record["requested"] == [url]
    assert record["packages"] == ["vcspkg"]
    (item,) = record["changes"]["installed"]
    assert (item["name"], item["version"], item["requested"]) == ("vcspkg", "0.3", True)
    assert item["source"]["kind"] == "vcs"
    assert item["source"]["vcs"] == "git"
    assert item["source"]["commit"] == commit
    assert item["source"]["url"].endswith(str(repo))
    assert item["hashes"] == {}

    requirements = shared_tmp / "requirements.txt"
    check(hub("export", "--format", "requirements", "-o", str(requirements)))
    pinned = f"vcspkg @ git+file://localhost{repo}@{commit}"
    assert pinned in requirements.read_text().splitlines()
    # plain pip rebuilds it from the export alone, at that commit
    fresh = prefix_factory("conda-env", name="fresh")
    install_setuptools(fresh)
    requirements.chmod(0o644)
    check(
        run(fresh.pip("install", "--no-build-isolation", "--no-index", "-r", str(requirements))),
        "pip install -r (rebuild)",
    )
    assert has_dist(fresh.site_packages, "vcspkg", "0.3")
    direct = json.loads(
        next(fresh.site_packages.glob("vcspkg-0.3.dist-info"))
        .joinpath("direct_url.json")
        .read_text()
    )
    assert direct["vcs_info"]["commit_id"] == commit


def test_export_after_a_day_of_work_rebuilds_the_env_with_plain_pip(
    hub: Hub,
    shared_tmp: Path,
    prefix_factory: Callable[..., Prefix],
    run: Runner,
    wheelhouse: Path,
) -> None:
    check(hub.install("demo-a==1.0", "six"))
    assert hub.install("--user", "demo-b").returncode == DENIED
    assert hub.install("no-such-dist").returncode not in (0, DENIED)
    check(hub.install("demo-b"))  # demo-a 1.0 is enough for it
    check(hub.install("--upgrade", "demo-a"))
    check(hub("uninstall", "-y", "six"))
    extra = shared_tmp / "extra"
    local = build_wheel(extra, "demo-c", "0.5")
    os.chmod(extra, 0o755)
    check(hub("install", str(local)))

    requirements = shared_tmp / "requirements.txt"
    check(hub("export", "--format", "requirements", "-o", str(requirements)))
    requirements.chmod(0o644)
    body = [line for line in requirements.read_text().splitlines() if not line.startswith("#")]
    assert body == ["demo-a==2.0", "demo-b==1.0", "demo-c==0.5"]
    fresh = prefix_factory("conda-env", name="fresh")
    rebuilt = run(
        fresh.pip(
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--find-links",
            str(extra),
            "-r",
            str(requirements),
        )
    )
    check(rebuilt, "pip install -r requirements.txt")

    def dists(prefix: Prefix) -> set[str]:
        return {p.name for p in prefix.site_packages.glob("*.dist-info")}

    assert dists(fresh) == dists(hub.prefix)
    environment_yml = hub("export")
    check(environment_yml)
    assert environment_yml.stdout.count("\n      - demo-") == 3


# --- Ctrl-C -----------------------------------------------------------------------------------


def slow_project(directory: Path, started: Path) -> Path:
    """A setup.py project whose build says it started, then sleeps."""
    project = directory / "slowpkg"
    project.mkdir(parents=True)
    (project / "setup.py").write_text(
        "import pathlib, time\n"
        "from setuptools import setup\n"
        f"pathlib.Path({str(started)!r}).write_text('building')\n"
        "time.sleep(120)\n"
        "setup(name='slowpkg', version='1.0', py_modules=[])\n"
    )
    world_readable(directory)
    return project


@pytest.mark.parametrize("kind", ["conda-env", "plain"])
def test_ctrl_c_while_pip_runs_is_recorded_as_interrupted(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    shared_tmp: Path,
    wheelhouse: Path,
    kind: str,
) -> None:
    # a conda env runs pip checked between resolution and installation, a plain prefix not
    hub = Hub(run, safe_pip_bin, prefix_factory(kind), wheelhouse)
    install_setuptools(hub.prefix)
    started = shared_tmp / "build-started"
    project = slow_project(shared_tmp / "slow", started)
    environ = clean_env(
        user_home(shared_tmp, None),
        {"PATH": f"{hub.prefix.bin}:/usr/bin:/bin", "JUPYTERHUB_USER": "alice"},
    )
    argv = [
        *hub.safe_pip,
        "install",
        "--no-build-isolation",
        "--no-index",
        "--find-links",
        str(wheelhouse),
        "demo-a",
        str(project),
    ]
    # its own process group, like a terminal's foreground job: Ctrl-C reaches every
    # process, and (as a shell does for a job) with Ctrl-C's default action, whatever
    # the test worker inherited
    proc = subprocess.Popen(
        argv,
        env=environ,
        cwd=shared_tmp,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode not in (0, DENIED), stderr
    assert not has_dist(hub.prefix.site_packages, "slowpkg")
    record = hub.last()
    assert (record["decision"], record["outcome"]) == ("allowed", "interrupted"), stderr
    assert record["exit_code"] == proc.returncode
    assert record["duration_s"] > 0
    assert record["changes"] == {"installed": [], "removed": []}
    assert "allowed/interrupted" in hub("log").stdout
    assert chain_is_intact(env_log(hub.prefix))


# --- concurrency ------------------------------------------------------------------------------


def assert_claims_its_own_change(record: dict[str, Any]) -> None:
    """An install of one package claims that package installed; an uninstall, removed."""
    (name,) = record["packages"]
    changes = record["changes"]
    if record["command"] == "install":
        assert [i["name"] for i in changes["installed"]] == [name]
        assert changes["removed"] == []
    else:
        assert changes["installed"] == []
        assert [normalize_name(i["name"]) for i in changes["removed"]] == [name]


def test_parallel_runs_on_one_env_lose_no_record_and_claim_only_their_changes(
    hub: Hub, shared_tmp: Path
) -> None:
    count = 8
    links = shared_tmp / "par-wheels"
    for number in range(count):
        build_wheel(links, f"par-{number}", "1.0")
    os.chmod(links, 0o755)
    installs, removals = range(count // 2), range(count // 2, count)
    check(hub("install", "--no-index", "--find-links", str(links), *(f"par-{n}" for n in removals)))
    results: dict[int, subprocess.CompletedProcess[str]] = {}
    barrier = threading.Barrier(count)
    assert hub.home.is_dir()  # made once, before the threads race to make it

    def args(number: int) -> list[str]:
        if number in installs:
            return ["install", "--no-index", "--find-links", str(links), f"par-{number}"]
        return ["uninstall", "-y", f"par-{number}"]

    def change(number: int) -> None:
        barrier.wait()
        results[number] = hub(*args(number))

    threads = [threading.Thread(target=change, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # pip itself may trip over another pip's uninstall: it lists site-packages while the
    # other renames a dist-info to `~...` and removes it (pip takes no lock); such a run
    # failed before its plan (so its record cannot tell its changes from the others'), is
    # recorded as failed, and is run again once the others are done
    raced = [n for n in range(count) if pip_tripped(results[n])]
    for number in raced:
        results[number] = hub(*args(number))
    for number in range(count):
        check(results[number], f"par-{number}")

    records = hub.records()[1:]  # every line one whole JSON object
    tripped = [r for r in records if r["outcome"] != "ok"]
    assert [(r["outcome"], r["exit_code"]) for r in tripped] == [("failed", 2)] * len(raced)
    records = [r for r in records if r["outcome"] == "ok"]
    assert len(records) == count
    assert len({r["id"] for r in records}) == count
    for record in records:
        assert_claims_its_own_change(record)
    assert sorted(r["packages"][0] for r in records) == [f"par-{n}" for n in range(count)]
    assert chain_is_intact(env_log(hub.prefix))
    verify = hub("log", "--verify")
    check(verify, "safe-pip log --verify")
    assert verify.stdout == f"{env_log(hub.prefix)}: the hash chain is intact\n"
    assert len(hub.log_json()) == count + 1 + len(raced)
    exported = hub("export", "--format", "requirements")
    body = [line for line in exported.stdout.splitlines() if not line.startswith("#")]
    assert body == [f"par-{n}==1.0" for n in installs]


def test_verify_reports_an_edited_log(hub: Hub) -> None:
    check(hub.install("demo-a==1.0"))
    check(hub.install("six"))
    log = env_log(hub.prefix)
    log.write_bytes(log.read_bytes().replace(b'"demo-a"', b'"demo-z"', 1))
    verify = hub("log", "--verify")
    assert verify.returncode == 14
    assert "BROKEN" in verify.stdout and "line 2: does not chain to line 1" in verify.stdout


# --- audit.required ---------------------------------------------------------------------------


@pytest.mark.parametrize("user", [None, NOBODY], ids=["root", "nobody"])
def test_audit_required_refuses_what_cannot_be_recorded(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
    user: int | None,
) -> None:
    prefix = prefix_factory("conda-env", writable_by=user)
    if user is None:
        # root may write anywhere: a location under a regular file cannot be made by anyone
        blocker = shared_tmp / "not-a-dir"
        blocker.write_text("")
        location = blocker / "audit" / "{env_name}.jsonl"
    else:
        closed = shared_tmp / "root-only"
        closed.mkdir(mode=0o755)
        location = closed / "{env_name}-{prefix_hash}.jsonl"
    policy = f'version = 1\n[audit]\nlocation = "{location}"\n'
    hub = Hub(run, safe_pip_bin, prefix, wheelhouse, user=user)

    done = hub.install("demo-a", system_policy=policy)
    assert done.returncode == DENIED, done.stderr
    assert "rule:    audit-required" in done.stderr
    assert str(location).replace("{env_name}", prefix.path.name).split("{")[0] in done.stderr
    assert "Processing" not in done.stdout  # pip never ran
    assert not has_dist(prefix.site_packages, "demo-a")
    assert not env_log(prefix).exists()

    relaxed = policy + "required = false\n"
    done = hub.install("demo-a", system_policy=relaxed)
    check(done, "install with audit.required = false")
    assert "warning: this operation was not recorded" in done.stderr
    assert has_dist(prefix.site_packages, "demo-a")
    assert not env_log(prefix).exists()
    assert not (hub.home / ".local" / "state").exists()


def test_an_absolute_location_gets_the_records(hub: Hub, shared_tmp: Path) -> None:
    collected = shared_tmp / "audit"
    collected.mkdir(mode=0o755)
    policy = f'version = 1\n[audit]\nlocation = "{collected}/{{env_name}}-{{prefix_hash}}.jsonl"\n'
    check(hub.install("demo-a", system_policy=policy))
    assert hub.install("--user", "six", system_policy=policy).returncode == DENIED
    target = collected / f"analysis-{prefix_hash(str(hub.prefix.path))}.jsonl"
    assert [(r["packages"], r["decision"]) for r in records_of(target)] == [
        (["demo-a"], "allowed"),
        (["six"], "denied"),
    ]
    assert not env_log(hub.prefix).exists()
    done = hub("log", "--json", system_policy=policy)
    check(done)
    # the operations as stored: the install's outcome (its intent and plan not shown) and
    # the refusal
    assert done.stdout.encode() == b"".join(target.read_bytes().splitlines(keepends=True)[2:])


# --- secrets ----------------------------------------------------------------------------------

SECRETS = (
    "s3cret-pw",
    "xtra-s3cret",
    "ghp_T0KENabcdef123456",
    "r3q-s3cret",
    "prxy-s3cret",
    "env-s3cret",
    "MIIBpemS3cret",
)
PEM = "-----BEGIN CERTIFICATE-----\nMIIBpemS3cret\n-----END CERTIFICATE-----"


def test_secrets_never_reach_a_log_file_or_the_log_output(hub: Hub, shared_tmp: Path) -> None:
    # 1. credentials in index URLs (pip tries them: a closed local port fails at once)
    hub(
        "install",
        "--index-url",
        "https://alice:s3cret-pw@127.0.0.1:9/private/simple",
        "--extra-index-url=https://__token__:xtra-s3cret@127.0.0.1:9/extra/simple",
        "--timeout",
        "1",
        "--retries",
        "0",
        "demo-a",
    )
    # 2. a token in a VCS requirement (fails offline: the record still must not hold it)
    hub(
        "install",
        "git+https://ghp_T0KENabcdef123456@github.com/org/repo.git@v1.0#egg=repo",
        env=hub.environ(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1"),
        timeout=120,
    )
    # 3. a requirement file with a credentialed --index-url line, and a --proxy password
    reqs = shared_tmp / "reqs.txt"
    reqs.write_text("--index-url https://bob:r3q-s3cret@pypi.corp.example/simple/\ndemo-a==1.0\n")
    reqs.chmod(0o644)
    done = hub.install("--proxy", "http://px:prxy-s3cret@127.0.0.1:9", "-r", str(reqs))
    check(done, "install -r reqs.txt")
    # 4. refused, with credentials in an option, a variable and a certificate given inline:
    # still recorded, still redacted
    done = hub.install(
        "--user",
        "--extra-index-url",
        "https://u:s3cret-pw@127.0.0.1:9/x",
        f"--client-cert={PEM}",
        "six",
        env=hub.environ(PIP_EXTRA_INDEX_URL="https://ci:env-s3cret@idx.example.org/simple"),
    )
    assert done.returncode == DENIED

    records = hub.records()
    assert len(records) == 4
    index_run, vcs_run, file_run, refused = records
    assert index_run["argv"][1:3] == ["--index-url", "https://***@127.0.0.1:9/private/simple"]
    assert index_run["argv"][3] == "--extra-index-url=https://***@127.0.0.1:9/extra/simple"
    assert index_run["index"]["index_url"] == "https://***@127.0.0.1:9/private/simple"
    assert index_run["index"]["extra_index_urls"] == ["https://***@127.0.0.1:9/extra/simple"]
    assert vcs_run["requested"] == ["git+https://***@github.com/org/repo.git@v1.0#egg=repo"]
    assert vcs_run["outcome"] == "failed" and vcs_run["packages"] == ["repo"]
    assert file_run["requested"] == [
        f"-r {reqs}",
        "--index-url https://***@pypi.corp.example/simple/",
        "demo-a==1.0",
    ]
    assert "http://***@127.0.0.1:9" in file_run["argv"]
    assert refused["rule"] == "user-site"
    assert "https://***@127.0.0.1:9/x" in refused["argv"]
    assert "--client-cert=***" in refused["argv"]
    assert "https://***@idx.example.org/simple" in refused["index"]["extra_index_urls"]

    outputs = [hub("log"), hub("log", "--json"), hub("log", "--package", "repo")]
    for done in outputs:
        check(done, "safe-pip log")
    table = outputs[0].stdout
    assert "***@github.com/" in table
    files = [p for p in hub.prefix.path.rglob("*") if p.is_file() and "safe-pip" in str(p)]
    state = hub.home / ".local" / "state"
    files += [p for p in state.rglob("*") if p.is_file()] if state.exists() else []
    assert env_log(hub.prefix) in files
    for secret in SECRETS:
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"{secret} in {path}"
        for done in outputs:
            assert secret not in done.stdout + done.stderr
    # the export, which reads the same records, holds none either
    exported = hub("export")
    for secret in SECRETS:
        assert secret not in exported.stdout + exported.stderr


def test_a_refusal_message_shows_no_secret(hub: Hub) -> None:
    done = hub.install("--user", "--index-url", "https://u:s3cret-pw@127.0.0.1:9/simple", "demo-a")
    assert done.returncode == DENIED
    assert "https://***@127.0.0.1:9/simple" in done.stderr
    assert "s3cret-pw" not in done.stderr


def test_secrets_stay_out_of_the_spec_offered_for_a_read_only_env(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> None:
    shared = prefix_factory("conda-env", name="shared")
    bob = Hub(run, safe_pip_bin, shared, wheelhouse, user=NOBODY, hub_user="bob")
    done = bob("install", "git+https://ghp_T0KENabcdef123456@github.com/org/repo.git", "demo-a")
    assert done.returncode == DENIED
    written = [p for p in bob.home.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert b"ghp_T0KEN" not in path.read_bytes(), f"the token is in {path}"
    spec = next(p for p in written if p.name.endswith(".environment.yml"))
    assert "github.com/org/repo.git" in spec.read_text()
