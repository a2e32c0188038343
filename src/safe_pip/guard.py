"""The pip path: pass read-only commands through, decide and run mutating ones.

This is the imperative shell around ``decide.decide``: it gathers the
operation, the environment and the policy, prints a denial, runs pip for what
is allowed, and hands every mutating outcome to the audit log.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from safe_pip import rules
from safe_pip.decide import Decision, command_text, decide
from safe_pip.environment import (
    Environment,
    editable_distributions,
    inspect_environment,
    resolve_target,
)
from safe_pip.errors import Denied, ExitCode, PolicyError, UsageError
from safe_pip.pipcli import Operation, parse_pip_command_line
from safe_pip.pipconfig import load_pip_config
from safe_pip.policy import Policy, load_policy
from safe_pip.runner import exec_pip, run_pip

PROG = "safe-pip"


@dataclass(frozen=True)
class Attempt:
    """Everything known about one mutating command, for the audit record."""

    op: Operation
    env: Environment
    decision: Decision
    policy: Policy | None


def _mentions_mutation(argv: Sequence[str]) -> bool:
    return any(a in ("install", "uninstall") for a in argv)


def format_denial(op: Operation, env: Environment | None, decision: Decision, contact: str) -> str:
    lines = [
        f"{PROG}: refused: {command_text(op)}",
        f"  rule:    {decision.rule} ({rules.SUMMARY.get(decision.rule, '')})",
        f"  why:     {decision.reason}",
    ]
    if decision.hint:
        hint_lines = decision.hint.splitlines()
        lines.append(f"  instead: {hint_lines[0]}")
        lines.extend(f"           {line}" for line in hint_lines[1:])
    if env is not None:
        lines.append(f"  env:     {env.prefix} ({env.kind}, chosen by {env.how})")
    lines.append(f"  more:    `{PROG} status` shows what is allowed here")
    if contact:
        lines.append(f"  help:    {contact}")
    return "\n".join(lines)


def run_pip_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    try:
        op = parse_pip_command_line(argv, environ, load_pip_config(environ, site_prefix=None))
    except UsageError:
        if _mentions_mutation(argv):
            raise
        op = None
    if op is None or not op.mutating:
        return _pass_through(argv, op, environ)
    return _guarded(argv, op, environ)


def _pass_through(argv: Sequence[str], op: Operation | None, environ: Mapping[str, str]) -> int:
    """Read-only commands: become pip of the target interpreter."""
    python_setting = op.python if op is not None else None
    explicit = python_setting is not None and python_setting.source.startswith("--python")
    if explicit and op is not None:
        target = resolve_target(str(python_setting.value), python_setting.source, environ)  # type: ignore[union-attr]
        args = list(op.argv_without_python())
    else:
        # PIP_PYTHON and config files are pip's to honour, as usual
        target = resolve_target(None, "", environ)
        args = list(argv)
    exec_pip(target.python, args, environ)
    return 0  # pragma: no cover - exec does not return


def _guarded(argv: Sequence[str], op: Operation, environ: Mapping[str, str]) -> int:
    python = op.python
    target = resolve_target(
        str(python.value) if python is not None else None,
        python.source if python is not None else "",
        environ,
    )
    env = inspect_environment(target, environ)
    # pip also reads <sys.prefix>/pip.conf of the interpreter it runs in
    op = parse_pip_command_line(argv, environ, load_pip_config(environ, site_prefix=env.prefix))
    try:
        policy = load_policy(env.prefix)
    except PolicyError as error:
        decision = Decision(
            allowed=False,
            rule=rules.POLICY_INVALID,
            reason=f"the policy cannot be used, so nothing that changes an env is allowed: "
            f"{error.message}",
            hint=error.hint or "ask the admin to fix the policy file; read-only pip commands "
            "still work",
        )
        print(format_denial(op, env, decision, ""), file=sys.stderr)
        return int(ExitCode.POLICY_ERROR)
    if op.command == "uninstall":
        env = replace(env, editable_dists=editable_distributions(env))
    decision = decide(op, env, policy)
    if not decision.allowed:
        print(format_denial(op, env, decision, policy.text("messages.contact")), file=sys.stderr)
        raise_code = Denied(decision.rule, decision.reason, decision.hint).exit_code
        return int(raise_code)
    result = run_pip(env.python, decision.pip_args, environ)
    return result.exit_code
