"""The pip path: pass read-only commands through, decide and run mutating ones.

This is the imperative shell around ``decide``: it gathers the operation, the
environment and the policy, prints a refusal, runs pip for what is allowed
(checked between resolution and installation, see ``preflight``), and writes
one audit record for every install and uninstall.
"""

from __future__ import annotations

import os
import sys

from safe_pip import rules
from safe_pip.errors import (
    PolicyError,
    SafePipError,
    UsageError,
    exit_code_for,
    exit_code_for_denial,
)
from safe_pip.pipcli import (
    REPLACE_CONDA_FLAG,
    Operation,
    parse_pip_command_line,
    requirement_file_requirements,
)
from safe_pip.pipconfig import load_pip_config, pinned_environ
from safe_pip.target import resolve_target

# The decision core, the env and the policy are imported where they are used: a
# ``uv pip install`` starts uv on its plan before safe-pip spends time importing them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from safe_pip.audit.ship import Shipper
    from safe_pip.backends import Backend, Request
    from safe_pip.decide import Conflict, Decision
    from safe_pip.environment import Environment
    from safe_pip.inventory import Installed
    from safe_pip.pipconfig import PipConfig
    from safe_pip.policy import Policy
    from safe_pip.probe import Probe
    from safe_pip.runner import PipRun
    from safe_pip.sources import SourceUse
    from safe_pip.target import Target

PROG = "safe-pip"


def start_probe(target: Target, environ: Mapping[str, str]) -> Probe:
    """Ask ``target``'s interpreter for its paths; answered in ``inspect_environment``."""
    from safe_pip.probe import Probe

    return Probe(target.python, environ)


def inspect_environment(
    target: Target, environ: Mapping[str, str], probe: Probe | None = None
) -> Environment:
    """The env behind ``target`` (``environment.inspect_environment``, imported late)."""
    from safe_pip.environment import inspect_environment as inspect

    return inspect(target, environ, probe)


def _mentions_mutation(argv: Sequence[str]) -> bool:
    return any(a in ("install", "uninstall") for a in argv)


def format_denial(
    op: Operation,
    env: Environment | None,
    decision: Decision,
    contact: str,
    entry: str = "safe-pip",
    notes: Sequence[str] = (),
) -> str:
    """The refusal as the user reads it; ``entry`` is how they run safe-pip's own
    commands (``safe-pip``, ``pip`` through a shim, ``%pip``: see ``door``)."""
    from safe_pip.decide import command_text

    lines = [
        f"{PROG}: refused: {command_text(op)}",
        f"  rule:    {decision.rule} ({rules.SUMMARY.get(decision.rule, '')})",
    ]
    reason = decision.reason.splitlines() or [""]
    lines.append(f"  why:     {reason[0]}")
    lines.extend(f"           {line}" for line in reason[1:])
    if decision.hint:
        hint_lines = decision.hint.splitlines()
        lines.append(f"  instead: {hint_lines[0]}")
        lines.extend(f"           {line}" for line in hint_lines[1:])
    if env is not None:
        lines.append(f"  env:     {env.prefix} ({env.kind}, chosen by {env.how})")
    lines.extend(notes)
    lines.append(f"  more:    `{entry} status` shows what is allowed here")
    if contact:
        lines.append(f"  help:    {contact}")
    return "\n".join(lines)


def run_pip_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    from safe_pip.backends import split_installer_flag

    override = REPLACE_CONDA_FLAG in argv
    argv, installer = split_installer_flag(argv)
    args = [a for a in argv if a != REPLACE_CONDA_FLAG]
    try:
        op = parse_pip_command_line(args, environ, load_pip_config(environ, site_prefix=None))
    except (UsageError, PolicyError) as error:
        if _mentions_mutation(args):
            _record_unparsable(args, environ, error)
            raise
        op = None
    if op is not None and op.command in ("wheel", "download"):
        refusal = _checkout_refusal(op, environ)
        if refusal is not None:
            _record_early_refusal(args, environ, refusal, exit_code_for_denial(refusal.rule))
            _show(format_denial(op, None, refusal, ""))
            return exit_code_for_denial(refusal.rule)
    if op is None or not op.mutating:
        return _pass_through(argv, op, environ)
    if installer is not None:
        from safe_pip.backends import INSTALLER_FLAG
        from safe_pip.values import replace

        op = replace(op, own_options=(INSTALLER_FLAG, installer))
    return _guarded(args, op, environ, override, installer)


def run_uv_pip_command(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """``uv pip install|uninstall|sync ...`` (``argv`` after ``uv pip``): decided as pip's
    would be, carried out by uv."""
    from safe_pip.backends.uv_cli import parse_uv_pip

    override = REPLACE_CONDA_FLAG in argv
    args = [a for a in argv if a != REPLACE_CONDA_FLAG]
    return _guarded(args, parse_uv_pip(args, environ).op, environ, override, "uv", uv_door=True)


def refuse_uv_command(
    argv: Sequence[str], environ: Mapping[str, str], reason: str, hint: str
) -> int:
    """A uv command (not ``uv pip``) refused at the uv door: recorded and shown."""
    from safe_pip.decide import Decision

    refusal = Decision(allowed=False, rule=rules.UV_PROJECT_ENV, reason=reason, hint=hint)
    code = exit_code_for_denial(refusal.rule)
    _record_early_refusal(["uv", *argv], environ, refusal, code)
    words = [a for a in argv if not a.startswith("-")]
    op = Operation(command=words[0] if words else None, argv=tuple(argv), program="uv")
    _show(format_denial(op, None, refusal, ""))
    return code


def _checkout_refusal(op: Operation, environ: Mapping[str, str]) -> Decision | None:
    """``pip wheel``/``pip download`` write no env, but ``--src`` (or ``PIP_SRC``) is where
    pip checks out ``-e`` VCS requirements: not in the user base nor a protected env."""
    from safe_pip.decide import Decision
    from safe_pip.destinations import in_frozen_env, under
    from safe_pip.environment import enclosing_env_kind
    from safe_pip.passthrough import SRC_PREFIXES

    found = []
    args = list(op.command_argv[1:])
    for index, arg in enumerate(args):
        if arg.startswith(SRC_PREFIXES):
            name, equals, value = arg.partition("=")
            if not equals and index + 1 < len(args):
                value = args[index + 1]
            found.append((f"{name} {value}", value))
    if environ.get("PIP_SRC"):
        found.append((f"PIP_SRC={environ['PIP_SRC']}", environ["PIP_SRC"]))
    home = environ.get("HOME") or os.path.expanduser("~")
    user_base = environ.get("PYTHONUSERBASE") or os.path.join(home, ".local")
    for source, value in found:
        path = os.path.join(os.getcwd(), os.path.expanduser(value))
        if under(os.path.realpath(path), os.path.realpath(user_base)):
            rule, where = rules.USER_SITE, f"your user base {user_base}"
        elif enclosing_env_kind(path, environ) is not None:
            rule, where = rules.BASE_ENV, "a protected environment"
        elif in_frozen_env(path):
            rule, where = rules.FROZEN_ENV, "a frozen environment"
        else:
            continue
        return Decision(
            allowed=False,
            rule=rule,
            reason=f"{source}: pip checks out -e requirements there, and it lies in {where}",
            hint="give --src a directory of your own (or leave it out)",
        )
    return None


def _record_unparsable(
    args: Sequence[str], environ: Mapping[str, str], error: SafePipError
) -> None:
    """Record the refusal of a command line that cannot be understood."""
    from safe_pip.decide import Decision

    rule = rules.POLICY_INVALID if isinstance(error, PolicyError) else rules.UNKNOWN_OPTION
    refusal = Decision(allowed=False, rule=rule, reason=error.message, hint=error.hint)
    _record_early_refusal(args, environ, refusal, exit_code_for(error))


def _record_early_refusal(
    args: Sequence[str], environ: Mapping[str, str], refusal: Decision, exit_code: int
) -> None:
    """Record a refusal made before an env was looked at (best effort: the env is the
    one pip would act on without --python)."""
    from safe_pip.errors import TargetError
    from safe_pip.policy import load_policy

    try:
        env = inspect_environment(resolve_target(None, "", environ), environ)
        policy = load_policy(env.prefix)
    except (TargetError, PolicyError, OSError):
        return
    commands = ("install", "uninstall", "wheel", "download")
    command = next((a for a in args if a in commands), "")
    attempt = _Attempt(Operation(command=command, argv=tuple(args)), env, environ)
    attempt.policy = policy
    attempt.record(refusal, outcome="denied", exit_code=exit_code)


def _pass_through(argv: Sequence[str], op: Operation | None, environ: Mapping[str, str]) -> int:
    """Read-only commands: become pip of the target interpreter."""
    from safe_pip.passthrough import become_pip

    python = op.python if op is not None else None
    if op is not None and python is not None:
        # --python, PIP_PYTHON or `python =` in a config file: run that interpreter directly
        return become_pip(op.argv_without_python(), environ, str(python.value), python.source)
    return become_pip(argv, environ)


class _Attempt:
    """One mutating command on its way through: what is known, for the record."""

    def __init__(self, op: Operation, env: Environment, environ: Mapping[str, str]) -> None:
        import time

        self.op = op
        self.env = env
        self.environ = environ
        self.policy: Policy | None = None
        #: the env of the notebook kernel safe-pip runs under, when it is another one
        self.notebook: Environment | None = None
        #: the record's installer fields, until a backend is chosen
        self.installer = {"installer": "pip", "installer_version": env.pip_version or ""}
        self.backend: Backend | None = None
        #: uv, started on its plan before the policy chose the installer (``uv pip``)
        self.early: Backend | None = None
        #: ``uv pip`` arguments when the command came through the uv door
        self.uv_args: tuple[str, ...] | None = None
        #: when safe-pip took the command up: the record's ``time``, however long pip runs
        self.started = time.time()
        #: the names pip resolved to remove (uninstall), once pip has said
        self.planned_removals: list[str] | None = None
        #: pip's configuration files as read for the decision (pip gets exactly these)
        self.config: PipConfig | None = None
        #: the intent record written before pip ran (its id and log), if any
        self.intent_id: str | None = None
        self.intent_path: str | None = None

    def context(self) -> tuple[str, list[str]]:
        """How the user runs safe-pip's commands here, and the notebook lines, for messages."""
        from safe_pip.decide import command_text
        from safe_pip.door import door

        notes: list[str] = []
        if self.notebook is not None:
            from safe_pip.kernel import notebook_lines

            notes = notebook_lines(self.notebook, self.env, "%" + command_text(self.op))
        return door(self.environ), notes

    def shipper(self) -> Shipper | None:
        """Where records go besides the local log (``audit.syslog``, ``audit.journal``)."""
        from safe_pip.policy import default_policy

        policy = self.policy or default_policy()
        if not (policy.text("audit.syslog") or policy.flag("audit.journal")):
            return None
        from safe_pip.audit.ship import shipper_for

        return shipper_for(policy, self.environ)

    def name_installer(self, requested: str | None) -> None:
        """The record's installer until one is chosen: the one asked for, else the policy's."""
        name = requested or (
            self.policy.text(f"installer.{self.env.kind.value}") if self.policy else "pip"
        )
        version = (self.env.pip_version or "") if name == "pip" else ""
        self.installer = {"installer": name, "installer_version": version}

    def installer_fields(self) -> dict[str, str]:
        """The record's installer fields: the chosen backend's (asked last: uv's version
        is read while uv works), else the one asked for."""
        if self.backend is None:
            return self.installer
        from safe_pip.backends import installer_fields

        return installer_fields(self.backend)

    def locations(self) -> list[str]:
        from safe_pip.audit.locations import log_locations
        from safe_pip.policy import default_policy

        return log_locations(self.env, self.policy or default_policy(), self.environ)

    def write_intent(self, decision: Decision, before: Mapping[str, Installed]) -> bool:
        """Before pip runs: append the intent record durably (fsync); False (with a
        warning) when no location takes it."""
        from safe_pip.audit.recovery import intent_fields
        from safe_pip.audit.store import append

        record = self._fields(decision)
        record.update(intent_fields(before))
        try:
            self.intent_path = append(record, self.locations(), fsync=True, ship=self.shipper())
        except SafePipError as error:
            _show(
                f"{PROG}: warning: the intent of this operation was not recorded: {error.message}"
            )
            return False
        self.intent_id = str(record["id"])
        return True

    def locations_near_intent(self) -> list[str]:
        """The log locations, the intent's first: an operation's records stay together."""
        locations = self.locations()
        if self.intent_path is None:
            return locations
        return [self.intent_path, *[p for p in locations if p != self.intent_path]]

    def write_plan(self, decision: Decision, report: Mapping[str, Any] | None) -> None:
        """At pip's pause point, before it changes anything: append pip's plan, for the
        intent (not synced: a kill keeps it in the page cache; best effort)."""
        from safe_pip.audit.recovery import plan_fields
        from safe_pip.audit.store import append

        record = self._fields(decision)
        record.update(plan_fields(self.intent_id, report))
        locations = self.locations_near_intent()
        import contextlib

        with contextlib.suppress(SafePipError):
            append(record, locations, ship=self.shipper())

    def _fields(self, decision: Decision) -> dict[str, Any]:
        from safe_pip.audit.record import base_record, index_options, redacted_requested

        record = base_record(
            self.env,
            list(self.op.argv),
            self.op.command or "",
            environ=self.environ,
            when=self.started,
        )
        record.update(
            **decision_fields(decision),
            requested=redacted_requested(self.op),
            index=index_options(self.op),
            **self.installer_fields(),
        )
        return record

    def record(
        self,
        decision: Decision,
        *,
        outcome: str,
        exit_code: int,
        duration_s: float = 0.0,
        changes: Mapping[str, Any] | None = None,
        escaped: list[dict[str, Any]] | None = None,
    ) -> str | None:
        """Write the outcome record (completing the intent, if one was written); returns
        the log path, or None (with a warning) on failure."""
        from safe_pip.audit.store import append

        if changes is not None and self.op.command == "uninstall":
            from safe_pip.changes import only_requested

            # what other runs changed meanwhile is theirs to record
            # pip's own plan names what it removed (-r files, variables, URLs read by pip)
            names = self.planned_removals
            if names is None:
                names = [*self.op.args, *_names_from_requirement_files(self.op)]
            changes = only_requested(changes, names)

        record = self._fields(decision)
        record.update(
            intent=self.intent_id,
            outcome=outcome,
            exit_code=exit_code,
            duration_s=round(duration_s, 3),
            changes=dict(changes or {"installed": [], "removed": []}),
        )
        if escaped is not None:
            record["escaped"] = escaped
        locations = self.locations_near_intent()
        try:
            return append(record, locations, ship=self.shipper())
        except SafePipError as error:
            print(
                f"{PROG}: warning: this operation was not recorded: {error.message}",
                file=sys.stderr,
            )
            return None


def decision_fields(decision: Decision) -> dict[str, Any]:
    """``decision``, ``rule`` and ``reason`` of the record; in warn mode ``would-deny``
    with the first warned rule, and every warned rule in ``would_deny``."""
    if decision.allowed and decision.warnings:
        first = decision.warnings[0]
        return {
            "decision": "would-deny",
            "rule": first.rule,
            "reason": first.reason,
            "would_deny": [{"rule": w.rule, "reason": w.reason} for w in decision.warnings],
        }
    return {
        "decision": "allowed" if decision.allowed else "denied",
        "rule": decision.rule,
        "reason": decision.reason,
    }


def format_warning(decision: Decision) -> str:
    """The short warning of warn mode: the rule, why (first line) and the hint (first line)."""
    lines = [f"{PROG}: warning: the policy will refuse this once it is enforced (warn mode now)"]
    lines.append(f"  rule:    {decision.rule} ({rules.SUMMARY.get(decision.rule, '')})")
    lines.append(f"  why:     {(decision.reason.splitlines() or [''])[0]}")
    if decision.hint:
        lines.append(f"  instead: {decision.hint.splitlines()[0]}")
    return "\n".join(lines)


def _deny(attempt: _Attempt, decision: Decision, contact: str = "") -> int:
    code = exit_code_for_denial(decision.rule)
    # the record first: a stderr that cannot be written must not lose it
    attempt.record(decision, outcome="denied", exit_code=code)
    _show(format_denial(attempt.op, attempt.env, decision, contact, *attempt.context()))
    return code


def _show(message: str) -> None:
    """A message on stderr; a stderr that cannot be written (a closed pipe) is no error."""
    import contextlib

    with contextlib.suppress(OSError):
        print(message, file=sys.stderr, flush=True)


def _begin(
    argv: Sequence[str],
    first: Operation,
    environ: Mapping[str, str],
    installer: str | None,
    uv_door: bool,
) -> _Attempt:
    """The operation and its env, with uv (where it is the installer asked for) already at
    work on its plan and the interpreter asked first, while the decision core loads."""
    python = first.python
    target = resolve_target(
        str(python.value) if python is not None else None,
        python.source if python is not None else "",
        environ,
    )
    uv_args = tuple(argv) if uv_door else None
    early = _start_uv_early(first, target.python, uv_args, environ, installer)
    probe = start_probe(target, environ)
    # while the interpreter (and uv) answer: the decision core's modules
    import safe_pip.decide
    import safe_pip.policy  # noqa: F401

    env = inspect_environment(target, environ, probe)
    # pip also reads <sys.prefix>/pip.conf of the interpreter it runs in (uv reads none)
    config = None if uv_door else load_pip_config(environ, site_prefix=env.prefix)
    op = first if uv_door else _reparsed(argv, first, environ, config)
    attempt = _Attempt(op, env, environ)
    attempt.config = config
    attempt.uv_args = uv_args
    attempt.early = early
    attempt.name_installer(installer)
    return attempt


def _guarded(
    argv: Sequence[str],
    first: Operation,
    environ: Mapping[str, str],
    override: bool,
    installer: str | None = None,
    *,
    uv_door: bool = False,
) -> int:
    attempt = _begin(argv, first, environ, installer, uv_door)
    try:
        return _decided(attempt, override, installer)
    finally:
        if attempt.early is not None:
            attempt.early.close()  # a plan asked for early and not taken: stopped


def _decided(attempt: _Attempt, override: bool, installer: str | None) -> int:
    """Decide the attempt, refuse it or run it (its installer chosen)."""
    env, op = attempt.env, attempt.op
    environ = attempt.environ
    from safe_pip.decide import Decision, decide
    from safe_pip.environment import editable_distributions
    from safe_pip.policy import contact_line, load_policy, tell_the_admin
    from safe_pip.sources import requirement_file_uses
    from safe_pip.values import replace

    try:
        policy = load_policy(env.prefix)
    except PolicyError as error:
        return _deny(
            attempt,
            Decision(
                allowed=False,
                rule=rules.POLICY_INVALID,
                reason="the policy cannot be used, so nothing that changes an env is allowed: "
                f"{error.message}",
                hint=tell_the_admin(entry=attempt.context()[0]),
            ),
            contact_line(),
        )
    attempt.policy = policy
    attempt.name_installer(installer)
    contact = policy.text("messages.contact")
    if op.command == "uninstall":
        env = replace(env, editable_dists=editable_distributions(env))
        attempt.env = env
    from safe_pip.destinations import filesystem, place_destinations

    allowed = policy.paths("install.allowed-destinations")
    placed = place_destinations(op, env, allowed, filesystem(environ))
    file_sources: list[SourceUse] = []
    if op.command == "install" and (
        policy.paths("sources.allowed-indexes") or policy.paths("sources.allowed-find-links")
    ):
        file_sources = requirement_file_uses(op)
    from safe_pip.kernel import notebook_environment

    attempt.notebook = notebook_environment(environ, env)
    notebook_env = attempt.notebook.prefix if attempt.notebook is not None else None
    decision = decide(
        op,
        env,
        policy,
        destinations=placed,
        file_sources=file_sources,
        notebook_env=notebook_env,
    )
    if decision.allowed and op.command == "install":
        decision = _distutils_config(decision, environ)
    if not decision.allowed:
        if decision.rule == rules.READ_ONLY_ENV and op.command == "install":
            decision = _with_next_step(op, env, policy, decision, environ)
        return _deny(attempt, decision, contact)

    denial = _unrecordable(attempt) or _choose_backend(attempt, installer)
    if denial is not None:
        return _deny(attempt, denial, contact)
    for warning in decision.warnings:
        _show(format_warning(warning))
    if attempt.notebook is not None:
        _show(
            f"{PROG}: warning: pip is about to change another env than the notebook's\n"
            + "\n".join(attempt.context()[1])
        )
    from safe_pip.runner import forwarded_signals

    with forwarded_signals():
        return _run_allowed(attempt, decision, override, contact)


def _reparsed(
    argv: Sequence[str], first: Operation, environ: Mapping[str, str], config: PipConfig | None
) -> Operation:
    """The pip command line read again with the env's own ``pip.conf`` (``config``),
    keeping safe-pip's own options for the messages."""
    from safe_pip.values import replace

    op = parse_pip_command_line(argv, environ, config)
    return replace(op, own_options=first.own_options)


def _unrecordable(attempt: _Attempt) -> Decision | None:
    """The refusal of an operation that cannot be recorded (``audit.required``), or None."""
    from safe_pip.audit.locations import writable_location

    assert attempt.policy is not None
    if not attempt.policy.flag("audit.required"):
        return None
    return _audit_required(attempt) if writable_location(attempt.locations()) is None else None


def _choose_backend(attempt: _Attempt, requested: str | None) -> Decision | None:
    """The installer for this command (``attempt.backend``), or a denial."""
    from safe_pip.backends import backend, choose_installer
    from safe_pip.errors import InstallerMissing

    assert attempt.policy is not None
    name, denial = choose_installer(requested, attempt.env, attempt.policy)
    if denial is not None:
        return denial
    if name == "uv" and requested is None and not _uv_can_run(attempt):
        name = "pip"  # the policy's choice, for a pip command line uv cannot carry out
    if attempt.early is not None and attempt.early.name == name:
        attempt.backend = attempt.early
        return None
    try:
        attempt.backend = backend(name, attempt.env)
    except InstallerMissing as error:
        missing = _missing_installer(attempt, error)
        if missing is not None:
            return missing
        attempt.backend = backend("pip", attempt.env)
    return None


def _uv_can_run(attempt: _Attempt) -> bool:
    """False (with a note) for a pip command line with options uv has no counterpart for:
    where uv is only the policy's default, such a command runs with pip."""
    from safe_pip.backends.uv_cli import uv_args_for

    if attempt.uv_args is not None:
        return True
    try:
        uv_args_for(attempt.op)
    except UsageError as error:
        _show(f"{PROG}: note: {error.message}; installing with pip instead")
        return False
    return True


def _missing_installer(attempt: _Attempt, error: SafePipError) -> Decision | None:
    """uv is chosen but not installed: pip instead (a note), or a denial, per policy."""
    from safe_pip.backends import missing_installer_denial

    assert attempt.policy is not None
    denial = missing_installer_denial(attempt.policy, error, uv_door=attempt.uv_args is not None)
    if denial is None:
        _show(f"{PROG}: note: {error.message}; installing with pip instead")
    return denial


def _distutils_config(decision: Decision, environ: Mapping[str, str]) -> Decision:
    """Refuse while ~/.pydistutils.cfg sets a location that every setuptools build reads."""
    from safe_pip.buildconfig import moving_config
    from safe_pip.decide import Decision

    found = moving_config(environ)
    if found is None:
        return decision
    path, section, key, value = found
    user = key.lower() == "user"
    return Decision(
        allowed=False,
        rule=rules.USER_SITE if user else rules.OUTSIDE_ENV,
        reason=f"{path} [{section}] {key} = {value}: distutils and setuptools builds read this "
        "file and would "
        + ("install into your user site (~/.local)" if user else "move built or installed files"),
        hint=f"remove `{key}` from [{section}] in {path} (or the file), then run pip again",
    )


def _overridden(decision: Decision, conflicts: list[Conflict]) -> Decision:
    """The allowed decision, saying (for the log) which conda packages the override hit."""
    from safe_pip.values import replace

    listed = "; ".join(c.describe() for c in conflicts)
    return replace(
        decision,
        reason=f"{decision.reason}; with {REPLACE_CONDA_FLAG} (allowed by the policy), "
        f"replacing conda-owned: {listed}",
    )


def _names_from_requirement_files(op: Operation) -> list[str]:
    from safe_pip.names import requirement_line_name

    keys = (requirement_line_name(line) for line in requirement_file_requirements(op))
    return [key for key in keys if key]


def _with_next_step(
    op: Operation,
    env: Environment,
    policy: Policy,
    decision: Decision,
    environ: Mapping[str, str],
) -> Decision:
    from safe_pip import nextstep
    from safe_pip.values import replace

    try:
        hint = nextstep.read_only_hint(op, env, policy, environ)
    except (OSError, SafePipError) as error:
        hint = decision.hint + f"\n(could not prepare an environment.yml: {error})"
    return replace(decision, hint=hint)


def _audit_required(attempt: _Attempt) -> Decision:
    from safe_pip.decide import Decision

    return Decision(
        allowed=False,
        rule=rules.AUDIT_REQUIRED,
        reason="this operation cannot be recorded durably: no audit log location took the "
        f"record ({', '.join(attempt.locations())})",
        hint="ask the admin to fix the audit log location (audit.location in the policy), "
        "or to free space there",
    )


def _recover_unfinished(attempt: _Attempt, installed: Mapping[str, Installed]) -> None:
    """Complete the intents of earlier operations on this env that never got an outcome
    (safe-pip was killed), with what changed on disk since."""
    from safe_pip.audit.recovery import recover_unfinished

    locations = attempt.locations()
    recover_unfinished(locations, installed, locations, attempt.shipper())


def _decided_destinations(attempt: _Attempt, decision: Decision) -> list[str]:
    """Where the decision let pip write besides the env: the location options it
    allowed (``--target``, ``--prefix``, ``--src``, ...), and the user base when the
    policy sets ``user-site`` to warn.  Verify-after does not watch these."""
    from safe_pip.destinations import filesystem, place_destinations

    roots = [
        placed.path
        for placed in place_destinations(attempt.op, attempt.env, (), filesystem(attempt.environ))
        if placed.path
    ]
    if any(warning.rule == rules.USER_SITE for warning in decision.warnings):
        home = attempt.environ.get("HOME", os.path.expanduser("~"))
        roots.append(attempt.env.user_base or os.path.join(home, ".local"))
    return roots


def _run_allowed(attempt: _Attempt, decision: Decision, override: bool, contact: str) -> int:
    import time

    from safe_pip import verify
    from safe_pip.changes import compute_changes
    from safe_pip.inventory import scan
    from safe_pip.policy import default_policy

    op, env = attempt.op, attempt.env
    assert attempt.backend is not None
    attempt.backend.start(_request(attempt, decision))  # uv plans while safe-pip writes
    sites = [env.purelib, env.platlib]
    before = scan(sites)
    index_url = str(op.index_url) if op.index_url else None
    _recover_unfinished(attempt, before)
    required = (attempt.policy or default_policy()).flag("audit.required")
    if not attempt.write_intent(decision, before) and required:
        return _deny(attempt, _audit_required(attempt), contact)
    # verify after: fingerprints of what this run may not change, and of the env itself
    places = verify.sanctioned(
        verify.watched_places(env, attempt.environ), _decided_destinations(attempt, decision)
    )
    watched = verify.snapshot(places)
    own = verify.snapshot(((site, env.prefix) for site in dict.fromkeys(sites)), children=False)
    started_ns = time.time_ns() - _CLOCK_SLACK_NS

    verdict: Decision | None = None
    replaced: list[Conflict] = []
    #: refusals of pip's plan that the policy sets to warn
    warned: list[Decision] = []
    checked = _run_checked(attempt, decision, override, before, replaced, warned)
    if checked is None:
        return _deny(attempt, _hook_missing(env), contact)
    run, report, verdict = checked
    after = scan(sites)
    changes = compute_changes(before, after, report if op.command == "install" else None, index_url)

    # outside the env: anything that appeared was this run's doing, and is removed
    escapes = verify.remove_created(verify.compare(watched), started_ns)
    if op.command == "install" and verdict is None:
        appeared = [key for key in after if key not in before or after[key] != before[key]]
        escapes += verify.unplanned_in_env(env, own, report, appeared)
    if escapes:
        escaped = _escaped_write(escapes)
        attempt.record(
            escaped,
            outcome=_outcome(run.exit_code, run.interrupted),
            exit_code=exit_code_for_denial(escaped.rule),
            duration_s=run.duration_s,
            changes=changes,
            escaped=[{"path": e.path, "change": e.change, "removed": e.removed} for e in escapes],
        )
        _show(format_denial(op, env, escaped, contact, *attempt.context()))
        return exit_code_for_denial(escaped.rule)

    if verdict is not None:
        attempt.record(
            verdict,
            outcome="denied",
            exit_code=exit_code_for_denial(verdict.rule),
            duration_s=run.duration_s,
            changes=changes,
        )
        _show(format_denial(op, env, verdict, contact, *attempt.context()))
        return exit_code_for_denial(verdict.rule)
    if replaced:
        decision = _overridden(decision, replaced)
    for warning in warned:
        decision = decision.with_warning(warning)
    attempt.record(
        decision,
        outcome=_outcome(run.exit_code, run.interrupted),
        exit_code=run.exit_code,
        duration_s=run.duration_s,
        changes=changes,
    )
    return run.exit_code


#: file ctimes come from a coarse clock that may lag time.time_ns() by a tick
_CLOCK_SLACK_NS = 50_000_000


def _escaped_write(escapes: list[Any]) -> Decision:
    from safe_pip.decide import Decision

    listed = "\n".join(f"  {e.describe()}" for e in escapes)
    return Decision(
        allowed=False,
        rule=rules.ESCAPED_WRITE,
        reason="pip (or a build it ran) wrote outside what the policy allowed for this "
        f"env:\n{listed}",
        hint="look at the build options, distutils/setuptools config files (~/.pydistutils.cfg, "
        "setup.cfg) and the package's build code; what was not removed again needs cleaning "
        "up by hand (or by the admin)",
    )


def _run_checked(  # noqa: C901 - counts its closures `refuse` and `check`, which share the run's state
    attempt: _Attempt,
    decision: Decision,
    override: bool,
    before: Mapping[str, Any],
    replaced: list[Conflict],
    warned: list[Decision],
) -> tuple[PipRun, dict[str, Any] | None, Decision | None] | None:
    """pip install or uninstall, paused once pip has made its plan, for the checks on it.

    Returns (the run, pip's plan, a denial verdict or None), or None when the
    check is needed but this pip offers no point to make it (nothing ran).
    """
    from safe_pip.decide import Decision, decide_conda_conflicts, warns
    from safe_pip.destinations import filesystem, writes_env
    from safe_pip.sources import checks_plan

    op, env = attempt.op, attempt.env
    assert attempt.policy is not None
    policy = attempt.policy
    command = op.command or "install"
    protect = (
        env.is_conda
        and writes_env(op, env, filesystem(attempt.environ))
        and policy.flag("conda.protect-conda-packages")
    )
    sources = command == "install" and checks_plan(policy)
    dev_only = policy.mode_for(env.kind.value) == "dev-only" and bool(
        command == "uninstall" or decision.dev_install
    )
    verdict: Decision | None = None

    def refuse(denial: Decision) -> bool:
        """True: stop pip.  In warn mode the refusal is shown and noted, and pip goes on."""
        if not warns(policy, env, denial.rule):
            return True
        _show(format_warning(denial))
        warned.append(denial)
        return False

    def check(report: Mapping[str, Any] | None) -> tuple[bool, object]:
        """Between pip's plan and its changes: go, or stop with a denial."""
        if command == "uninstall":
            go, denial = _check_removals(
                attempt, report, before, protect, dev_only, override, replaced
            )
            if isinstance(denial, Decision) and not refuse(denial):
                return True, None
            return go, denial
        for denial in (
            _not_local(op, env, report) if dev_only else None,
            _sources_refusal(report, policy) if sources else None,
        ):
            if denial is not None and (denial is _unreadable_report() or refuse(denial)):
                return False, denial
        if not protect:
            return True, None
        conflicts = _planned_conflicts(env, report, before, attempt.environ)
        if conflicts is None:
            return False, _unreadable_report()
        conflict = decide_conda_conflicts(op, conflicts, policy, override)
        if conflict is not None:
            return (False, conflict) if refuse(conflict) else (True, None)
        replaced.extend(conflicts)  # allowed by --replace-conda-packages
        return True, None

    assert attempt.backend is not None
    request = _request(attempt, decision)
    if protect and attempt.backend.name == "uv":
        # uv is working out its plan meanwhile: load what the check of it reads now
        import safe_pip.conda_records
        import safe_pip.ownership
        import safe_pip.plan  # noqa: F401

    def check_and_record_plan(report: Mapping[str, Any] | None) -> tuple[bool, object]:
        go, verdict = check(report)
        if go:
            attempt.write_plan(decision, report)
        return go, verdict

    if command == "uninstall":
        checked = attempt.backend.uninstall(request, check_and_record_plan)
    else:
        # the files each planned item writes: what the conda file-level checks read
        checked = attempt.backend.install(request, check_and_record_plan, files=protect)
    run, report = checked.run, checked.plan
    if checked.no_check_point:
        if protect or sources or dev_only:
            return None
        # nothing to check: the bootstrap stopped before pip started, run plain pip
        from safe_pip.runner import run_pip

        run = run_pip(request.python, request.args, request.environ)
    if isinstance(checked.verdict, Decision):
        verdict = checked.verdict
    return run, report, verdict


def _isolated_kept(pip_args: Sequence[str], op: Operation) -> tuple[str, ...]:
    """``--isolated`` after the command as ``--isolate``: pip still runs isolated
    (``isolated_mode``), but reads the variables ``pipconfig.pinned_environ`` sets."""
    command = op.command
    if not op.config_isolated or command is None or command not in pip_args:
        return tuple(pip_args)
    at = list(pip_args).index(command)
    rest = ["--isolate" if a == "--isolated" else a for a in pip_args[at + 1 :]]
    return (*pip_args[: at + 1], *rest)


def _sources_refusal(report: Mapping[str, Any] | None, policy: Policy) -> Decision | None:
    """A refusal of pip's plan by the package-source rules, or None."""
    from safe_pip.decide import Decision
    from safe_pip.sources import plan_refusal, planned_items

    if report is None or report.get("safe_pip_complete") is False:
        return _unreadable_report()
    found = plan_refusal(planned_items(report), policy)
    if found is None:
        return None
    return Decision(allowed=False, rule=found[0], reason=found[1], hint=found[2])


def _not_local(
    op: Operation, env: Environment, report: Mapping[str, Any] | None
) -> Decision | None:
    """In a dev-only env: a refusal when pip's plan holds anything but local source trees
    (dependencies resolved from an index)."""
    from safe_pip.decide import Decision, corrected_command

    if report is None or report.get("safe_pip_complete") is False:
        return _unreadable_report()
    others = []
    for item in report.get("install") or []:
        info = item.get("download_info") if isinstance(item, dict) else None
        url = str((info or {}).get("url", ""))
        if not (url.startswith("file:") and isinstance((info or {}).get("dir_info"), dict)):
            others.append(str(((item or {}).get("metadata") or {}).get("name", "?")))
    if not others:
        return None
    return Decision(
        allowed=False,
        rule=rules.DEV_ONLY,
        reason=f"{env.prefix} accepts developer installs only, and pip would also install "
        f"{', '.join(others)} from an index",
        hint="install only your project: "
        + corrected_command(op, add=["--no-deps"])
        + "\n(its dependencies come from the environment's spec)",
    )


def _check_removals(
    attempt: _Attempt,
    report: Mapping[str, Any] | None,
    before: Mapping[str, Any],
    protect: bool,
    dev_only: bool,
    override: bool,
    replaced: list[Conflict],
) -> tuple[bool, object]:
    """An uninstall plan: no conda-owned distribution nor file, only dev installs in a
    dev-only env."""
    from safe_pip.decide import Decision, decide_conda_conflicts
    from safe_pip.environment import editable_distributions, normalize_name
    from safe_pip.plan import planned_removals, uninstall_conflicts

    op, env = attempt.op, attempt.env
    assert attempt.policy is not None
    if report is None or report.get("safe_pip_complete") is False:
        if protect or dev_only:
            return False, _unreadable_report()
        return True, None
    removals = planned_removals(report)
    attempt.planned_removals = [str(item["name"]) for item in removals]
    if dev_only:
        editable = editable_distributions(env)
        others = [n for n in attempt.planned_removals if normalize_name(n) not in editable]
        if others:
            return False, Decision(
                allowed=False,
                rule=rules.DEV_ONLY,
                reason=f"{env.prefix} accepts developer installs only, and pip would also "
                f"remove {', '.join(others)}, which is not a developer install",
                hint="uninstall only your own editable installs here; other packages come "
                "from the environment's spec",
            )
    if not protect:
        return True, None
    conflicts = uninstall_conflicts(env, report, before, attempt.environ)
    denial = decide_conda_conflicts(op, conflicts, attempt.policy, override)
    if denial is not None:
        return False, denial
    replaced.extend(conflicts)  # allowed by --replace-conda-packages
    return True, None


def _request(attempt: _Attempt, decision: Decision) -> Request:
    """What the chosen backend runs: pip's arguments, or uv's."""
    from safe_pip.backends import Request
    from safe_pip.passthrough import without_user_site

    env, op = attempt.env, attempt.op
    environ = without_user_site(attempt.environ)
    assert attempt.backend is not None
    if attempt.backend.name == "pip":
        # pip's configuration as read for the decision, and no config file read again
        command = op.command or "install"
        pinned = pinned_environ(environ, attempt.config, command, isolated=op.config_isolated)
        return Request(env.python, _isolated_kept(decision.pip_args, op), pinned)
    return _uv_request(attempt)


def _uv_request(attempt: _Attempt) -> Request:
    """What the uv backend runs: the ``uv pip`` arguments (the user's, or pip's translated)."""
    return _uv_request_for(attempt.env.python, attempt.op, attempt.uv_args, attempt.environ)


def _uv_request_for(
    python: str, op: Operation, uv_args: Sequence[str] | None, environ: Mapping[str, str]
) -> Request:
    from safe_pip.backends import Request
    from safe_pip.backends.uv_cli import uv_args_for
    from safe_pip.passthrough import without_user_site

    args = list(uv_args) if uv_args is not None else uv_args_for(op)
    if not {"--break-system-packages", "--no-break-system-packages"} & set(args):
        # safe-pip has decided; the env's PEP 668 marker is its sign to bare pip and uv
        # (uv refuses a marked env without this, also for its dry run); a user who asks
        # uv to respect the marker (--no-break-system-packages) gets uv's own answer
        args.insert(1, "--break-system-packages")
    return Request(python, tuple(args), without_user_site(environ))


def _start_uv_early(
    op: Operation,
    python: str,
    uv_args: Sequence[str] | None,
    environ: Mapping[str, str],
    requested: str | None,
) -> Backend | None:
    """``uv pip install`` or ``--installer uv``: uv works out its plan (a dry run, nothing
    changes) from the start, while safe-pip inspects the env, reads the policy and
    decides; the install takes that plan if uv is the installer chosen and the request
    is the same.  The uv found without the env (safe-pip's own), else None."""
    from safe_pip.backends.uv import UvBackend, find_uv
    from safe_pip.errors import InstallerMissing
    from safe_pip.names import is_plain_requirement

    if requested != "uv" or op.command != "install":
        return None
    if op.target_dir is not None or op.prefix_path is not None or op.root_path is not None:
        return None  # uv's dry run makes a --target/--prefix directory: not before the decision
    if op.editables or op.requirement_files or any(not is_plain_requirement(a) for a in op.args):
        return None  # a source tree or URL would be built or fetched: not before the decision
    try:
        early = UvBackend(find_uv(None))
        early.start(_uv_request_for(python, op, uv_args, environ))
    except (InstallerMissing, UsageError):
        return None  # said (or refused) in its place, once the env and the policy are known
    return early


_UNREADABLE: list[Decision] = []


def _unreadable_report() -> Decision:
    """The refusal of a plan that cannot be read (one object: compared by identity)."""
    from safe_pip.decide import Decision

    if _UNREADABLE:
        return _UNREADABLE[0]
    _UNREADABLE.append(
        Decision(
            allowed=False,
            rule=rules.CONDA_OWNED,
            reason="what pip was about to install could not be read, so the install cannot be "
            "checked against the packages conda owns; nothing was installed",
            hint="try again; if it persists, report it to the admin",
        )
    )
    return _UNREADABLE[0]


def _hook_missing(env: Environment) -> Decision:
    from safe_pip.decide import Decision

    return Decision(
        allowed=False,
        rule=rules.CONDA_OWNED,
        reason=f"this env's pip ({env.pip_version or 'unknown version'}) offers no point to "
        "check an install before it happens, so the packages conda owns cannot be protected",
        hint="upgrade pip with conda (`conda install pip`), or ask the admin",
    )


def _outcome(exit_code: int, interrupted: bool) -> str:
    if interrupted:
        return "interrupted"
    return "ok" if exit_code == 0 else "failed"


def _planned_conflicts(
    env: Environment,
    report: Mapping[str, Any] | None,
    installed: Mapping[str, Any],
    environ: Mapping[str, str],
) -> list[Conflict] | None:
    """The conda-owned distributions pip is about to replace (None: no report to check)."""
    from safe_pip.changes import planned_installs, planned_removals
    from safe_pip.conda_records import read_records
    from safe_pip.environment import normalize_name
    from safe_pip.ownership import owners

    if report is None or report.get("safe_pip_complete") is False:
        return None  # not known what pip would install: nothing to check against
    from safe_pip.decide import Conflict
    from safe_pip.plan import install_conflicts

    planned = planned_installs(report)
    if not planned and not planned_removals(report):
        return []
    # the files each planned wheel writes, against conda's files and other RECORDs
    conflicts = install_conflicts(env, report, installed, environ)
    if conflicts is None:
        return None
    # `uv pip sync` also removes distributions outright
    removed = {normalize_name(item["name"]) for item in planned_removals(report)}
    touched = [*planned, *removed]
    if not any(key in installed for key in touched):
        return conflicts
    found = owners(installed, read_records(env.prefix), env, touched)
    for key, owner in found.items():
        if not owner.conda:
            continue
        item = planned.get(key)
        metadata = (item or {}).get("metadata") or {}
        conflicts.append(
            Conflict(
                owner.conda_package,
                owner.version,
                owner.channel_name,
                None if item is None else str(metadata.get("version", "")),
                requested=item is None or bool(item.get("requested")),
            )
        )
    return conflicts


__all__ = [
    "format_denial",
    "run_pip_command",
    "run_uv_pip_command",
]
