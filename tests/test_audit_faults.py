"""Faults that must not lose a record: kills during a slow build, full disks, held locks,
torn writes, many writers.  Real pip on one shared prefix; the scenarios run in sequence
on it, each checking that the log's changes match what is on disk."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.auditlog import log_lines, operations
from support.prefixes import Prefix
from support.run import Runner, clean_env
from support.wheels import build_wheel, normalize_name

SLOW_BACKEND = """
import os, shutil, time

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    open({started!r}, "w").close()
    time.sleep({seconds!r})
    shutil.copy({wheel!r}, wheel_directory)
    return {name!r}
"""


def slow_project(top: Path, version: str, seconds: float) -> tuple[Path, Path]:
    """(a source tree of demo-slow VERSION whose build takes ``seconds``, the file its build
    creates when it starts)."""
    built = build_wheel(top / "built", "demo-slow", version)
    tree = top / f"slow-{version}"
    tree.mkdir(parents=True)
    started = top / f"slow-{version}.started"
    (tree / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "slowbackend"\nbackend-path = ["."]\n'
    )
    (tree / "slowbackend.py").write_text(
        SLOW_BACKEND.format(
            started=str(started), seconds=seconds, wheel=str(built), name=built.name
        )
    )
    return tree, started


def dist_infos(prefix: Prefix) -> set[str]:
    return {p.name for p in prefix.site_packages.glob("*.dist-info")}


def env_log(prefix: Prefix) -> Path:
    return prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl"


class Faults:
    """safe-pip on one conda env, as root, offline."""

    def __init__(self, run: Runner, safe_pip: list[str], prefix: Prefix, wheels: Path) -> None:
        self.run = run
        self.safe_pip = safe_pip
        self.prefix = prefix
        self.wheels = wheels
        self.home = run.home()

    def environ(self) -> dict[str, str | None]:
        return {"PATH": f"{self.prefix.bin}:/usr/bin:/bin"}

    def start(self, *args: str) -> subprocess.Popen[str]:
        """safe-pip in a process group of its own (so the test can signal the group)."""
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [*self.safe_pip, *args],
            env=clean_env(self.home, self.environ()),
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def __call__(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.run([*self.safe_pip, *args], env=self.environ(), **options)

    def install(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self("install", "--no-index", "--find-links", str(self.wheels), *args, **options)


@pytest.fixture
def faults(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
) -> Faults:
    return Faults(run, safe_pip_bin, prefix_factory("conda-env", name="faulty"), wheelhouse)


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def installed_items(record: dict[str, Any]) -> set[tuple[str, str]]:
    return {(normalize_name(i["name"]), i["version"]) for i in record["changes"]["installed"]}


def recover_and_check(
    faults: Faults, intent: dict[str, Any], expected: set[Any], *, shown: bool = False
) -> None:
    """The intent is unfinished (shown so by log and status) until the next command on
    the env records ``recovered`` with what changed on disk since."""
    log = env_log(faults.prefix)
    assert operations(log_lines(log))[-1] == intent
    if shown:
        table = faults("log")
        assert "allowed/incomplete" in table.stdout.splitlines()[-1], table.stdout
        status = faults("status")
        assert "unfinished:" in status.stdout and "safe-pip was stopped" in status.stdout
    done = faults.install("six")
    assert done.returncode == 0, done.stderr
    (recovered,) = [r for r in log_lines(log) if r.get("intent") == intent["id"]]
    assert (recovered["kind"], recovered["outcome"]) == ("outcome", "recovered")
    assert recovered["user"] == intent["user"] and recovered["argv"] == intent["argv"]
    assert installed_items(recovered) == expected
    if expected:  # pip got to its plan: the recovery carries it
        assert recovered["plan"]["install"] == sorted(f"{n}=={v}" for n, v in expected)
    if shown:
        assert "unfinished:" not in faults("status").stdout


def test_kills_lose_no_record(faults: Faults, shared_tmp: Path) -> None:
    """SIGKILL/SIGTERM/SIGHUP to safe-pip alone and to its process group: the record
    exists (at once, or after the next command) and its changes match the disk."""
    log = env_log(faults.prefix)
    # SIGKILL to safe-pip alone once pip installs (a 2,000-file wheel still to go): pip
    # finishes on its own
    big = shared_tmp / "big"
    files = {f"demo_big/m{i}.py": "" for i in range(2000)}
    build_wheel(big, "demo-big", "1.0", requires=["demo-a==1.0"], files=files)
    child = faults.start(
        "install",
        "--no-index",
        "--find-links",
        str(faults.wheels),
        "--find-links",
        str(big),
        "demo-big",
    )
    first = faults.prefix.site_packages / "demo_a-1.0.dist-info"
    wait_for(lambda: first.exists() or child.poll() is not None, seconds=120)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=60)
    wait_for(functools.partial(group_gone, child.pid))
    assert {"demo_a-1.0.dist-info", "demo_big-1.0.dist-info"} <= dist_infos(faults.prefix)
    lines = log_lines(log)
    assert lines[-1]["kind"] == "plan", "safe-pip finished before the kill: make demo-big bigger"
    intent = lines[-2]
    assert intent["kind"] == "intent" and lines[-1]["plan_for"] == intent["id"]
    recover_and_check(faults, intent, {("demo-a", "1.0"), ("demo-big", "1.0")}, shown=True)

    # during a slow build (pip has installed nothing yet)
    scenarios = [
        (signal.SIGKILL, False),  # pip builds on, finds nobody to check its plan, stops
        (signal.SIGTERM, False),  # safe-pip passes it on to pip, waits, records
        (signal.SIGHUP, False),
        (signal.SIGTERM, True),  # the whole group (a pod evicted, a terminal closed)
        (signal.SIGHUP, True),
        (signal.SIGKILL, True),  # everything dies at once
    ]
    for number, (signum, group) in enumerate(scenarios, 1):
        tree, started = slow_project(shared_tmp / "slow", f"{number}.0", 1.0)
        before = dist_infos(faults.prefix)
        child = faults.start(
            "install",
            "--no-build-isolation",
            "--no-index",
            "--find-links",
            str(faults.wheels),
            str(tree),
        )
        wait_for(lambda: started.exists() or child.poll() is not None)  # noqa: B023
        assert child.poll() is None, child.communicate()
        if group:
            os.killpg(child.pid, signum)
        else:
            os.kill(child.pid, signum)
        child.communicate(timeout=60)
        wait_for(functools.partial(group_gone, child.pid))
        assert dist_infos(faults.prefix) == before, (signum, group)
        intent = next(r for r in reversed(log_lines(log)) if r["kind"] == "intent")
        assert intent["argv"][-1] == str(tree)
        if signum == signal.SIGKILL:
            recover_and_check(faults, intent, set())
        else:
            (outcome,) = [r for r in log_lines(log) if r.get("intent") == intent["id"]]
            assert (outcome["outcome"], outcome["exit_code"]) == ("interrupted", 128 + signum)
            assert installed_items(outcome) == set()
    assert faults("log", "--verify").returncode == 0
    # every intent is completed, and export replays the recovered install
    assert all(r["kind"] == "outcome" for r in operations(log_lines(log)))
    exported = faults("export", "--format", "requirements")
    assert "demo_big==1.0" in exported.stdout.splitlines(), exported.stdout + exported.stderr


@pytest.fixture
def tiny_disk(shared_tmp: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, unmounted in teardown."""
    mount = shared_tmp / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system ``directory`` is on, up to its last byte."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (4096, 1):
            while True:
                try:
                    os.write(fd, b"x" * size)
                except OSError:
                    break
    finally:
        os.close(fd)


@pytest.mark.parametrize("required", [True, False])
def test_a_full_disk_at_every_log_location(faults: Faults, tiny_disk: Path, required: bool) -> None:
    """Both locations (the env's log and the per-user file) on one full disk: with
    audit.required pip never runs (audit-required, exit 10); without, pip runs and the
    operation is said to be unrecorded.  Nothing torn is left behind."""
    env_dir = faults.prefix.path / "var" / "log" / "safe-pip"
    env_dir.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(tiny_disk), str(env_dir)], check=True)
    state = faults.home / ".local" / "state"
    state.mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(tiny_disk), str(state)], check=True)
    try:
        fill(tiny_disk)
        policy = f"version = 1\n[audit]\nrequired = {str(required).lower()}\n"
        done = faults.install("demo-a==1.0", system_policy=policy)
        installed = "demo_a-1.0.dist-info" in dist_infos(faults.prefix)
        if required:
            assert done.returncode == 10 and "audit-required" in done.stderr, done.stderr
            assert not installed
        else:
            assert done.returncode == 0 and "not recorded" in done.stderr, done.stderr
            assert installed
        # no torn line: every failed append was cut back
        logs = [p for p in tiny_disk.rglob("*.jsonl")]
        assert logs and all(p.stat().st_size == 0 for p in logs), logs
        assert faults("log", "--verify").returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)
        subprocess.run(["umount", "-l", str(env_dir)], check=False)


def test_a_held_lock_refuses_with_audit_required(faults: Faults, shared_tmp: Path) -> None:
    """Another process holds the log's lock past the bounded wait: refused before pip runs."""
    import fcntl

    from safe_pip.audit.store import LOCK_TIMEOUT_S

    log = shared_tmp / "held" / "audit.jsonl"
    log.parent.mkdir()
    policy = f'version = 1\n[audit]\nlocation = "{log}"\n'
    with open(f"{log}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = time.monotonic()
        done = faults.install("six", system_policy=policy)
        waited = time.monotonic() - started
    assert done.returncode == 10 and "audit-required" in done.stderr, done.stderr
    assert LOCK_TIMEOUT_S <= waited < 2 * LOCK_TIMEOUT_S  # one wait, also for the refusal
    assert "six.py" not in {p.name for p in faults.prefix.site_packages.iterdir()}
    # the lock released: the next one goes through and is recorded
    assert faults.install("six", system_policy=policy).returncode == 0
    assert [r["outcome"] for r in operations(log_lines(log))] == ["ok"]


def test_many_writers_keep_the_chain(shared_tmp: Path) -> None:
    """64 processes appending (with fsync) at once: every record there, the chain intact."""
    from safe_pip.audit.record import new_id, utc_time
    from safe_pip.audit.store import append
    from safe_pip.audit.verify import verify

    log = shared_tmp / "many" / "audit.jsonl"
    log.parent.mkdir()
    children = []
    for writer in range(64):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                for n in range(5):
                    record = {"schema": 2, "id": new_id(), "kind": "outcome", "intent": None}
                    record.update(time=utc_time(), prev=None, w=writer, n=n)
                    append(record, [str(log)], fsync=True)
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    assert [os.waitpid(pid, 0)[1] for pid in children] == [0] * 64
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((r["w"], r["n"]) for r in records) == [
        (w, n) for w in range(64) for n in range(5)
    ]
    assert verify(str(log)) == (True, [])
