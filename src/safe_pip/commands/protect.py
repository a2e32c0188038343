"""``safe-pip protect [--shim]`` and ``safe-pip unprotect``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from safe_pip.commands import target_environment
from safe_pip.marker import protect, unprotect
from safe_pip.policy import load_policy


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
    if not changes:
        print(f"nothing to undo in {env.prefix}")
    for stale in env.stale_markers:
        print(f"note: a stale marker from an older Python is still at {stale}")
    return 0
