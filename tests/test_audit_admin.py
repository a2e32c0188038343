"""Refusals reach the admin: protect prepares a drop box in a root-owned env where each
user appends to a file of their own, and `safe-pip log` run by the admin merges them."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable

from support.auditlog import log_lines
from support.prefixes import Prefix
from support.run import UNPRIVILEGED_UID, Runner

OTHER_UID = 65533
INTRUDER_UID = 65532


def test_refusals_in_a_root_env_reach_the_admin(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    env = prefix_factory("conda-env", name="shared")
    assert env.path.stat().st_uid == 0
    done = run([*safe_pip_bin, "protect", "--python", str(env.python)])
    assert done.returncode == 0, done.stderr
    box = env.path / "var" / "log" / "safe-pip" / "users"
    assert f"created   {box}" in done.stdout
    mode = box.stat().st_mode
    assert stat.S_IMODE(mode) == 0o3733 and box.stat().st_gid == env.path.stat().st_gid

    environ: dict[str, str | None] = {"PATH": f"{env.bin}:/usr/bin:/bin"}
    # someone creates a file under another user's name, to catch that user's records
    trap = box / f"{OTHER_UID}-{OTHER_UID}.jsonl"
    made = run(["sh", "-c", f"touch {trap}"], user=INTRUDER_UID, env=environ)
    assert made.returncode == 0, made.stderr
    for uid in (UNPRIVILEGED_UID, OTHER_UID):
        refused = run([*safe_pip_bin, "install", "six"], user=uid, env=environ)
        assert refused.returncode == 10 and "read-only-env" in refused.stderr, refused.stderr
    # users cannot list the drop box, nor read each other's files
    listing = run(["ls", str(box)], user=UNPRIVILEGED_UID)
    assert listing.returncode != 0
    mine = box / f"nobody-{UNPRIVILEGED_UID}.jsonl"
    assert mine.stat().st_uid == UNPRIVILEGED_UID and stat.S_IMODE(mine.stat().st_mode) == 0o640
    assert run(["cat", str(mine)], user=OTHER_UID).returncode != 0
    (record,) = log_lines(mine)
    assert (record["uid"], record["rule"]) == (UNPRIVILEGED_UID, "read-only-env")
    # the trap caught nothing: that user's record went to their own state dir
    assert trap.read_bytes() == b""
    theirs = list((run.home(OTHER_UID) / ".local" / "state" / "safe-pip").glob("*.jsonl"))
    assert [r["uid"] for path in theirs for r in log_lines(path)] == [OTHER_UID]

    # the admin reads every user's file in the drop box, merged by time with the env's log
    own = run([*safe_pip_bin, "install", "--user", "six"], env=environ)
    assert own.returncode == 10
    shown = run([*safe_pip_bin, "log", "--python", str(env.python), "--json"], env=environ)
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [r["uid"] for r in records] == [UNPRIVILEGED_UID, 0]
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    verified = run([*safe_pip_bin, "log", "--python", str(env.python), "--verify"])
    assert verified.returncode == 0, verified.stdout
    assert f"{mine}: the hash chain is intact" in verified.stdout
