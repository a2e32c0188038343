"""Distributions in the user site-packages (``~/.local``) beside an env's own.

Every non-venv env of one Python version imports ``~/.local/lib/pythonX.Y/
site-packages`` before its own site-packages, unless ``PYTHONNOUSERSITE`` is
set: a copy there *shadows* the env's (another version wins) or *duplicates*
it (the same version, so pip once said "already satisfied" and installed
nothing into the env), or *adds* a package the env does not have.  safe-pip
refuses ``pip uninstall --user``, so each copy comes with the exact command
that removes its files (from its ``RECORD``).
"""

from __future__ import annotations

import csv
import io
import os
import shlex

from safe_pip.environment import Environment
from safe_pip.inventory import scan, scan_all
from safe_pip.readfile import MiB, read_text
from safe_pip.values import frozen


@frozen
class UserSiteCopy:
    name: str
    version: str
    path: str
    #: "shadows", "duplicates" or "adds"
    relation: str
    #: the env's version of it ("" when the env has none)
    env_version: str
    #: a shell command that removes it
    cleanup: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "relation": self.relation,
            "env_version": self.env_version,
            "cleanup": self.cleanup,
        }


def _record_paths(user_site: str, dist_info: str) -> list[str]:
    """What to remove: the top-level entries RECORD names under the user site, the
    scripts it put elsewhere (``~/.local/bin``), and the dist-info itself."""
    paths = [dist_info]
    try:
        text = read_text(os.path.join(dist_info, "RECORD"), limit=64 * MiB)
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    for row in rows:
        if not row or not row[0]:
            continue
        relative = row[0]
        if relative.startswith(".."):
            found = os.path.normpath(os.path.join(user_site, relative))
        else:
            top = relative.split("/", 1)[0]
            found = os.path.join(user_site, relative if top == "__pycache__" else top)
        if found not in paths and os.path.lexists(found):
            paths.append(found)
    return paths


def user_site_copies(env: Environment) -> list[UserSiteCopy]:
    """The distributions in the user site of the env's Python (none for a venv)."""
    if not env.user_site_enabled or not env.user_site or not os.path.isdir(env.user_site):
        return []
    own = scan([env.purelib, env.platlib])
    copies = []
    for item in scan_all([env.user_site]):
        mine = own.get(item.key)
        if mine is None:
            relation, env_version = "adds", ""
        else:
            relation = "duplicates" if mine.version == item.version else "shadows"
            env_version = mine.version
        paths = _record_paths(env.user_site, item.path)
        copies.append(
            UserSiteCopy(
                name=item.name,
                version=item.version,
                path=item.path,
                relation=relation,
                env_version=env_version,
                cleanup=shlex.join(["rm", "-r", *paths]),  # absolute paths
            )
        )
    return copies


def describe(copy: UserSiteCopy, user_site: str) -> str:
    """One line for ``status``."""
    if copy.relation == "shadows":
        what = (
            f"shadows the env's {copy.env_version} (wherever the user site is on sys.path, "
            f"{copy.version} is imported instead)"
        )
    elif copy.relation == "duplicates":
        what = "duplicates the env's copy (pip may call it 'already satisfied')"
    else:
        what = "is imported by every env of this Python that reads the user site"
    return f"{copy.name} {copy.version} in {user_site} {what}; remove it: {copy.cleanup}"
