"""Where an env's records go: ``log_locations``, from the policy's ``audit.location``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from safe_pip.audit.record import line_hash
from safe_pip.userdirs import state_home

if TYPE_CHECKING:
    from safe_pip.environment import Environment
    from safe_pip.policy import Policy

#: The env's own log, relative to its prefix.
ENV_LOG = os.path.join("var", "log", "safe-pip", "audit.jsonl")
#: The drop box ``safe-pip protect`` prepares for users who may not write the env's log:
#: sticky, setgid, writable but not listable by them; one file per user in it.
USERS_DIR = os.path.join("var", "log", "safe-pip", "users")
USERS_DIR_MODE = 0o3733
LOCK_SUFFIX = ".lock"


def prefix_hash(prefix: str) -> str:
    """12 hex digits naming a prefix in per-user file names (``{prefix_hash}``)."""
    return line_hash(os.path.normpath(prefix).encode("utf-8", "surrogateescape"))[:12]


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64].lstrip(".") or "env"


def user_log_path(env: Environment, environ: Mapping[str, str]) -> str | None:
    """The per-user file for this env: ``<state home>/safe-pip/<env_name>-<prefix_hash>.jsonl``."""
    home = state_home(environ)
    if home is None:
        return None
    name = f"{_safe_file_name(env.name)}-{prefix_hash(env.prefix)}.jsonl"
    return os.path.join(home, "safe-pip", name)


def users_dir_log(env: Environment, environ: Mapping[str, str]) -> str | None:
    """This user's file in the env's drop box (``<login>-<uid>.jsonl``), where protect made one."""
    directory = os.path.join(env.prefix, USERS_DIR)
    if not os.path.isdir(directory):
        return None
    from safe_pip.audit.record import login_name

    uid = os.getuid()
    return os.path.join(directory, f"{_safe_file_name(login_name(uid, environ))}-{uid}.jsonl")


def log_locations(env: Environment, policy: Policy | None, environ: Mapping[str, str]) -> list[str]:
    """Where this env's records go, in order of preference (``append`` uses the first that works).

    ``audit.location``: ``"env"`` (default; also without a usable policy) ->
    ``<prefix>/var/log/safe-pip/audit.jsonl``, then the user's file in the env's
    drop box (where ``protect`` made one), then the per-user file; ``"user"``
    -> the per-user file only; an absolute path -> that path, with
    ``{env_name}`` and ``{prefix_hash}`` expanded (then the per-user file, but only
    when the path is in a sticky directory, where another user may have made it).
    """
    setting = "env" if policy is None else policy.text("audit.location")
    user_file = user_log_path(env, environ)
    if setting == "env":
        locations = [os.path.join(env.prefix, ENV_LOG)]
        drop_box = users_dir_log(env, environ)
        if drop_box is not None:
            locations.append(drop_box)
        if user_file is not None:
            locations.append(user_file)
        return locations
    if setting == "user":
        return [user_file] if user_file is not None else []
    path = setting.replace("{env_name}", _safe_file_name(env.name))
    path = path.replace("{prefix_hash}", prefix_hash(env.prefix))
    # the per-user file when that one cannot be used because another user created it
    # first in a sticky directory (store._open_shared never trusts it); an admin's own
    # directory stays the only place, so that audit.required refuses when it fails
    if user_file is None or not _in_sticky_dir(path):
        return [path]
    return [path, user_file]


def _in_sticky_dir(path: str) -> bool:
    try:
        return bool(os.stat(os.path.dirname(path)).st_mode & 0o1000)
    except OSError:
        return False


def readable_logs(env: Environment, policy: Policy | None, environ: Mapping[str, str]) -> list[str]:
    """Every log of the env the caller may read: ``log_locations``, and every user's file
    in the env's drop box when the caller may list it (root, the admins' group)."""
    locations = log_locations(env, policy, environ)
    directory = os.path.join(env.prefix, USERS_DIR)
    if os.access(directory, os.R_OK | os.X_OK):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        locations.extend(os.path.join(directory, name) for name in names if name.endswith(".jsonl"))
    return locations


def prepare_users_dir(prefix: str) -> str | None:
    """Create the env's drop box for users' records (``protect``; its parent exists): mode
    3733, the env's group; returns its path when created, None when it was there already."""
    directory = os.path.join(prefix, USERS_DIR)
    if os.path.isdir(directory):
        return None
    os.mkdir(directory, USERS_DIR_MODE)
    os.chmod(directory, USERS_DIR_MODE)  # past the umask
    group = os.stat(prefix).st_gid
    if os.stat(directory).st_gid != group:
        os.chown(directory, -1, group)
        os.chmod(directory, USERS_DIR_MODE)  # chown clears setgid
    return directory


def _could_open(path: str) -> bool:
    """``path`` is a regular file we may read and write, or could be created (no side effects)."""
    if os.path.lexists(path):
        return (
            os.path.isfile(path) and not os.path.islink(path) and os.access(path, os.R_OK | os.W_OK)
        )
    probe = os.path.dirname(path)
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return os.path.isdir(probe) and os.access(probe, os.W_OK | os.X_OK)


def writable_location(locations: Sequence[str]) -> str | None:
    """The first location ``append`` can most likely write, or None; creates nothing.

    For the ``audit.required`` check before pip runs.  A full disk or a lock
    held for longer than LOCK_TIMEOUT_S can still make ``append`` fail.
    """
    for path in locations:
        if _could_open(path) and _could_open(path + LOCK_SUFFIX):
            return path
    return None
