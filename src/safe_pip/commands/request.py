"""``safe-pip request [--python ENV] [REQUIREMENT ...] [--file FILE]``: ask conda-store.

Submits the env's spec with the user's request (the file a read-only-env
refusal wrote, ``~/safe-pip-requests/<env>.environment.yml``, or one built now
with the requirements given) to the hub's conda-store (``conda-store.url``),
in the env's namespace, with the user's token (``conda-store.token-env``, else
``conda-store.token-file``).  Prints the build id and where to watch it, and
records the submission in the audit log.  Without a URL, a token or the
network, the file stays and the way to submit it by hand is printed (exit 15).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from safe_pip.commands import target_environment
from safe_pip.condastore import NotSent, Submission, submit, user_token
from safe_pip.environment import Environment
from safe_pip.errors import SubmitError, UsageError
from safe_pip.nextstep import (
    body_path,
    request_body,
    spec_path,
    store_target,
    submit_by_hand,
    write_spec,
)
from safe_pip.policy import Policy, load_policy

PROG = "safe-pip"


def _spec(
    args: argparse.Namespace, env: Environment, name: str, environ: Mapping[str, str]
) -> tuple[str, str]:
    """(the spec text, its file): built now with the requirements, or read from a file."""
    home = environ.get("HOME") or os.path.expanduser("~")
    if args.requirements:
        from safe_pip.envspec import render
        from safe_pip.export import environment_name

        rendered = render(
            env, environ, name=environment_name(name), extra_requirements=args.requirements
        )
        for note in rendered.notes:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        path = args.file or spec_path(name, home)
        write_spec(path, rendered.text)
        return rendered.text, path
    path = args.file or spec_path(name, home)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read(1 << 22), path
    except OSError as error:
        raise UsageError(
            f"no request to submit: {path}: {error.strerror}",
            hint="name the packages (`safe-pip request PACKAGE ...`), or run the refused "
            "`pip install` again to have the file written",
        ) from None


def _record(
    env: Environment,
    policy: Policy,
    environ: Mapping[str, str],
    argv: list[str],
    outcome: str,
    request: Mapping[str, Any],
    reason: str,
) -> None:
    from safe_pip.audit.locations import log_locations
    from safe_pip.audit.record import base_record
    from safe_pip.audit.store import append
    from safe_pip.errors import SafePipError

    record = base_record(env, argv, "request", environ=environ)
    record.update(
        decision="request",
        rule=None,
        reason=reason,
        outcome=outcome,
        exit_code=0 if outcome == "submitted" else int(SubmitError.exit_code),
        duration_s=0.0,
        request=dict(request),
    )
    try:
        append(record, log_locations(env, policy, environ))
    except SafePipError as error:
        print(f"{PROG}: warning: the request was not recorded: {error.message}", file=sys.stderr)


def _earlier_description(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            earlier = json.loads(handle.read(1 << 22))
    except (OSError, ValueError):
        return None
    value = earlier.get("environment_description") if isinstance(earlier, dict) else None
    return value if isinstance(value, str) else None


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env = target_environment(args.python, environ)
    policy = load_policy(env.prefix)
    namespace, name = store_target(env, policy, environ)
    text, path = _spec(args, env, name, environ)
    url = policy.text("conda-store.url").rstrip("/")
    body = request_body(namespace, name, text, list(args.requirements), environ)
    body_file = body_path(path) if path.endswith(".environment.yml") else None
    if body_file is not None and not args.requirements:
        # the refusal wrote the body with what was asked for: keep its description
        body["environment_description"] = (
            _earlier_description(body_file) or body["environment_description"]
        )
    if body_file is not None:
        write_spec(body_file, json.dumps(body, indent=1) + "\n")
    submission = Submission(
        url, namespace, name, body["environment_description"], body["specification"]
    )
    argv = ["request", *(["--python", args.python] if args.python else []), *args.requirements]
    request: dict[str, Any] = {
        "url": url or None,
        "namespace": namespace,
        "environment_name": name,
        "file": path,
        "build_id": None,
    }
    try:
        if not url:
            raise NotSent("the policy names no conda-store (conda-store.url)")
        token, where = user_token(policy, environ)
        if token is None:
            raise NotSent(f"no conda-store token (looked in {where})")
        build_id = submit(submission, token)
    except NotSent as error:
        _record(env, policy, environ, argv, "not-sent", request, str(error))
        print(f"{PROG}: the request was not submitted: {error}", file=sys.stderr)
        print(f"the file is ready: {path}", file=sys.stderr)
        for line in submit_by_hand(url, f"{namespace}/{name}", body_file):
            print(line, file=sys.stderr)
        raise SubmitError(str(error), hint="submit it by hand as shown above") from None
    request["build_id"] = build_id
    _record(env, policy, environ, argv, "submitted", request, f"conda-store build {build_id}")
    print(f"submitted to {url}: namespace {namespace}, env {name}, build {build_id}")
    print(f"watch it: {submission.watch_url(build_id)} (status), in conda-store's UI: the env")
    print(f"  {namespace}/{name}; the env switches to the new build when it succeeds")
    return 0
