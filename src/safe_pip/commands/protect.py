"""``safe-pip protect [--shim]`` and ``safe-pip unprotect``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from safe_pip.commands import target_environment
from safe_pip.environment import Environment
from safe_pip.marker import protect, unprotect
from safe_pip.policy import load_policy


def _record_baseline(env: Environment, environ: Mapping[str, str]) -> None:
    """The env's distributions now, as the baseline drift is measured from (once)."""
    from safe_pip.baseline import baseline_path, read_baseline, write_baseline

    path = baseline_path(env.prefix)
    if os.path.exists(path):
        kept = read_baseline(env.prefix)
        moves = "`safe-pip status --accept-drift` moves it"
        print(f"{'kept':9} {path} (baseline of {kept.time}; {moves})")
        return
    count = write_baseline(env, environ, "protect")
    print(f"{'baseline':9} {path} ({count} distributions, as they are now)")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env = target_environment(args.python, environ)
    if args.command == "protect":
        policy = load_policy(env.prefix)
        changes = protect(
            env,
            policy.text("marker.message"),
            shim=args.shim,
            contact=policy.text("messages.contact"),
        )
    else:
        changes = unprotect(env)
    for change in changes:
        print(f"{change.action:9} {change.path}")
    if args.command == "protect":
        _record_baseline(env, environ)
    if not changes:
        print(f"nothing to undo in {env.prefix}")
    for stale in env.stale_markers:
        print(f"note: a stale marker from an older Python is still at {stale}")
    return 0
