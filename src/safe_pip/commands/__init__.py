"""safe-pip's own commands, one module each; ``run`` parses their options and dispatches."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from safe_pip import __version__
from safe_pip.environment import Environment, inspect_environment
from safe_pip.errors import UsageError
from safe_pip.target import resolve_target


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see `{self.prog} --help`")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="safe-pip", description="safe-pip's own commands")
    parser.add_argument("--version", action="version", version=f"safe-pip {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_python(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--python",
            metavar="PYTHON",
            help="the target interpreter or env dir "
            "(default: the shim's env, else `python` on PATH)",
        )
        return p

    status = with_python(sub.add_parser("status", help="what safe-pip sees and allows here"))
    status.add_argument("--json", action="store_true", help="versioned JSON output")
    status.add_argument(
        "--accept-drift",
        action="store_true",
        help="admin: take the env as it is now as its baseline (drift is measured from it)",
    )
    status.add_argument(
        "--as-user",
        metavar="NAME",
        help="answer for this user (default as root: an unprivileged hub user)",
    )

    request = with_python(
        sub.add_parser(
            "request", help="submit the env's spec with your request to the hub's conda-store"
        )
    )
    request.add_argument(
        "requirements", nargs="*", metavar="REQUIREMENT", help="packages to add (pip syntax)"
    )
    request.add_argument(
        "--file",
        metavar="FILE",
        help="the spec to submit (default: ~/safe-pip-requests/<env>.environment.yml)",
    )

    policy = sub.add_parser("policy", help="admin: check a policy file before deploying it")
    policy_sub = policy.add_subparsers(dest="action", required=True, parser_class=_Parser)
    check = with_python(
        policy_sub.add_parser("check", help="every problem with file, line and key; what applies")
    )
    check.add_argument(
        "file", nargs="?", help="the policy file to check (default: /etc/safe-pip/policy.toml)"
    )

    protect = with_python(
        sub.add_parser(
            "protect",
            help="guard the env: PEP 668 marker, pip.conf user = false, %pip (and pip shims)",
        )
    )
    protect.add_argument(
        "--shim", action="store_true", help="also make bin/pip, pip3, pip3.X run safe-pip"
    )
    with_python(sub.add_parser("unprotect", help="undo `protect` exactly"))

    log = with_python(sub.add_parser("log", help="show the audit log of the env"))
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.add_argument("--package", metavar="NAME")
    log.add_argument("--decision", choices=("allowed", "denied", "would-deny", "request"))
    log.add_argument(
        "--summary",
        action="store_true",
        help="counts of refusals and warn-mode would-denies by rule, env and user",
    )
    log.add_argument("--user", metavar="USER")
    log.add_argument("--since", metavar="TIME", help="ISO 8601 time or date (UTC)")
    log.add_argument("--until", metavar="TIME", help="ISO 8601 time or date (UTC)")
    log.add_argument("--limit", metavar="N", type=int, help="show the newest N records")
    log.add_argument("--verify", action="store_true", help="check the hash chain")

    export = with_python(
        sub.add_parser("export", help="write an environment.yml that rebuilds the env")
    )
    export.add_argument(
        "--format", choices=("environment.yml", "requirements"), default="environment.yml"
    )
    export.add_argument("--name", metavar="NAME", help="the env name in environment.yml")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")

    devenv = with_python(
        sub.add_parser("devenv", help="a per-project dev env layered on a read-only env")
    )
    devenv.add_argument("project", nargs="?", default=".", help="the project dir (default: .)")
    devenv.add_argument("--dir", metavar="DIR", help="where to create the dev env")
    devenv.add_argument("--name", metavar="NAME", help="the dev env's (and kernel's) name")
    devenv.add_argument("--no-kernel", action="store_true", help="do not register a Jupyter kernel")
    devenv.add_argument("--remove", action="store_true", help="remove the dev env and its kernel")
    return parser


def target_environment(python: str | None, environ: Mapping[str, str]) -> Environment:
    target = resolve_target(python, "--python" if python else "", environ)
    return inspect_environment(target, environ)


def run(command: str, argv: Sequence[str], environ: Mapping[str, str]) -> int:
    args = _parser().parse_args([command, *argv])
    if command == "status":
        from safe_pip.commands import status

        return status.run(args, environ)
    if command in ("protect", "unprotect"):
        from safe_pip.commands import protect

        return protect.run(args, environ)
    if command == "log":
        from safe_pip.commands import log

        return log.run(args, environ)
    if command == "export":
        from safe_pip.commands import export

        return export.run(args, environ)
    if command == "request":
        from safe_pip.commands import request

        return request.run(args, environ)
    if command == "policy":
        from safe_pip.commands import policy

        return policy.run(args, environ)
    if command == "devenv":
        from safe_pip.commands import devenv

        return devenv.run(args, environ)
    raise UsageError(f"unknown command {command}")  # pragma: no cover
