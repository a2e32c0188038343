"""``safe-pip status [--json]``: the target, its kind, the policy in force, what is allowed.

The JSON form is versioned (``schema``) and documented in docs/status.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from safe_pip import __version__
from safe_pip.commands import target_environment
from safe_pip.decide import decide
from safe_pip.door import door
from safe_pip.environment import Environment, writable_by
from safe_pip.errors import ExitCode, PolicyError, UsageError
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.policy import Policy, load_policy, tell_the_admin
from safe_pip.target import MAGIC
from safe_pip.usersite import UserSiteCopy, describe, user_site_copies
from safe_pip.values import frozen, replace

SCHEMA = "safe-pip.status/1"

#: what status asks the decision core about, as a user would type it
PROBES = (
    ("install a package", ["install", "<package>"]),
    ("developer install", ["install", "--no-build-isolation", "-e", "./project"]),
    ("user install", ["install", "--user", "<package>"]),
    ("uninstall a package", ["uninstall", "<package>"]),
)


def shell_mismatch(env: Environment, environ: Mapping[str, str]) -> list[str]:
    """Warnings when the shell's python/pip would act on another env than the target."""
    warnings = []
    path = environ.get("PATH", os.defpath)
    prefix = os.path.realpath(env.prefix)
    # in a notebook (%pip status) the shell is what `!python` and `!pip` in a cell run
    shell = "`!{}` in this notebook" if door(environ) == MAGIC else "the shell's `{}`"
    python = shutil.which("python", path=path) or shutil.which("python3", path=path)
    if python:
        python_prefix = os.path.realpath(os.path.dirname(os.path.dirname(os.path.realpath(python))))
        if python_prefix != prefix:
            advice = (
                "use `%pip`, not `!pip`"
                if door(environ) == MAGIC
                else "a notebook kernel and the terminal may be different envs; "
                "use `%pip` in notebooks, or --python"
            )
            warnings.append(
                f"{shell.format('python')} is {python} (env {python_prefix}), not the target: "
                + advice
            )
    pip = shutil.which("pip", path=path)
    if pip:
        pip_prefix = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(pip))))
        if pip_prefix != prefix:
            warnings.append(f"{shell.format('pip')} is {pip}, which belongs to {pip_prefix}")
    return warnings


#: the uid status answers for when root asks without --as-user: a hub user owns nothing
HUB_USER_UID = 65534


@frozen
class Viewer:
    """Whom status answers for, when that is not the user running it."""

    label: str
    uid: int
    gids: frozenset[int]


def viewer_for(as_user: str | None) -> Viewer | None:
    """``--as-user NAME``; as root without it, an unprivileged hub user; else None (oneself)."""
    if as_user:
        import pwd

        try:
            entry = pwd.getpwnam(as_user)
        except KeyError:
            raise UsageError(f"no such user: {as_user!r}") from None
        groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return Viewer(as_user, entry.pw_uid, groups)
    if os.geteuid() == 0:
        return Viewer(
            f"a hub user (an unprivileged uid, {HUB_USER_UID})",
            HUB_USER_UID,
            frozenset({HUB_USER_UID}),
        )
    return None


def _probes(env: Environment, policy: Policy) -> list[dict[str, Any]]:
    allowed = []
    for label, argv in PROBES:
        op = parse_pip_command_line(argv, {}, None)
        decision = decide(op, env, policy)
        allowed.append(
            {
                "operation": label,
                "command": "pip " + " ".join(argv),
                "allowed": decision.allowed,
                "rule": decision.rule,
                "reason": decision.reason,
                "would_deny": [w.rule for w in decision.warnings],
            }
        )
    return allowed


def _verdict(item: Mapping[str, Any]) -> str:
    if item["allowed"] and item.get("would_deny"):
        # warn mode: it runs now, and is refused once the policy is enforced
        return f"allowed, warned [{', '.join(item['would_deny'])}] (warn mode)"
    return "allowed" if item["allowed"] else f"refused [{item['rule']}]"


def _notebook(env: Environment, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The env of the Jupyter kernel status runs under (``!pip status`` in a cell)."""
    from safe_pip.kernel import kernel_environment

    kernel = kernel_environment(environ, env)
    if kernel is None:
        return None
    same = os.path.realpath(kernel.prefix) == os.path.realpath(env.prefix)
    return {"python": kernel.python, "prefix": kernel.prefix, "is_target": same}


def collect(
    env: Environment, environ: Mapping[str, str], viewer: Viewer | None = None
) -> dict[str, Any]:
    policy: Policy | None
    policy_error = None
    try:
        policy = load_policy(env.prefix)
    except PolicyError as error:
        policy = None
        policy_error = error.message
    allowed: list[dict[str, Any]] = []
    differences: list[str] = []
    seen = env
    if viewer is not None:
        seen = replace(env, writable=writable_by(viewer.uid, viewer.gids, env.purelib, env.platlib))
    if policy is not None:
        allowed = _probes(seen, policy)
        if viewer is not None:
            mine = _probes(env, policy)
            me = "root" if os.geteuid() == 0 else "you"
            differences = [
                f"{theirs['operation']}: {_verdict(theirs)} for {viewer.label}, "
                f"{_verdict(own)} for {me}"
                for theirs, own in zip(allowed, mine)
                if _verdict(theirs) != _verdict(own)
            ]
    drift = _drift(env, policy, environ)
    return {
        "schema": SCHEMA,
        "safe_pip_version": __version__,
        "target": {"python": env.python, "chosen_by": env.how},
        "env": {
            "prefix": env.prefix,
            "name": env.name,
            "kind": env.kind.value,
            "python": env.version,
            "pip_version": env.pip_version,
            "writable": env.writable,
            "marker": env.marker,
            "stale_markers": list(env.stale_markers),
            "frozen": env.frozen,
            "conda_root": env.conda_root,
            "user_site": env.user_site,
            "writable_for_user": seen.writable,
        },
        "policy": {
            "files": list(policy.files) if policy else [],
            "error": policy_error,
            "tell": tell_the_admin(entry=door(environ)) if policy_error else None,
            "envs_matched": list(policy.matched) if policy else [],
            "notes": list(policy.notes) if policy else [],
        },
        "installer": _installer(env, policy),
        "for_user": viewer.label if viewer is not None else None,
        "allowed": allowed,
        "differences": differences,
        "drift": drift,
        "baseline": _baseline(env),
        "user_site": [copy.as_dict() for copy in user_site_copies(env)],
        "notebook": _notebook(env, environ),
        "audit": {
            "unfinished": _unfinished(env, policy, environ),
            "not_shipped": _not_shipped(environ),
        },
        "warnings": shell_mismatch(env, environ),
    }


def _installer(env: Environment, policy: Policy | None) -> dict[str, Any]:
    """Which installer carries out installs here (``[installer]``), and where uv is."""
    from safe_pip.backends.uv import find_uv
    from safe_pip.errors import InstallerMissing

    try:
        uv: str | None = find_uv(env)
    except InstallerMissing:
        uv = None
    return {
        "name": policy.text(f"installer.{env.kind.value}") if policy else "pip",
        "user_choice": policy.flag("installer.user-choice") if policy else True,
        "uv": uv,
    }


def _not_shipped(environ: Mapping[str, str]) -> dict[str, Any]:
    """The user's count of records that could not be sent to syslog or the journal."""
    from safe_pip.audit.ship import read_failures

    return read_failures(environ)


def _unfinished(
    env: Environment, policy: Policy | None, environ: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Operations whose intent was recorded but no outcome (yet): running, or killed."""
    from safe_pip.audit.locations import log_locations
    from safe_pip.audit.recovery import is_running, unfinished

    return [
        {
            "time": intent.get("time"),
            "user": intent.get("user"),
            "argv": intent.get("argv"),
            "log": path,
            "host": intent.get("host"),
            "running": is_running(intent),
        }
        for path, intent in unfinished(log_locations(env, policy, environ))
    ]


def _baseline(env: Environment) -> dict[str, Any] | None:
    from safe_pip.baseline import baseline_path, read_baseline

    baseline = read_baseline(env.prefix)
    if baseline.problem:
        return {"path": baseline_path(env.prefix), "problem": baseline.problem}
    if baseline.time is None:
        return None
    return {
        "path": baseline_path(env.prefix),
        "time": baseline.time,
        "by": baseline.by,
        "distributions": len(baseline.versions),
    }


def _drift(env: Environment, policy: Policy | None, environ: Mapping[str, str]) -> dict[str, Any]:
    from safe_pip.audit.locations import log_locations
    from safe_pip.conda_records import read_records
    from safe_pip.drift import compute_drift, log_state
    from safe_pip.inventory import scan_all

    logged = log_state(log_locations(env, policy, environ), environ)
    installed = scan_all([env.purelib, env.platlib])
    return compute_drift(env, installed, read_records(env.prefix), logged, environ).as_dict()


def _notebook_lines(notebook: Mapping[str, Any] | None, target: str) -> list[str]:
    if notebook is None:
        return []
    lines = [f"notebook:  this notebook's kernel runs {notebook['prefix']}"]
    if not notebook["is_target"]:
        lines.append(
            f"warning: the notebook runs {notebook['prefix']} ({notebook['python']}), not "
            f"the target {target}: in the notebook, `%pip install <package>` "
            "installs into its own env, and `%pip status` shows it"
        )
    return lines


def render(data: Mapping[str, Any], entry: str = "safe-pip") -> str:
    """The text form; ``entry`` is how the user runs safe-pip's commands (``door``)."""
    env = data["env"]
    yes_no = {True: "yes", False: "no"}
    lines = [
        f"target:    {data['target']['python']}  (chosen by {data['target']['chosen_by']})",
        f"env:       {env['prefix']}  name {env['name']!r}, {env['kind']}",
        f"python:    {env['python']}   pip: {env['pip_version'] or 'not installed'}",
        f"writable:  {yes_no[env['writable']]}"
        + (
            f" (for {data['for_user']}: {yes_no[env['writable_for_user']]})"
            if data.get("for_user")
            else ""
        ),
        f"marker:    {env['marker'] or 'none (bare pip is not stopped)'}",
    ]
    lines.extend(f"stale marker: {s} (left from an older Python)" for s in env["stale_markers"])
    lines.append(f"frozen:    {yes_no[env['frozen']]}")
    lines.extend(_policy_lines(data))
    lines.extend(_drift_lines(data, entry))
    lines.extend(_notebook_lines(data.get("notebook"), env["prefix"]))
    lines.extend(_audit_lines(data.get("audit", {})))
    lines.extend(f"warning: {w}" for w in data["warnings"])
    lines.extend(data.get("extra_lines", []))
    return "\n".join(lines)


def _audit_lines(audit: Mapping[str, Any]) -> list[str]:
    """Unfinished operations and records not shipped, for the text form."""
    lines = []
    for item in audit.get("unfinished", []):
        argv = item["argv"] if isinstance(item["argv"], list) else []
        what = f"{item['time']} {item['user']}: pip {' '.join(map(str, argv))}"
        if item.get("host") not in (None, os.uname().nodename):
            how = f"on {item['host']}: still running there, or stopped"
        elif item["running"]:
            how = "in progress"
        else:
            how = (
                "safe-pip was stopped before pip finished; the next install or uninstall "
                "here records what it changed"
            )
        lines.append(f"unfinished: {what} ({how})")
    failures = audit.get("not_shipped", {})
    if failures.get("count"):
        lines.append(
            f"shipping:  {failures['count']} record(s) not delivered to the hub's log "
            f"(they are in the local log; last {failures['last_time']}: "
            f"{failures['last_error']})"
        )
    return lines


def _policy_lines(data: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    policy = data["policy"]
    files = ", ".join(policy["files"]) or "built-in defaults"
    lines.append(f"policy:    {files}")
    if policy["error"]:
        lines.append(f"  INVALID: {policy['error']}")
        lines.append("  installs and uninstalls are refused until it is fixed")
        lines.append(f"  what to do: {policy['tell']}")
    lines.extend(f"  [[envs]]: {label} applies here" for label in policy["envs_matched"])
    lines.extend(f"  note: {n}" for n in policy["notes"])
    installer = data.get("installer")
    if installer:
        other = "uv" if installer["name"] == "pip" else "pip"
        choice = f"--installer {other} allowed" if installer["user_choice"] else "no choice"
        lines.append(
            f"installer: {installer['name']} ({choice}; uv: {installer['uv'] or 'not installed'})"
        )
    if data["allowed"]:
        whom = f" (for {data['for_user']})" if data.get("for_user") else ""
        lines.append(f"here{whom}:")
        for item in data["allowed"]:
            lines.append(f"  {item['operation']:<20} {_verdict(item)}")
    if data.get("differences"):
        lines.append("treated differently here (status answers for the user above):")
        lines.extend(f"  {line}" for line in data["differences"])
    return lines


def _drift_lines(data: Mapping[str, Any], entry: str) -> list[str]:
    lines: list[str] = []
    drift = data["drift"]
    baseline = data.get("baseline")
    if baseline and baseline.get("problem"):
        lines.append(f"baseline:  {baseline['problem']}")
    elif baseline:
        lines.append(
            f"baseline:  {baseline['time']} by {baseline['by']} ({baseline['distributions']} "
            "distributions); drift is measured from it"
        )
    for item in drift["unexplained"]:
        lines.append(
            f"drift:     {item['name']} {item['version']} is installed ({item['owner']}) "
            "but neither conda nor the audit log explains it"
        )
    for item in drift["overwritten"]:
        now = f", now {item['installed_version']}" if item["installed_version"] else ""
        lines.append(
            f"drift:     {item['name']} {item['conda_version']} belongs to conda, but pip "
            f"changed it ({item['how']}{now}); `conda install --force-reinstall "
            f"{item['name']}={item['conda_version']}` restores conda's"
        )
    for copy in data["user_site"]:
        lines.append(f"user site: {describe(UserSiteCopy(**copy), data['env']['user_site'])}")
    if drift["layered"]:
        lines.append(
            f"layered:   conda changed this env ({drift['last_conda_change']}) after pip did "
            f"({drift['first_pip_change']}); envs layered like this break: rebuild it from a "
            f"spec, `{entry} export -o environment.yml` (see docs/export.md)"
        )
    return lines


def accept_drift(env: Environment, environ: Mapping[str, str], out: TextIO) -> None:
    """Move the env's baseline to what is installed now (the admin's call)."""
    from safe_pip.baseline import baseline_path, write_baseline
    from safe_pip.errors import TargetError

    before = _drift(env, None, environ)["unexplained"]
    try:
        count = write_baseline(env, environ, "accept-drift")
    except OSError as error:
        raise TargetError(
            f"cannot write the baseline {baseline_path(env.prefix)}: {error.strerror}",
            hint="run `safe-pip status --accept-drift` as the env's owner (the admin)",
        ) from None
    path = baseline_path(env.prefix)
    print(f"baseline: {path} now holds the env as it is ({count} distributions)", file=out)
    for item in before:
        print(f"  accepted: {item['name']} {item['version']} ({item['owner']})", file=out)


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env = target_environment(args.python, environ)
    if args.accept_drift:
        # with --json, stdout holds the JSON document only
        accept_drift(env, environ, sys.stderr if args.json else sys.stdout)
    data = collect(env, environ, viewer_for(args.as_user))
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        print(render(data, door(environ)))
    # an invalid policy in force is a failed check (deploy.md's check step)
    return int(ExitCode.POLICY_ERROR if data["policy"]["error"] else ExitCode.OK)
