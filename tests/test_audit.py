"""The audit log: records, locations, locked appends, reading from the end, the hash chain."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from safe_pip.audit import reader
from safe_pip.audit.locations import log_locations, prefix_hash, writable_location
from safe_pip.audit.reader import RecordFilter, read_all, read_env_records, read_records
from safe_pip.audit.record import (
    SCHEMA,
    base_record,
    index_options,
    line_hash,
    new_id,
    record_packages,
    redacted_requested,
    requirement_name,
    utc_time,
)
from safe_pip.audit.store import append
from safe_pip.audit.verify import verify
from safe_pip.environment import Environment
from safe_pip.errors import AuditError
from safe_pip.pipcli import Operation, Setting
from safe_pip.policy import Policy, default_policy
from safe_pip.values import replace
from support.fakes import fake_environment

SRC = str(Path(__file__).resolve().parents[1] / "src")


def make_env(prefix: Path, **changes: Any) -> Environment:
    return fake_environment(prefix, **changes)


def policy_with(location: str) -> Policy:
    values = dict(default_policy().values)
    values["audit.location"] = location
    return Policy(values=values)


def record(
    env: Environment,
    *,
    name: str = "requests",
    version: str = "2.32.3",
    decision: str = "allowed",
    when: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    rec = base_record(env, ["install", f"{name}=={version}"], "install", environ={})
    rec.update(
        decision=decision,
        rule="allowed" if decision == "allowed" else "base-env",
        reason="test",
        outcome="ok" if decision == "allowed" else "denied",
        exit_code=0 if decision == "allowed" else 10,
        duration_s=0.5,
        requested=[f"{name}=={version}"],
        changes={
            "installed": [{"name": name, "version": version}] if decision == "allowed" else [],
            "removed": [],
        },
    )
    if when is not None:
        rec["time"] = when
    rec.update(extra)
    return rec


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Environment:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    prefix = tmp_path / "env"
    prefix.mkdir()
    return make_env(prefix)


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path / "home")}


def env_log(env: Environment) -> Path:
    return Path(env.prefix) / "var" / "log" / "safe-pip" / "audit.jsonl"


# --- the record ---------------------------------------------------------------------------


def test_base_record_has_every_field(env: Environment) -> None:
    rec = base_record(
        env,
        ["install", "-i", "https://alice:s3cret@idx.example.org/simple", "demo"],
        "install",
        environ={"JUPYTERHUB_USER": "alice", "USER": "ignored"},
    )
    assert rec["schema"] == SCHEMA == 2
    assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", rec["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", rec["time"])
    assert rec["prev"] is None
    assert rec["uid"] == os.getuid()
    assert rec["user"] and rec["user"] != "ignored"
    assert rec["host"] == os.uname().nodename
    assert rec["hub_user"] == "alice"
    assert (rec["prefix"], rec["env_name"], rec["env_kind"]) == (env.prefix, "env", "conda-env")
    assert (rec["python"], rec["pip_version"], rec["command"]) == ("3.11.7", "24.2", "install")
    assert rec["argv"] == ["install", "-i", "https://***@idx.example.org/simple", "demo"]
    for key in ("decision", "rule", "outcome", "exit_code", "duration_s"):
        assert key in rec
    assert rec["changes"] == {"installed": [], "removed": []}
    assert rec["index"] == {
        "index_url": None,
        "extra_index_urls": [],
        "find_links": [],
        "no_index": False,
    }
    json.dumps(rec)


def test_base_record_without_hub_user(env: Environment) -> None:
    assert base_record(env, [], "uninstall", environ={})["hub_user"] is None


def test_utc_time_is_fixed_width_and_sorts() -> None:
    assert utc_time(0) == "1970-01-01T00:00:00.000000Z"
    assert utc_time(1714564800.5) == "2024-05-01T12:00:00.500000Z"
    assert utc_time(59.9999999) == "1970-01-01T00:01:00.000000Z"
    assert utc_time(1.0) < utc_time(1.000001) < utc_time(10)


def test_ids_are_unique() -> None:
    assert len({new_id() for _ in range(1000)}) == 1000


def test_requested_and_index_are_redacted(tmp_path: Path) -> None:
    requirements = tmp_path / "req.txt"
    requirements.write_text(
        "# pinned\n--index-url https://u:tok@idx/simple\ndemo==1.0\n\n"
        "-e git+https://ghp_SECRET@github.com/o/r.git#egg=r\n"
    )
    op = Operation(
        command="install",
        argv=("install", "x"),
        args=("demo @ https://u:tok@files/demo.whl", "six"),
        settings={
            "editables": Setting(["git+https://ghp_SECRET@github.com/o/r.git#egg=r"], "-e"),
            "requirements": Setting([str(requirements)], "-r"),
            "index_url": Setting("https://u:tok@idx/simple", "--index-url"),
            "extra_index_urls": Setting(["https://u:tok@extra/simple"], "PIP_EXTRA_INDEX_URL"),
            "find_links": Setting(["/srv/wheels", "https://u:tok@links/"], "-f"),
        },
    )
    requested = redacted_requested(op)
    assert requested == [
        "demo @ https://***@files/demo.whl",
        "six",
        "-e git+https://***@github.com/o/r.git#egg=r",
        f"-r {requirements}",
        "--index-url https://***@idx/simple",
        "demo==1.0",
        "-e git+https://***@github.com/o/r.git#egg=r",
    ]
    assert index_options(op) == {
        "index_url": "https://***@idx/simple",
        "extra_index_urls": ["https://***@extra/simple"],
        "find_links": ["/srv/wheels", "https://***@links/"],
        "no_index": False,
    }
    empty = Operation(command="uninstall", argv=("uninstall", "six"), args=("six",))
    assert redacted_requested(empty) == ["six"]
    assert index_options(empty)["index_url"] is None


# --- locations ----------------------------------------------------------------------------


def test_locations_env_then_user(env: Environment, environ: dict[str, str]) -> None:
    locations = log_locations(env, default_policy(), environ)
    digest = prefix_hash(env.prefix)
    assert locations == [
        str(env_log(env)),
        os.path.join(environ["XDG_STATE_HOME"], "safe-pip", f"env-{digest}.jsonl"),
    ]
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    # a broken policy reads and writes the defaults
    assert log_locations(env, None, environ) == locations


def test_user_location_defaults_to_home_state(env: Environment, tmp_path: Path) -> None:
    (user_file,) = log_locations(env, policy_with("user"), {"HOME": str(tmp_path)})
    assert user_file.startswith(str(tmp_path / ".local" / "state" / "safe-pip") + os.sep)
    # a relative XDG_STATE_HOME is ignored, as the spec says
    relative = {"HOME": str(tmp_path), "XDG_STATE_HOME": "rel"}
    assert log_locations(env, policy_with("user"), relative) == [user_file]


def test_absolute_location_expands_placeholders(env: Environment) -> None:
    odd = replace(env, name="my env/../x")
    policy = policy_with("/var/log/safe-pip/{env_name}-{prefix_hash}.jsonl")
    path, *fallback = log_locations(odd, policy, {})
    assert len(fallback) <= 1
    assert path == f"/var/log/safe-pip/my_env_.._x-{prefix_hash(env.prefix)}.jsonl"


# --- appending ----------------------------------------------------------------------------


def test_append_chains_and_reads_back(env: Environment, environ: dict[str, str]) -> None:
    locations = log_locations(env, default_policy(), environ)
    for name in ("a", "b", "c"):
        assert append(record(env, name=name), locations) == str(env_log(env))
    lines = env_log(env).read_bytes().splitlines()
    assert len(lines) == 3
    parsed = [json.loads(line) for line in lines]
    assert parsed[0]["prev"] is None
    assert parsed[1]["prev"] == line_hash(lines[0])
    assert parsed[2]["prev"] == line_hash(lines[1])
    assert all(line.isascii() for line in lines)
    assert [r["packages"] for r in parsed] == [["a"], ["b"], ["c"]]
    assert verify(str(env_log(env))) == (True, [])
    records, damaged = read_records(str(env_log(env)))
    assert [r["requested"] for r in records] == [["a==2.32.3"], ["b==2.32.3"], ["c==2.32.3"]]
    assert damaged == 0
    assert not os.path.exists(locations[1])


def test_append_redacts_whatever_the_caller_left(env: Environment) -> None:
    rec = record(env, reason="from https://bob:hunter2@idx/simple")
    rec["changes"]["installed"][0]["source"] = {"kind": "url", "url": "https://x:tok@h/a.whl"}
    rec["requested"] = ["-r https://bob:hunter2@h/req.txt"]
    path = append(rec, [str(env_log(env))])
    text = Path(path).read_text()
    assert "hunter2" not in text and "tok@" not in text
    assert "https://***@idx/simple" in text and "https://***@h/a.whl" in text


def test_modes_follow_the_directory(tmp_path: Path, env: Environment) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2775)
    path = shared / "log" / "audit.jsonl"
    append(record(env), [str(path)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert stat.S_IMODE(Path(f"{path}.lock").stat().st_mode) == 0o664
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o2775 == 0o2775

    plain = tmp_path / "plain"
    plain.mkdir()
    os.chmod(plain, 0o755)
    append(record(env), [str(plain / "audit.jsonl")])
    assert stat.S_IMODE((plain / "audit.jsonl").stat().st_mode) == 0o644


def test_user_file_is_private(env: Environment, environ: dict[str, str]) -> None:
    user_file = Path(log_locations(env, policy_with("user"), environ)[0])
    append(record(env), [str(user_file)])
    assert stat.S_IMODE(user_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(user_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(user_file.parent.parent.stat().st_mode) == 0o700


def test_falls_back_to_the_user_file(env: Environment, environ: dict[str, str]) -> None:
    # root may write anywhere, so make the env location impossible: var/ is a file
    (Path(env.prefix) / "var").write_text("not a directory")
    locations = log_locations(env, default_policy(), environ)
    assert writable_location(locations) == locations[1]
    assert append(record(env, decision="denied"), locations) == locations[1]
    records, damaged = read_env_records(env, default_policy(), environ)
    assert [r["decision"] for r in records] == ["denied"]
    assert damaged == {}


def test_no_location_works(env: Environment, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    locations = [str(blocker / "a" / "audit.jsonl"), str(blocker / "b.jsonl")]
    assert writable_location(locations) is None
    with pytest.raises(AuditError) as raised:
        append(record(env), locations)
    assert str(blocker / "a" / "audit.jsonl") in raised.value.message
    assert raised.value.hint


def test_symlinked_log_is_not_followed(env: Environment, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    log = env_log(env)
    log.parent.mkdir(parents=True)
    log.symlink_to(victim)
    fallback = tmp_path / "fallback.jsonl"
    assert writable_location([str(log), str(fallback)]) == str(fallback)
    assert append(record(env), [str(log), str(fallback)]) == str(fallback)
    assert victim.read_text() == "precious\n"


def test_torn_last_line_stays_a_line_of_its_own(env: Environment) -> None:
    log = env_log(env)
    append(record(env, name="a"), [str(log)])
    with open(log, "ab") as handle:
        handle.write(b'{"schema":1,"id":"torn')
    append(record(env, name="b"), [str(log)])
    lines = log.read_bytes().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2])["prev"] == line_hash(lines[1])
    records, damaged = read_records(str(log))
    assert [r["requested"][0] for r in records] == ["a==2.32.3", "b==2.32.3"]
    assert damaged == 0  # a marked torn write is not damage
    assert json.loads(lines[2])["torn_before"] == len(lines[1])
    intact, findings = verify(str(log))
    assert intact and findings == [
        "line 2: a torn write (a writer stopped mid-line), marked by line 3; not an edit"
    ]
    # the torn fragment edited afterwards: its length no longer matches the mark
    log.write_bytes(log.read_bytes().replace(b'"torn\n', b'"tor\n'))
    intact, findings = verify(str(log))
    assert not intact and "an edit, not a marked torn write" in findings[0]


def test_a_torn_last_line_not_yet_marked_is_a_note(env: Environment) -> None:
    log = env_log(env)
    append(record(env, name="a"), [str(log)])
    with open(log, "ab") as handle:
        handle.write(b'{"schema":2,"id":"torn')
    intact, findings = verify(str(log))
    assert intact and findings[0].startswith("line 2: unfinished")


def test_a_failed_write_is_rolled_back(env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:

    log = env_log(env)
    append(record(env, name="a"), [str(log)])
    size = log.stat().st_size
    real_write = os.write

    def short_write(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[:100]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("safe_pip.audit.store.os.write", short_write)
    with pytest.raises(AuditError):
        append(record(env, name="b"), [str(log)])
    monkeypatch.undo()
    assert log.stat().st_size == size
    assert verify(str(log)) == (True, [])


_WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {src!r})
    from safe_pip.audit.store import append
    from safe_pip.audit.record import new_id, utc_time
    path, worker = sys.argv[1], sys.argv[2]
    for n in range(50):
        rec = {{"schema": 1, "id": new_id(), "time": utc_time(), "prev": None,
               "worker": worker, "n": n, "pad": "x" * (100 * (n % 7))}}
        append(rec, [path])
    """
)


@pytest.mark.integration
def test_concurrent_appends_lose_nothing_and_never_interleave(tmp_path: Path) -> None:
    log = tmp_path / "shared" / "audit.jsonl"
    script = _WORKER.format(src=SRC)
    workers = [subprocess.Popen([sys.executable, "-c", script, str(log), str(w)]) for w in range(8)]
    assert [w.wait(timeout=120) for w in workers] == [0] * 8
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]
    assert len(parsed) == 400
    assert len({(r["worker"], r["n"]) for r in parsed}) == 400
    for worker in map(str, range(8)):
        assert [r["n"] for r in parsed if r["worker"] == worker] == list(range(50))
    assert verify(str(log)) == (True, [])


# --- reading ------------------------------------------------------------------------------


def write_lines(path: Path, lines: list[bytes], *, final_newline: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    path.write_bytes(data)


def synthetic(n: int, **fields: Any) -> bytes:
    rec = {"schema": 1, "time": utc_time(1_700_000_000 + n), "n": n, **fields}
    return json.dumps(rec, separators=(",", ":")).encode()


def test_newest_reads_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = [synthetic(n, pad="y" * (n % 300)) for n in range(5000)]
    lines.insert(2500, b"x" * 300_000)  # a damaged line longer than any block
    write_lines(log, lines)
    records, damaged = read_records(str(log), newest=20)
    assert [r["n"] for r in records] == list(range(4980, 5000))
    assert damaged == 0
    records, damaged = read_records(str(log), newest=4000)
    assert [r["n"] for r in records] == list(range(1000, 5000))
    assert damaged == 1
    records, damaged = read_records(str(log), newest=10**6)
    assert [r["n"] for r in records] == list(range(5000))
    assert read_records(str(log), newest=0) == ([], 0)
    assert read_records(str(tmp_path / "missing.jsonl")) == ([], 0)


@pytest.mark.parametrize("window", [64, 1000, 1 << 22])
def test_windows_agree_with_a_plain_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    monkeypatch.setattr(reader, "_CHUNK", window)
    monkeypatch.setattr(reader, "_TAIL_BLOCK", max(window // 4, 1))
    rng = random.Random(window)
    lines = []
    for n in range(600):
        name = rng.choice(["alpha", "beta", "gamma-ray"])
        fields = {"packages": [name], "pad": "z" * rng.choice([0, 10, 200, 3000])}
        lines.append(synthetic(n, **fields) if rng.random() > 0.05 else b"{damaged " + bytes(n))
    log = tmp_path / "audit.jsonl"
    write_lines(log, lines)
    expected = [json.loads(line) for line in lines if line.startswith(b'{"')]
    assert read_records(str(log)) == (expected, 600 - len(expected))
    for newest in (1, 7, 100, 1000):
        assert read_records(str(log), newest=newest)[0] == expected[-newest:]
    gamma = [r for r in expected if r["packages"] == ["gamma-ray"]]
    only = RecordFilter(package="Gamma_Ray")
    assert read_records(str(log), filters=only)[0] == gamma
    assert read_records(str(log), newest=5, filters=only)[0] == gamma[-5:]


def test_damaged_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    lines = [
        synthetic(0),
        b"not json",
        b'{"truncated": ',
        b"[1, 2]",
        b"",
        b"   ",
        b"\xff\xfe binary",
        synthetic(1),
        b'{"still": "being written',
    ]
    write_lines(log, lines, final_newline=False)
    forward, damaged = read_records(str(log))
    assert [r["n"] for r in forward] == [0, 1]
    assert damaged == 4  # blank lines are not damage; the unterminated last line may be in flight
    backward, damaged = read_records(str(log), newest=5)
    assert [r["n"] for r in backward] == [0, 1]
    assert damaged == 4


def test_filters(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"

    def rec(n: int, **fields: Any) -> bytes:
        base: dict[str, Any] = {
            "decision": "allowed",
            "user": "jovyan",
            "hub_user": None,
            "requested": [],
            "changes": {"installed": [], "removed": []},
        }
        merged = {**base, **fields}
        merged["packages"] = sorted(record_packages(merged))  # as append() writes it
        return synthetic(n, **merged)

    lines = [
        rec(0, changes={"installed": [{"name": "Foo_Bar", "version": "1"}], "removed": []}),
        rec(1, decision="denied", requested=["foo.bar>=2"], user="alice"),
        rec(2, requested=["foo-bar-extra==1"], pip_version="24"),
        rec(3, changes={"installed": [], "removed": [{"name": "pip", "version": "24"}]}),
        rec(4, requested=["-e git+https://h/r.git#egg=Foo.Bar"], hub_user="bob"),
        rec(5, requested=["numpy-quaternion"], reason="numpy is fine"),
        b'garbage mentioning "foo-bar"',
    ]
    write_lines(log, lines)

    def numbers(**filters: Any) -> list[int]:
        found, _ = read_records(str(log), filters=RecordFilter(**filters))
        tail, _ = read_records(str(log), newest=100, filters=RecordFilter(**filters))
        assert tail == found
        return [r["n"] for r in found]

    assert numbers(package="foo-bar") == [0, 1, 4]
    assert numbers(package="FOO_BAR") == [0, 1, 4]
    assert numbers(package="pip") == [3]
    assert numbers(package="numpy") == []
    assert numbers(package="numpy-quaternion") == [5]
    assert numbers(decision="denied") == [1]
    assert numbers(user="alice") == [1]
    assert numbers(user="bob") == [4]
    assert numbers(user="jovyan", decision="allowed") == [0, 2, 3, 4, 5]
    t = utc_time
    assert numbers(since=t(1_700_000_002), until=t(1_700_000_004)) == [2, 3]
    assert numbers(package="foo-bar", since=t(1_700_000_001)) == [1, 4]
    _, damaged = read_records(str(log), filters=RecordFilter(package="foo-bar"))
    assert damaged == 1  # only lines that mention the package are parsed
    newest, _ = read_records(str(log), newest=1, filters=RecordFilter(package="foo-bar"))
    assert [r["n"] for r in newest] == [4]


def test_requirement_names() -> None:
    name = requirement_name
    assert name("Requests[socks] >= 2 ; python_version > '3'") == "requests"
    assert name("demo @ https://h/demo.whl") == "demo"
    assert name("-e git+https://h/r.git#egg=My_Pkg") == "my-pkg"
    assert name("git+https://h/r.git@v1") is None
    assert name("./project") is None
    assert name("-r req.txt") is None
    assert name("zope.interface==5") == "zope-interface"


def test_read_all_merges_locations_by_time(tmp_path: Path) -> None:
    env_file, user_file = tmp_path / "env.jsonl", tmp_path / "user.jsonl"
    write_lines(env_file, [synthetic(n) for n in (0, 2, 4, 6)])
    write_lines(user_file, [synthetic(n) for n in (1, 5)] + [b"junk"])
    reading = read_all([str(env_file), str(user_file), str(env_file)])
    assert [r["n"] for r in reading.records] == [0, 1, 2, 4, 5, 6]
    assert reading.damaged == {str(user_file): 1}  # complete once the records are consumed
    newest = read_all([str(env_file), str(user_file)], newest=3)
    assert [r["n"] for r in newest.records] == [4, 5, 6]
    assert newest.damaged == {str(user_file): 1}  # the junk is the last line: read first
    unreadable = tmp_path / "dir.jsonl"
    unreadable.mkdir()  # open() fails with EISDIR, even for root
    reading = read_all([str(unreadable), str(env_file)])
    assert [r["n"] for r in reading.records] == [0, 2, 4, 6]
    assert list(reading.unreadable) == [str(unreadable)]


# --- the hash chain -----------------------------------------------------------------------


@pytest.fixture
def chained(env: Environment) -> Path:
    log = env_log(env)
    for name in "abcde":
        append(record(env, name=name), [str(log)])
    assert verify(str(log)) == (True, [])
    return log


def rewrite(log: Path, change: Any) -> None:
    lines = log.read_bytes().splitlines()
    log.write_bytes(b"".join(line + b"\n" for line in change(lines)))


def test_verify_detects_an_edited_line(chained: Path) -> None:
    rewrite(chained, lambda ls: [*ls[:2], ls[2].replace(b"c==2.32.3", b"evil==6.6.6"), *ls[3:]])
    assert verify(str(chained)) == (
        False,
        ["line 4: does not chain to line 3 (a line before it was changed, removed or inserted)"],
    )


def test_verify_detects_a_removed_line(chained: Path) -> None:
    rewrite(chained, lambda ls: [*ls[:2], *ls[3:]])
    intact, problems = verify(str(chained))
    assert not intact and problems[0].startswith("line 3: does not chain to line 2")


def test_verify_detects_removed_first_lines(chained: Path) -> None:
    rewrite(chained, lambda ls: ls[2:])
    intact, problems = verify(str(chained))
    assert not intact and problems[0].startswith("line 1: the first line chains to an earlier")


def test_verify_detects_reordered_and_inserted_lines(chained: Path, env: Environment) -> None:
    rewrite(chained, lambda ls: [ls[0], ls[2], ls[1], *ls[3:]])
    assert not verify(str(chained))[0]
    rewrite(chained, lambda ls: [ls[0], ls[2], ls[1], *ls[3:]])  # back in order
    assert verify(str(chained))[0]
    forged = json.dumps({**record(env, name="x"), "prev": None}).encode()
    rewrite(chained, lambda ls: [*ls[:3], forged, *ls[3:]])
    assert not verify(str(chained))[0]


def test_verify_of_a_missing_log_is_trivially_intact(tmp_path: Path) -> None:
    assert verify(str(tmp_path / "none.jsonl")) == (True, [])


# --- as an unprivileged user (root bypasses permissions, so the rest cannot show this) -----

_AS_USER = textwrap.dedent(
    """
    import json, os, sys
    from safe_pip.audit.store import append
    from safe_pip.audit.record import base_record
    from safe_pip.audit.locations import log_locations, writable_location
    from safe_pip.environment import EnvKind, Environment
    from safe_pip.policy import default_policy
    from safe_pip.values import fields as names
    prefix = sys.argv[1]
    fields = dict.fromkeys(names(Environment), "")
    fields.update(prefix=prefix, name=os.path.basename(prefix), kind=EnvKind.VENV,
                  version="3.11.7", user_site_enabled=False, system_site_packages=False,
                  writable=False, marker=None, stale_markers=(), frozen=False,
                  pip_version=None, editable_dists=frozenset())
    env = Environment(**fields)
    locations = log_locations(env, default_policy(), os.environ)
    rec = base_record(env, ["install", "demo"], "install")
    rec.update(decision="denied", rule="read-only-env", outcome="denied", exit_code=10)
    print(json.dumps({"writable": writable_location(locations),
                      "written": append(rec, locations), "locations": locations}))
    """
)


@pytest.mark.integration
def test_unprivileged_user_falls_back_and_shares_a_prepared_log(
    safe_pip_bin: list[str], shared_tmp: Path, run: Any
) -> None:
    from support.run import UNPRIVILEGED_UID

    python = str(Path(safe_pip_bin[0]).parent / "python")
    prefix = shared_tmp / "readonly-env"
    prefix.mkdir(mode=0o755)

    # 1. a read-only env: the denied attempt still lands, in the user's own state dir
    done = run([python, "-c", _AS_USER, str(prefix)], user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    user_file = Path(result["written"])
    assert result["writable"] == result["written"] == result["locations"][1]
    assert user_file.is_relative_to(run.home(UNPRIVILEGED_UID) / ".local" / "state" / "safe-pip")
    assert user_file.stat().st_uid == UNPRIVILEGED_UID
    assert stat.S_IMODE(user_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(user_file.parent.stat().st_mode) == 0o700
    assert not (prefix / "var").exists()
    (rec,) = read_records(str(user_file))[0]
    assert (rec["uid"], rec["decision"]) == (UNPRIVILEGED_UID, "denied")

    # 2. the admin prepares a shared log (root-owned dir, 0666 files): everyone appends there
    log_dir = prefix / "var" / "log" / "safe-pip"
    log_dir.mkdir(parents=True)
    for name in ("audit.jsonl", "audit.jsonl.lock"):
        (log_dir / name).touch()
        os.chmod(log_dir / name, 0o666)
    env = make_env(prefix)
    append(record(env, name="by-root"), [str(log_dir / "audit.jsonl")])
    done = run([python, "-c", _AS_USER, str(prefix)], user=UNPRIVILEGED_UID)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == str(log_dir / "audit.jsonl")
    records, damaged = read_records(str(log_dir / "audit.jsonl"))
    assert [r["uid"] for r in records] == [os.getuid(), UNPRIVILEGED_UID] and damaged == 0
    assert verify(str(log_dir / "audit.jsonl")) == (True, [])


@pytest.mark.integration
def test_two_users_share_the_log_of_a_shared_env(
    safe_pip_bin: list[str], shared_tmp: Path, run: Any
) -> None:
    from support.run import UNPRIVILEGED_UID

    python = str(Path(safe_pip_bin[0]).parent / "python")
    prefix = shared_tmp / "shared-env"
    prefix.mkdir()
    os.chmod(prefix, 0o777)  # an env every user may write, like a group-writable one
    other_uid = UNPRIVILEGED_UID - 1
    for uid in (UNPRIVILEGED_UID, other_uid, UNPRIVILEGED_UID):
        done = run([python, "-c", _AS_USER, str(prefix)], user=uid)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["written"] == str(env_log(make_env(prefix)))
    log = env_log(make_env(prefix))
    assert stat.S_IMODE(log.stat().st_mode) == 0o666
    assert stat.S_IMODE(Path(f"{log}.lock").stat().st_mode) == 0o666
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o777
    records, damaged = read_records(str(log))
    assert [r["uid"] for r in records] == [UNPRIVILEGED_UID, other_uid, UNPRIVILEGED_UID]
    assert damaged == 0
    assert verify(str(log)) == (True, [])


# --- changes: what one run claims -----------------------------------------------------------


def _installed(name: str, version: str, stamp: int = 1) -> Any:
    from safe_pip.inventory import Installed

    key = re.sub(r"[-_.]+", "-", name).lower()
    return key, Installed(key, name, version, f"/site/{name}-{version}.dist-info", (stamp, 0))


def test_an_install_claims_only_what_pip_planned() -> None:
    from safe_pip.changes import compute_changes

    before = dict([_installed("demo_a", "1.0"), _installed("gone_meanwhile", "1.0")])
    # meanwhile another run installed `other` and removed `gone_meanwhile`
    after = dict([_installed("demo_a", "2.0", 2), _installed("other", "1.0")])
    report = {
        "install": [
            {
                "metadata": {"name": "Demo-A", "version": "2.0"},
                "requested": True,
                "is_direct": False,
                "download_info": {
                    "url": "https://files.example.org/demo_a-2.0-py3-none-any.whl",
                    "archive_info": {"hashes": {"sha256": "ab" * 32}},
                },
            }
        ]
    }
    changes = compute_changes(before, after, report, "https://idx.example.org/simple")
    assert changes == {
        "installed": [
            {
                "name": "Demo-A",
                "version": "2.0",
                "requested": True,
                "source": {
                    "kind": "index",
                    "url": "https://files.example.org/demo_a-2.0-py3-none-any.whl",
                    "index_url": "https://idx.example.org/simple",
                },
                "hashes": {"sha256": "ab" * 32},
            }
        ],
        "removed": [],
    }
    # a report that plans nothing: pip changed nothing, whatever the scans say
    assert compute_changes(before, after, {"install": []}) == {"installed": [], "removed": []}
    # no report (pip stopped before writing it): the scans are all there is
    assert [i["name"] for i in compute_changes(before, after, None)["installed"]] == [
        "demo_a",
        "other",
    ]


def test_an_uninstall_claims_only_what_it_was_asked_to_remove() -> None:
    from safe_pip.changes import only_requested

    changes = {
        "installed": [{"name": "par-1", "version": "1.0"}],
        "removed": [{"name": "demo_b", "version": "1.0"}, {"name": "par_2", "version": "1.0"}],
    }
    assert only_requested(changes, ["Demo.B>=1"]) == {
        "installed": [],
        "removed": [{"name": "demo_b", "version": "1.0"}],
    }


def test_an_unfinished_intent_is_found_and_reconciled(env: Environment, tmp_path: Path) -> None:
    from safe_pip.audit.recovery import intent_fields, is_running, reconciled_changes, unfinished
    from safe_pip.inventory import scan

    site = tmp_path / "site"
    for name in ("kept-1.0", "gone-1.0", "upgraded-1.0", "rewritten-1.0"):
        (site / f"{name}.dist-info").mkdir(parents=True)
    before = scan([str(site)])
    log = env_log(env)
    done = record(env, name="done")
    intent = {**record(env, name="pending"), "outcome": None, **intent_fields(before)}
    assert intent["kind"] == "intent" and intent["pid"] == os.getpid()
    append(intent, [str(log)])
    append({**done, "kind": "intent"}, [str(log)])
    append({**record(env, name="x"), "intent": done["id"]}, [str(log)])
    ((path, found),) = unfinished([str(log)])
    assert (path, found["id"]) == (str(log), intent["id"])
    assert is_running(found)  # this very process
    assert not is_running({**found, "pid_start": -1}) and is_running({**found, "host": "other"})
    # what happened on disk since: one removed, one upgraded, one rewritten, one new
    (site / "gone-1.0.dist-info").rmdir()
    (site / "upgraded-1.0.dist-info").rename(site / "upgraded-2.0.dist-info")
    os.utime(site / "rewritten-1.0.dist-info", ns=(1, 1))
    (site / "new-3.0.dist-info").mkdir()
    changes = reconciled_changes(found, scan([str(site)]))
    assert sorted((i["name"], i["version"]) for i in changes["installed"]) == [
        ("new", "3.0"),
        ("rewritten", "1.0"),
        ("upgraded", "2.0"),
    ]
    assert changes["removed"] == [{"name": "gone", "version": "1.0"}]


@pytest.mark.parametrize("newest", [None, 1, 2, 50])
def test_readers_pair_intents_with_their_outcomes(env: Environment, newest: int | None) -> None:
    log = env_log(env)
    done = {**record(env, name="done"), "kind": "intent", "outcome": None}
    pending = {**record(env, name="pending"), "kind": "intent", "outcome": None}
    append(done, [str(log)])
    append(pending, [str(log)])
    append({**record(env, name="done"), "intent": done["id"]}, [str(log)])
    records, damaged = read_records(str(log), newest=newest)
    kinds = [(r["kind"], r["requested"][0].split("=")[0]) for r in records]
    expected = [("outcome", "done"), ("intent", "pending")]
    if newest is None:
        assert kinds == expected  # an unfinished intent comes last
    else:
        assert kinds == [("intent", "pending"), ("outcome", "done")][-newest:]
    assert damaged == 0
