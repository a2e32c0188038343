"""The decision core: (Operation, Environment, Policy) -> Decision.  Pure: no I/O.

Every denial names one rule id from ``rules.py``, says why, and says what to do
instead.  An allowed decision carries the exact pip arguments to run.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping, Sequence

from safe_pip import rules
from safe_pip.destinations import LEXICAL, Destination, place_destinations
from safe_pip.environment import Environment, EnvKind
from safe_pip.pipcli import REPLACE_CONDA_FLAG, Operation
from safe_pip.policy import Policy
from safe_pip.sources import (
    DEFAULT_INDEX,
    SourceUse,
    option_uses,
    source_refusal,
    typed_refusal,
)
from safe_pip.values import frozen, replace

#: safe-pip's own flag to replace conda-owned packages; removed before pip runs.


@frozen
class Decision:
    allowed: bool
    rule: str
    reason: str
    hint: str = ""
    #: the arguments after ``<python> -m pip`` when allowed
    pip_args: tuple[str, ...] = ()
    #: True for a dev install (-e of local source trees only)
    dev_install: bool = False
    #: refusals the policy sets to ``warn`` (``enforcement``): the command runs, and
    #: the record says ``would-deny`` with the first one's rule
    warnings: tuple[Decision, ...] = ()

    def with_warning(self, refusal: Decision) -> Decision:
        return replace(self, warnings=(*self.warnings, refusal))


def _deny(rule: str, reason: str, hint: str) -> Decision:
    return Decision(allowed=False, rule=rule, reason=reason, hint=hint)


def is_local_path(requirement: str) -> bool:
    """A requirement naming a local file or directory (not a name, URL or VCS URL)."""
    value = requirement.strip()
    if value.startswith("file:"):
        return True
    if "://" in value or value.startswith(("git+", "hg+", "svn+", "bzr+")):
        return False
    if value in (".", "..") or value.startswith(("./", "../", "/", "~")):
        return True
    return os.sep in value and not any(op in value for op in ("==", ">=", "<=", "~=", "!=", ";"))


def _local_source(requirement: str) -> bool:
    return is_local_path(requirement) and not requirement.endswith(".whl")


def is_dev_install(op: Operation) -> bool:
    """Only -e of local source trees, and nothing else to install."""
    if op.command != "install" or not op.editables:
        return False
    if op.args or op.requirement_files:
        return False
    return all(is_local_path(e) for e in op.editables)


def command_text(op: Operation) -> str:
    """The command as the user typed it, for messages: secrets masked (``***``)."""
    from safe_pip.audit.redact import redact_argv

    args = redact_argv(op.argv)
    position = args.index(op.command) + 1 if op.command in args else len(args)
    return shlex.join([op.program, *args[:position], *op.own_options, *args[position:]])


def _own_env_hint(env: Environment) -> str:
    version = env.short_version
    if env.is_conda:
        return (
            f"create your own env and install there: `conda create -n myenv python={version} pip` "
            "then `conda activate myenv` and run pip again (or pass --python to it)"
        )
    return (
        f"create a venv and install there: `python{version} -m venv ~/venvs/myenv` then "
        "`~/venvs/myenv/bin/pip install ...`"
    )


def _with_extra(op: Operation, extra: list[str]) -> tuple[str, ...]:
    """pip arguments: the user's (less --python and our own flags), ours after the command."""
    args = [a for a in op.argv_without_python() if a != REPLACE_CONDA_FLAG]
    if op.command_argv:
        # insert right after the command name
        position = len(args) - len(op.command_argv) + 1
        position = max(position, 1)
        for index, item in enumerate(args):
            if item == op.command:
                position = index + 1
                break
        return (*args[:position], *extra, *args[position:])
    return (*args, *extra)


def _supports_break_system_packages(pip_version: str | None) -> bool:
    if not pip_version:
        return False
    parts = []
    for piece in pip_version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts) >= (23, 0, 1)


def corrected_command(op: Operation, *, add: list[str], drop: tuple[str, ...] = ()) -> str:
    """The user's command with options added, for messages: secrets masked (``***``)."""
    from safe_pip.audit.redact import redact_argv

    args = redact_argv(a for a in op.argv if a not in drop)
    position = args.index(op.command) + 1 if op.command in args else len(args)
    extra = [*op.own_options, *add]
    return shlex.join([op.program, *args[:position], *extra, *args[position:]])


# --- the rule table ---------------------------------------------------------------------
#
# A rule is a small function that returns a ``Refusal`` (why, and what to do instead) or
# None, and one entry in a table that gives it its rule id.  ``decide`` asks the rules in
# table order; the first refusal is the decision.  Adding a rule: an id in ``rules.py``,
# one function here, one entry in the table, one entry in docs/rules.md.


@frozen
class Case:
    """Everything a rule may look at: the inputs of ``decide``, with the destinations placed."""

    op: Operation
    env: Environment
    policy: Policy
    destinations: tuple[Destination, ...]
    #: a developer install (-e of local source trees only)
    dev: bool
    #: index and find-links options read from the requirement files (by the shell)
    file_sources: tuple[SourceUse, ...] = ()
    #: the prefix of the env the notebook runs, when safe-pip runs in a Jupyter
    #: kernel of another env than the target (``!pip`` with another env's pip)
    notebook_env: str | None = None

    @property
    def mode(self) -> str:
        """What the policy allows in this kind of env: allow, dev-only or deny."""
        return self.policy.mode_for(self.env.kind.value)

    @property
    def into_env(self) -> bool:
        """pip writes into the env (no destination in a directory the policy lists)."""
        return not any(d.listed and not d.in_env for d in self.destinations if d.install)


@frozen
class Refusal:
    reason: str
    hint: str


@frozen
class Rule:
    """One entry of the table: a rule id and the check that may refuse under it."""

    id: str
    check: Callable[[Case], Refusal | None]


def _explicit_user_site(case: Case) -> Refusal | None:
    setting = case.op.user_site
    if setting is None or not setting.value:
        return None
    env = case.env
    return Refusal(
        f"a user install ({setting.source}) puts packages in {env.user_site or '~/.local'}, "
        f"which every env of Python {env.short_version} sees: one user install can break "
        "other envs and JupyterLab itself",
        "install into the environment instead (drop --user / unset PIP_USER / remove "
        "`user = true` from pip.conf), or " + _own_env_hint(env),
    )


def _frozen_env(case: Case) -> Refusal | None:
    if not case.env.frozen:
        return None
    return Refusal(
        f"the environment {case.env.prefix} is frozen (conda-meta/frozen): nothing may change it",
        "change the environment's spec and rebuild it, or " + _own_env_hint(case.env),
    )


def _empty_destination(dest: Destination, _case: Case) -> Refusal | None:
    if dest.path:
        return None
    return Refusal(
        f"{dest.setting.source} is empty: pip would then write relative to / or the current "
        "directory and skip the environment's PEP 668 check",
        "give the option a directory, or leave it out to install into the environment",
    )


def _destination_in_user_base(dest: Destination, case: Case) -> Refusal | None:
    if not dest.in_user_base:
        return None
    return Refusal(
        f"{dest.setting.source} points into your user base {case.env.user_base}: that is a "
        "user install by another route",
        _own_env_hint(case.env),
    )


def _destination_in_frozen_env(dest: Destination, case: Case) -> Refusal | None:
    if not dest.frozen:
        return None
    return Refusal(
        f"{dest.setting.source} = {dest.path} writes into a frozen environment "
        "(conda-meta/frozen): nothing may change it",
        _own_env_hint(case.env),
    )


def _destination_in_base_env(dest: Destination, case: Case) -> Refusal | None:
    kind = dest.foreign
    if not dest.elsewhere or kind != EnvKind.CONDA_BASE:
        return None
    if case.policy.mode_for(kind.value) != "deny":
        return None
    return Refusal(
        f"{dest.setting.source} = {dest.path} writes into a conda base environment, which runs "
        "conda and JupyterLab; pip may not change it",
        _own_env_hint(case.env),
    )


def _destination_in_system_python(dest: Destination, case: Case) -> Refusal | None:
    kind = dest.foreign
    if not dest.elsewhere or kind != EnvKind.SYSTEM or case.policy.mode_for(kind.value) != "deny":
        return None
    return Refusal(
        f"{dest.setting.source} = {dest.path} writes into the system Python",
        _own_env_hint(case.env),
    )


def _destination_outside_env(dest: Destination, case: Case) -> Refusal | None:
    if not dest.elsewhere or not dest.install:
        return None
    allowed_dirs = case.policy.paths("install.allowed-destinations")
    listed = ", ".join(allowed_dirs) if allowed_dirs else "none"
    return Refusal(
        f"{dest.setting.source} = {dest.path} writes outside the target environment "
        f"{case.env.prefix} (directories the policy allows: {listed})",
        "install into the environment itself (drop the option), or ask the admin to list "
        "the directory under install.allowed-destinations",
    )


def _env_kind_denied(case: Case, kind: EnvKind) -> bool:
    return case.into_env and case.mode == "deny" and case.env.kind == kind


def _base_env(case: Case) -> Refusal | None:
    if not _env_kind_denied(case, EnvKind.CONDA_BASE):
        return None
    return Refusal(
        f"{case.env.prefix} is the conda base environment, which runs conda and JupyterLab; "
        "pip may not change it (--break-system-packages does not change this)",
        _own_env_hint(case.env),
    )


def _system_python(case: Case) -> Refusal | None:
    if not _env_kind_denied(case, EnvKind.SYSTEM):
        return None
    return Refusal(
        f"{case.env.prefix} is the system Python, managed by the distribution "
        "(--break-system-packages does not change this)",
        _own_env_hint(case.env),
    )


def _env_denied(case: Case) -> Refusal | None:
    env = case.env
    if not case.into_env or case.mode != "deny":
        return None
    if env.kind in (EnvKind.CONDA_BASE, EnvKind.SYSTEM):
        return None  # their own rules above
    return Refusal(
        f"the policy allows no pip {case.op.command} in {env.kind} environments like {env.prefix}",
        "change the environment's spec and rebuild it, or " + _own_env_hint(env),
    )


def _dev_only_env(case: Case) -> Refusal | None:
    if not case.into_env or case.mode != "dev-only":
        return None
    op = case.op
    if op.command == "uninstall":
        # removing one's own editable installs is part of developing
        # (-r files are pip's to read: what they name is checked on pip's plan)
        from safe_pip.names import project_name

        names = {project_name(a, filesystem=False) or a for a in op.args}
        if (names or op.requirement_files) and names <= case.env.editable_dists:
            return None
    elif case.dev and case.policy.flag("install.dev-installs"):
        return None
    return Refusal(
        f"{case.env.prefix} accepts developer installs only "
        "(pip install -e <local dir>); other packages come from its spec",
        "for a package, add it to the environment's spec and rebuild; for your "
        "own code: pip install --no-build-isolation -e <dir>",
    )


def _dev_installs_off(case: Case) -> Refusal | None:
    if not case.into_env or case.mode != "allow":
        return None
    if not case.dev or case.policy.flag("install.dev-installs"):
        return None
    return Refusal(
        "the policy does not allow developer installs here (install.dev-installs = false)",
        _own_env_hint(case.env),
    )


def _read_only_env(case: Case) -> Refusal | None:
    env = case.env
    if not case.into_env or env.writable:
        return None
    fallback = (
        f"so pip would fall back to a user install in {env.user_site}, which every env of "
        f"Python {env.short_version} sees"
        if env.user_site_enabled
        else "so pip cannot write there"
    )
    return Refusal(
        f"the environment {env.prefix} is not writable by you, {fallback}",
        "add the package to the environment's spec and have it rebuilt, or " + _own_env_hint(env),
    )


def _isolated_build_in_conda_env(case: Case) -> Refusal | None:
    op = case.op
    if not (
        op.command == "install"
        and case.env.is_conda
        and case.policy.flag("install.require-no-build-isolation")
        and op.build_isolation
        and any(_local_source(r) for r in (*op.editables, *op.args))
    ):
        return None
    fixed = corrected_command(op, add=["--no-build-isolation"])
    return Refusal(
        "an isolated build compiles your source tree against fresh PyPI wheels, not the "
        "conda packages of this env, so the result may not work with them",
        f"run: {fixed}\n(make sure the build requirements, e.g. setuptools, are installed "
        "in the env first: `conda install setuptools`)",
    )


def _other_env_than_the_notebook(case: Case) -> Refusal | None:
    if case.notebook_env is None or case.policy.text("notebook.other-env") != "refuse":
        return None
    return Refusal(
        f"this notebook runs the env {case.notebook_env}, and cannot import what pip would "
        f"install into {case.env.prefix}",
        "install into the notebook's env: %" + command_text(case.op),
    )


def _each_destination(
    check: Callable[[Destination, Case], Refusal | None],
) -> Callable[[Case], Refusal | None]:
    """A rule about one --target/--prefix/--root, asked of each in turn."""

    def rule(case: Case) -> Refusal | None:
        for dest in case.destinations:
            refusal = check(dest, case)
            if refusal is not None:
                return refusal
        return None

    rule.__name__ = check.__name__
    return rule


#: The rules for a mutating pip command, in the order they are asked; the first refusal
#: is the decision.
def _source_not_allowed(case: Case) -> Refusal | None:
    if case.op.command != "install":
        return None
    uses = option_uses(case.op)
    if any(u.where.endswith((" -i", " --index-url")) for u in case.file_sources):
        # a requirement file's --index-url replaces pip's default index
        uses = [u for u in uses if u.location != DEFAULT_INDEX]
    refused = source_refusal([*uses, *case.file_sources], case.policy)
    return Refusal(*refused) if refused is not None else None


def _denied_by_name(case: Case) -> Refusal | None:
    refused = typed_refusal(case.op, case.policy)
    return Refusal(*refused) if refused is not None else None


RULES: tuple[Rule, ...] = (
    Rule(rules.USER_SITE, _explicit_user_site),
    Rule(rules.FROZEN_ENV, _frozen_env),
    Rule(rules.OUTSIDE_ENV, _each_destination(_empty_destination)),
    Rule(rules.USER_SITE, _each_destination(_destination_in_user_base)),
    Rule(rules.FROZEN_ENV, _each_destination(_destination_in_frozen_env)),
    Rule(rules.BASE_ENV, _each_destination(_destination_in_base_env)),
    Rule(rules.SYSTEM_PYTHON, _each_destination(_destination_in_system_python)),
    Rule(rules.OUTSIDE_ENV, _each_destination(_destination_outside_env)),
    Rule(rules.BASE_ENV, _base_env),
    Rule(rules.SYSTEM_PYTHON, _system_python),
    Rule(rules.ENV_DENIED, _env_denied),
    Rule(rules.DEV_ONLY, _dev_only_env),
    Rule(rules.ENV_DENIED, _dev_installs_off),
    Rule(rules.READ_ONLY_ENV, _read_only_env),
    Rule(rules.BUILD_ISOLATION, _isolated_build_in_conda_env),
    Rule(rules.INDEX_NOT_ALLOWED, _source_not_allowed),
    Rule(rules.PACKAGE_DENIED, _denied_by_name),
    Rule(rules.NOTEBOOK_ENV, _other_env_than_the_notebook),
)


def decide(
    op: Operation,
    env: Environment,
    policy: Policy,
    foreign: Mapping[str, EnvKind] | None = None,
    *,
    destinations: Sequence[Destination] | None = None,
    file_sources: Sequence[SourceUse] = (),
    notebook_env: str | None = None,
) -> Decision:
    """Decide one pip operation.  Pure: ask the rules in ``RULES`` order.

    ``destinations``: the operation's --target/--prefix/--root, placed by the
    shell (``destinations.place_destinations`` with the filesystem resolver).
    When not given they are placed as written, and ``foreign`` maps a
    destination to the kind of protected env it lies in (a conda base, the
    system Python).  ``notebook_env``: see ``Case``.
    """
    if not op.mutating:
        return Decision(
            allowed=True,
            rule=rules.READ_ONLY_COMMAND,
            reason=f"`pip {op.command or ''}` changes no environment",
            pip_args=tuple(op.argv_without_python()),
        )
    if destinations is None:
        kinds = dict(foreign or {})
        resolver = replace(LEXICAL, env_kind=kinds.get)
        allowed = policy.paths("install.allowed-destinations")
        destinations = place_destinations(op, env, allowed, resolver)
    case = Case(
        op,
        env,
        policy,
        tuple(destinations),
        dev=is_dev_install(op),
        file_sources=tuple(file_sources),
        notebook_env=notebook_env,
    )
    warned: list[Decision] = []
    for rule in RULES:
        refusal = rule.check(case)
        if refusal is None:
            continue
        denial = _deny(rule.id, refusal.reason, refusal.hint)
        if not warns(policy, env, rule.id):
            return denial
        warned.append(denial)
    return replace(_allowed(case), warnings=tuple(warned))


def warns(policy: Policy, env: Environment, rule: str) -> bool:
    """Whether the policy only warns for ``rule`` in this env (``enforcement``)."""
    return policy.enforcement(env.kind.value, rule) == "warn"


def _allowed(case: Case) -> Decision:
    op, env = case.op, case.env
    extra: list[str] = []
    if case.into_env and op.command == "install" and not any(d.install for d in case.destinations):
        # never let pip fall back to a user install behind our back
        extra.append("--no-user")
    if env.marker and _supports_break_system_packages(env.pip_version):
        extra.append("--break-system-packages")
    return Decision(
        allowed=True,
        rule=rules.DEV_INSTALL if case.dev else rules.ALLOWED,
        reason="a developer install of a local source tree"
        if case.dev
        else f"the policy allows pip {op.command} in this {env.kind} environment",
        pip_args=_with_extra(op, extra),
        dev_install=case.dev,
    )


@frozen
class Conflict:
    """A conda-owned distribution that pip would replace or remove."""

    name: str
    version: str
    channel: str
    new_version: str | None  # None: pip would remove it
    #: the user asked for it by name (not a dependency pip pulled in)
    requested: bool = False
    #: a file-level conflict: the files of this owner that ``by`` would overwrite/remove
    files: tuple[str, ...] = ()
    #: the planned distribution that would overwrite or remove ``files`` ("six-fork 1.0 (pip)")
    by: str = ""

    @property
    def action(self) -> str:
        if self.new_version is None:
            return "remove"
        if self.new_version == self.version:
            return "reinstall"
        try:
            from packaging.version import InvalidVersion, Version
        except ImportError:  # pragma: no cover - packaging is a dependency
            return "replace"
        try:
            newer = Version(self.new_version) > Version(self.version)
        except InvalidVersion:
            return "replace"
        return "upgrade" if newer else "downgrade"

    @property
    def conda(self) -> bool:
        return self.channel != "pip"

    def describe(self) -> str:
        if self.files:
            owner = (
                "pip" if not self.conda else (f"conda, {self.channel}" if self.channel else "conda")
            )
            more = f" and {len(self.files) - 1} more" if len(self.files) > 1 else ""
            verb = "overwritten" if self.new_version is not None else "removed"
            return (
                f"{self.files[0]}{more} of {self.name} {self.version} ({owner}) -> "
                f"{verb} by {self.by}"
            )
        owner = f"conda, {self.channel}" if self.channel else "conda"
        if self.new_version is None:
            return f"{self.name} {self.version} ({owner}) -> removed by pip"
        return f"{self.name} {self.version} ({owner}) -> {self.new_version} (pip) [{self.action}]"


def decide_conda_conflicts(
    op: Operation, conflicts: list[Conflict], policy: Policy, override: bool
) -> Decision | None:
    """None when nothing conda owns is touched (or the policy lets it be); else a denial.

    ``override``: the user passed ``--replace-conda-packages``; it counts only where
    the policy sets ``conda.allow-override``.
    """
    if not conflicts or not policy.flag("conda.protect-conda-packages"):
        return None
    if override and policy.flag("conda.allow-override"):
        return None
    lines = "\n".join(f"  {c.describe()}" for c in conflicts)
    verb = "remove" if op.command == "uninstall" else "replace"
    reason = f"pip would {verb} packages that conda installed in this env:\n{lines}"
    shared = [c for c in conflicts if c.files]
    if shared:
        what = "delete" if op.command == "uninstall" else "overwrite"
        reason = f"pip would {what} files that another package owns in this env:\n{lines}"
    if override:
        reason += f"\n({REPLACE_CONDA_FLAG} is not allowed by the policy here)"
    hints = []
    if shared:
        hints.append(
            "two distributions ship the same files (a fork or a renamed build, e.g. "
            "psycopg2-binary and psycopg2): keep one; remove the other with the tool that "
            "installed it (conda remove / pip uninstall) first"
        )
    elif op.command == "uninstall":
        hints.append(
            f"remove them with conda: `conda remove {' '.join(c.name for c in conflicts)}` "
            "(or take them out of the env's spec)"
        )
    else:
        specs = " ".join(
            f"{c.name}={c.new_version}" if c.new_version else c.name for c in conflicts
        )
        hints.append(
            f"install them with conda instead: `conda install {specs}` "
            "(on a managed env: add them to the env's spec); then run pip again"
        )
        if not any(c.requested for c in conflicts):
            hints.append(
                "or, if the conda builds already satisfy your package, skip pip's "
                "dependencies: " + corrected_command(op, add=["--no-deps"])
            )
    if policy.flag("conda.allow-override") and not override:
        hints.append(f"to replace them anyway, knowingly: add {REPLACE_CONDA_FLAG}")
    return _deny(rules.CONDA_OWNED, reason, "\n".join(hints))
