"""``safe-pip policy check [FILE] [--python ENV]``: validate a policy before deploying it.

Prints every problem with file, line and key (and a "did you mean" for a
misspelt key or value), the ``[[envs]]`` entries with the envs each matches on
this machine, the precedence in effect for one env (``--python``), and what
each kind of env allows.  Exits 11 when any file has a problem, else 0.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Mapping

from safe_pip import rules
from safe_pip.errors import ExitCode, PolicyError
from safe_pip.policy import (
    ENV_POLICY,
    KEYS,
    KINDS,
    SYSTEM_POLICY,
    EnvEntry,
    FileCheck,
    Policy,
    check_file,
    did_you_mean,
    load_policy,
)
from safe_pip.readfile import MiB, read_text

PROG = "safe-pip"
MAX_MATCHES_SHOWN = 8


def _looks_like_env(path: str) -> bool:
    """A directory (an env prefix, or one that may become one); not a lock or a file."""
    return os.path.isdir(path)


def _known_envs(environ: Mapping[str, str]) -> list[str]:
    """Envs conda knows of on this machine (its environments.txt files)."""
    homes = {environ.get("HOME") or os.path.expanduser("~")}
    homes.update(glob.glob("/home/*"))
    found: list[str] = []
    for home in sorted(homes):
        try:
            text = read_text(os.path.join(home, ".conda", "environments.txt"), limit=MiB)
        except (OSError, ValueError):
            continue
        found.extend(line.strip() for line in text.splitlines() if line.strip())
    return found


def matching_envs(entry: EnvEntry, environ: Mapping[str, str]) -> list[str]:
    """The env prefixes on this machine the entry's path matches."""
    candidates = set(glob.glob(entry.pattern))
    candidates.update(_known_envs(environ))
    return sorted(c for c in candidates if entry.matches(c) and _looks_like_env(c))


def near_miss(pattern: str) -> str:
    """A "did you mean" for a path that matches nothing: the first missing component."""
    parts = pattern.split(os.sep)
    built = os.sep if pattern.startswith(os.sep) else ""
    for index, part in enumerate(parts):
        if not part:
            continue
        if any(c in part for c in "*?["):
            return ""
        candidate = os.path.join(built, part)
        if not os.path.exists(candidate):
            try:
                siblings = sorted(os.listdir(built or "."))
            except OSError:
                return ""
            hint = did_you_mean(part, siblings)
            if not hint:
                return ""
            fixed = os.path.join(built, hint.split("'")[1], *parts[index + 1 :])
            return f" (did you mean {fixed!r}?)"
        built = candidate
    return ""


def _show_problems(check: FileCheck) -> int:
    for problem in check.problems:
        print(f"  error: {problem.message}")
    return len(check.problems)


def _show_envs(check: FileCheck, environ: Mapping[str, str]) -> None:
    if not check.envs:
        return
    print("[[envs]] entries (several may match one env: they apply in file order, the later wins):")
    for entry in check.envs:
        where = f"{check.path}:{entry.line}" if entry.line else check.path
        print(f"  #{entry.number} {where}  path = {entry.pattern!r}")
        sets = ", ".join(f"{k} = {_shown(v)}" for k, v in entry.values.items()) or "nothing"
        print(f"      sets: {sets}")
        found = matching_envs(entry, environ)
        if not found:
            print(f"      matches no env on this machine{near_miss(entry.pattern)}")
            continue
        print(f"      matches {len(found)} env(s) on this machine:")
        for prefix in found[:MAX_MATCHES_SHOWN]:
            print(f"        {prefix}")
        if len(found) > MAX_MATCHES_SHOWN:
            print(f"        ... and {len(found) - MAX_MATCHES_SHOWN} more")


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {v!r}" for k, v in value.items()) + "}"
    return repr(value)


def kind_summary(policy: Policy) -> list[str]:
    """One line per kind of env: what pip may do there, and how refusals are carried out."""
    lines = []
    for kind in KINDS:
        mode = policy.mode_for(kind)
        allows = {
            "allow": "installs and uninstalls (checked by the other rules)",
            "dev-only": "developer installs only (-e <local dir>)",
            "deny": "nothing",
        }[mode]
        if mode != "deny" and not policy.flag("install.dev-installs"):
            allows += ", no developer installs"
        warned = [r for r in rules.CONFIGURABLE if policy.enforcement(kind, r) == "warn"]
        how = "enforced" if not warned else f"warn only for: {', '.join(warned)}"
        lines.append(f"  {kind:<11} {mode:<9} {allows}; {how}")
    return lines


def _sources_summary(policy: Policy) -> list[str]:
    lines = []
    indexes = policy.paths("sources.allowed-indexes")
    links = policy.paths("sources.allowed-find-links")
    lines.append(f"  indexes:    {', '.join(indexes) if indexes else 'any'}")
    lines.append(f"  find-links: {', '.join(links) if links else 'any'}")
    deny = policy.table("packages.deny")
    if deny:
        lines.append(f"  denied:     {', '.join(sorted(deny))}")
    floors = policy.table("packages.minimum-versions")
    if floors:
        lines.append("  floors:     " + ", ".join(f"{n} >= {v}" for n, v in sorted(floors.items())))
    return lines


def precedence(policy: Policy) -> list[str]:
    lines = ["  layers, the later wins: built-in defaults"]
    lines.extend(f"    then {path}" for path in policy.files[:1])
    lines.extend(f"    then {label}" for label in policy.matched)
    lines.extend(f"    then {path}" for path in policy.files[1:])
    for name in KEYS:
        origin = policy.origin(name)
        if origin != "built-in default":
            lines.append(f"  {name} = {_shown(policy.values[name])}  ({origin})")
    lines.extend(f"  note: {note}" for note in policy.notes)
    return lines


def _prefix_of(python: str, environ: Mapping[str, str]) -> str:
    from safe_pip.commands import target_environment

    return target_environment(python, environ).prefix


def check(  # noqa: C901 - one report section after another, in the order printed
    system_path: str, prefix: str | None, environ: Mapping[str, str], *, explicit: bool
) -> int:
    problems = 0
    system = check_file(system_path)
    if system.exists:
        print(f"{system_path}:")
        problems += _show_problems(system)
        if not system.problems:
            print("  no problems")
    elif explicit:
        print(f"{system_path}: no such file")
        problems += 1
    else:
        print(f"{system_path}: none (the built-in defaults apply)")
    own: FileCheck | None = None
    if prefix is not None:
        own = check_file(os.path.join(prefix, ENV_POLICY))
        if own.exists:
            print(f"{own.path}:")
            problems += _show_problems(own)
            if not own.problems:
                print("  no problems")
            for section in own.system_only:
                print(f"  note: {section!r} is read only from the system file; ignored here")
    _show_envs(system, environ)
    if problems:
        print(f"{problems} problem(s): while they last, pip installs fail closed (exit 11)")
        return int(ExitCode.POLICY_ERROR)
    base = load_policy(None, system_path=system_path)
    print("what each kind of env allows:")
    for line in kind_summary(base):
        print(line)
    for line in _sources_summary(base):
        print(line)
    if prefix is not None:
        try:
            policy = load_policy(prefix, system_path=system_path)
        except PolicyError as error:  # pragma: no cover - checked above
            print(f"error: {error.message}")
            return int(ExitCode.POLICY_ERROR)
        print(f"in force for {prefix}:")
        for line in precedence(policy):
            print(line)
    return int(ExitCode.OK)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    prefix = _prefix_of(args.python, environ) if args.python else None
    return check(args.file or SYSTEM_POLICY, prefix, environ, explicit=bool(args.file))
