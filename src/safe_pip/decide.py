"""The decision core: (Operation, Environment, Policy) -> Decision.  Pure: no I/O.

Every denial names one rule id from ``rules.py``, says why, and says what to do
instead.  An allowed decision carries the exact pip arguments to run.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from safe_pip import rules
from safe_pip.environment import Environment, EnvKind, is_within, normalize_name
from safe_pip.pipcli import Operation, Setting
from safe_pip.policy import Policy

#: safe-pip's own flag to replace conda-owned packages; removed before pip runs.
REPLACE_CONDA_FLAG = "--replace-conda-packages"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str
    hint: str = ""
    #: the arguments after ``<python> -m pip`` when allowed
    pip_args: tuple[str, ...] = ()
    #: True for a dev install (-e of local source trees only)
    dev_install: bool = False


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

    return shlex.join(["pip", *redact_argv(op.argv)])


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


def _user_site_route(op: Operation, env: Environment) -> str | None:
    """Where an explicit user install comes from, or None."""
    setting = op.user_site
    if setting is not None and setting.value:
        return setting.source
    return None


def _destinations(op: Operation, env: Environment) -> list[tuple[str, Setting]]:
    """(directory pip would write to, the option) for --target/--prefix/--root."""
    found: list[tuple[str, Setting]] = []
    for setting in (op.target_dir, op.prefix_path, op.root_path):
        if setting is not None and setting.value is not None:
            # pip does not expand ~ in these values; an empty one is a real (odd) location
            found.append((os.path.abspath(str(setting.value)) if setting.value else "", setting))
    return found


def _inside_user_base(path: str, env: Environment) -> bool:
    return bool(env.user_base) and is_within(path, env.user_base)


def _root_points_at_env(root: str, env: Environment) -> bool:
    # --root R writes R + <env path>; R = "/" lands in the env itself
    return os.path.realpath(root) == os.sep


def _destination_in_env(path: str, setting: Setting, op: Operation, env: Environment) -> bool:
    if setting is op.root_path:
        return _root_points_at_env(path, env)
    return env.contains(path)


def destinations_outside(op: Operation, env: Environment) -> list[str]:
    """The --target/--prefix/--root directories that lie outside the env."""
    return [
        path
        for path, setting in _destinations(op, env)
        if path and not _destination_in_env(path, setting, op, env)
    ]


def writes_env(op: Operation, env: Environment) -> bool:
    """True unless every --target/--prefix/--root points outside the env."""
    return all(_destination_in_env(path, s, op, env) for path, s in _destinations(op, env))


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
    return shlex.join(["pip", *args[:position], *add, *args[position:]])


def decide(
    op: Operation,
    env: Environment,
    policy: Policy,
    foreign: Mapping[str, EnvKind] | None = None,
) -> Decision:
    """Decide one mutating pip operation.

    ``foreign`` maps --target/--prefix/--root destinations outside the env to
    the kind of protected env they lie in (a conda base, the system Python).
    """
    if not op.mutating:
        return Decision(
            allowed=True,
            rule=rules.READ_ONLY_COMMAND,
            reason=f"`pip {op.command or ''}` changes no environment",
            pip_args=tuple(op.argv_without_python()),
        )
    asked = command_text(op)
    dev = is_dev_install(op)

    # 1. user site, explicitly
    route = _user_site_route(op, env)
    if route is not None:
        return _deny(
            rules.USER_SITE,
            f"a user install ({route}) puts packages in {env.user_site or '~/.local'}, which every "
            f"env of Python {env.short_version} sees: one user install can break other envs and "
            "JupyterLab itself",
            "install into the environment instead (drop --user / unset PIP_USER / remove "
            "`user = true` from pip.conf), or " + _own_env_hint(env),
        )

    # 2. frozen env
    if env.frozen:
        return _deny(
            rules.FROZEN_ENV,
            f"the environment {env.prefix} is frozen (conda-meta/frozen): nothing may change it",
            "change the environment's spec and rebuild it, or " + _own_env_hint(env),
        )

    # 3. --target / --prefix / --root
    into_env = True
    for path, setting in _destinations(op, env):
        if not path:
            return _deny(
                rules.OUTSIDE_ENV,
                f"{setting.source} is empty: pip would then write relative to / or the current "
                "directory and skip the environment's PEP 668 check",
                "give the option a directory, or leave it out to install into the environment",
            )
        if _inside_user_base(path, env):
            return _deny(
                rules.USER_SITE,
                f"{setting.source} points into your user base {env.user_base}: that is a user "
                "install by another route",
                _own_env_hint(env),
            )
        if _destination_in_env(path, setting, op, env):
            continue
        allowed_dirs = policy.paths("install.allowed-destinations")
        if any(is_within(path, allowed) for allowed in allowed_dirs):
            into_env = False
            continue
        kind = (foreign or {}).get(path)
        if kind == EnvKind.CONDA_BASE and policy.mode_for(kind.value) == "deny":
            return _deny(
                rules.BASE_ENV,
                f"{setting.source} = {path} writes into a conda base environment, which runs "
                "conda and JupyterLab; pip may not change it",
                _own_env_hint(env),
            )
        if kind == EnvKind.SYSTEM and policy.mode_for(kind.value) == "deny":
            return _deny(
                rules.SYSTEM_PYTHON,
                f"{setting.source} = {path} writes into the system Python",
                _own_env_hint(env),
            )
        listed = ", ".join(allowed_dirs) if allowed_dirs else "none"
        return _deny(
            rules.OUTSIDE_ENV,
            f"{setting.source} = {path} writes outside the target environment {env.prefix} "
            f"(directories the policy allows: {listed})",
            "install into the environment itself (drop the option), or ask the admin to list "
            "the directory under install.allowed-destinations",
        )

    # 4. what the policy allows in this kind of env
    if into_env:
        denial = _decide_env_write(op, env, policy, dev, asked)
        if denial is not None:
            return denial

    # 5. conda envs build local source trees against the env's own packages
    if (
        op.command == "install"
        and env.is_conda
        and policy.flag("install.require-no-build-isolation")
        and op.build_isolation
        and any(_local_source(r) for r in (*op.editables, *op.args))
    ):
        fixed = corrected_command(op, add=["--no-build-isolation"])
        return _deny(
            rules.BUILD_ISOLATION,
            "an isolated build compiles your source tree against fresh PyPI wheels, not the "
            "conda packages of this env, so the result may not work with them",
            f"run: {fixed}\n(make sure the build requirements, e.g. setuptools, are installed "
            "in the env first: `conda install setuptools`)",
        )

    extra: list[str] = []
    if into_env and op.command == "install" and not _destinations(op, env):
        # never let pip fall back to a user install behind our back
        extra.append("--no-user")
    if env.marker and _supports_break_system_packages(env.pip_version):
        extra.append("--break-system-packages")
    return Decision(
        allowed=True,
        rule=rules.DEV_INSTALL if dev else rules.ALLOWED,
        reason="a developer install of a local source tree"
        if dev
        else f"the policy allows pip {op.command} in this {env.kind} environment",
        pip_args=_with_extra(op, extra),
        dev_install=dev,
    )


def _decide_env_write(
    op: Operation, env: Environment, policy: Policy, dev: bool, asked: str
) -> Decision | None:
    mode = policy.mode_for(env.kind.value)
    if mode == "deny":
        if env.kind == EnvKind.CONDA_BASE:
            return _deny(
                rules.BASE_ENV,
                f"{env.prefix} is the conda base environment, which runs conda and JupyterLab; "
                "pip may not change it (--break-system-packages does not change this)",
                _own_env_hint(env),
            )
        if env.kind == EnvKind.SYSTEM:
            return _deny(
                rules.SYSTEM_PYTHON,
                f"{env.prefix} is the system Python, managed by the distribution "
                "(--break-system-packages does not change this)",
                _own_env_hint(env),
            )
        return _deny(
            rules.ENV_DENIED,
            f"the policy allows no pip {op.command} in {env.kind} environments like {env.prefix}",
            "change the environment's spec and rebuild it, or " + _own_env_hint(env),
        )
    if mode == "dev-only" or (dev and not policy.flag("install.dev-installs")):
        allowed_dev = dev and policy.flag("install.dev-installs")
        if op.command == "uninstall":
            names = {normalize_name(a) for a in op.args}
            allowed_dev = bool(names) and names <= env.editable_dists
        if not allowed_dev:
            if mode == "dev-only":
                return _deny(
                    rules.DEV_ONLY,
                    f"{env.prefix} accepts developer installs only "
                    "(pip install -e <local dir>); other packages come from its spec",
                    "for a package, add it to the environment's spec and rebuild; for your "
                    "own code: pip install --no-build-isolation -e <dir>",
                )
            return _deny(
                rules.ENV_DENIED,
                "the policy does not allow developer installs here (install.dev-installs = false)",
                _own_env_hint(env),
            )
    if not env.writable:
        fallback = (
            f"so pip would fall back to a user install in {env.user_site}, which every env of "
            f"Python {env.short_version} sees"
            if env.user_site_enabled
            else "so pip cannot write there"
        )
        return _deny(
            rules.READ_ONLY_ENV,
            f"the environment {env.prefix} is not writable by you, {fallback}",
            "add the package to the environment's spec and have it rebuilt, or "
            + _own_env_hint(env),
        )
    return None


@dataclass(frozen=True)
class Conflict:
    """A conda-owned distribution that pip would replace or remove."""

    name: str
    version: str
    channel: str
    new_version: str | None  # None: pip would remove it
    #: the user asked for it by name (not a dependency pip pulled in)
    requested: bool = False

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

    def describe(self) -> str:
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
    if override:
        reason += f"\n({REPLACE_CONDA_FLAG} is not allowed by the policy here)"
    hints = []
    if op.command == "uninstall":
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
