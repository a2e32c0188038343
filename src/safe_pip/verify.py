"""Verify after, not only decide before: what a pip run changed that it may not change.

safe-pip decides on pip's plan, but a build backend runs arbitrary code and
options or config files can move files; so every mutating pip run is also
checked afterwards.  Before pip starts, ``snapshot`` takes a cheap fingerprint
of the places that must never change for this env:

* the user site of every Python version (``<user base>/lib/pythonX.Y/site-packages``,
  whether it exists yet or not) and the user base's ``lib`` directory;
* the conda base env's and the system Python's site-packages;
* the site-packages of the other envs of the same conda installation (frozen
  ones included);
* and the env's own site-packages, whose changes are compared with pip's plan.

A fingerprint is one ``scandir`` per directory: each top-level file's inode,
mtime and size, and each top-level directory's inode and the names in it (less
``__pycache__``, which importing a module writes).  It does not read file
contents: a file rewritten in place inside an existing package is not seen,
nor is one added two levels down.  In the env itself only what appeared is
compared with pip's plan (its packages are imported, and rewritten, legitimately).
``compare`` lists what appeared, disappeared or changed; ``remove_created``
removes what provably appeared during this run (it was absent before, is owned
by this user and changed after the run started).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from typing import Any

from safe_pip.environment import Environment
from safe_pip.values import frozen

#: Python versions whose user site is watched even when it does not exist yet
_USER_VERSIONS = tuple(f"3.{minor}" for minor in range(6, 16))
#: what pip itself leaves in site-packages besides the planned files
_PIP_OWN = ("__pycache__",)
#: and uv: the lock it takes on a --target/--prefix directory (left there, empty)
_UV_OWN = (".lock",)


@frozen
class Entry:
    ino: int
    #: a file's mtime and size; 0 for a directory (importing writes __pycache__ into it)
    mtime_ns: int
    size: int
    #: a directory's entries, less __pycache__ (None for a file)
    children: frozenset[str] | None = None


@frozen
class Place:
    path: str
    #: what this place is, for messages ("user site of Python 3.11", "conda base env")
    what: str
    #: None: the directory does not exist
    entries: Mapping[str, Entry] | None
    #: the fingerprint holds each directory's entry names (False: top-level names only)
    children: bool = True


@frozen
class Escape:
    path: str
    change: str  # "created", "changed", "removed"
    what: str
    removed: bool = False

    def describe(self) -> str:
        done = " (removed again)" if self.removed else ""
        return f"{self.path}: {self.change} ({self.what}){done}"


def _fingerprint(path: str, children: bool = True) -> Mapping[str, Entry] | None:
    try:
        with os.scandir(path) as iterator:
            found = {}
            for entry in iterator:
                try:
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        names = (
                            frozenset(os.listdir(entry.path)) - {"__pycache__"}
                            if children
                            else None
                        )
                        found[entry.name] = Entry(info.st_ino, 0, 0, names)
                    else:
                        found[entry.name] = Entry(info.st_ino, info.st_mtime_ns, info.st_size)
                except OSError:
                    continue
            return found
    except OSError:
        return None


def watched_places(env: Environment, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(directory, what it is) for every place this env's pip run must not change."""
    user_base = env.user_base or os.path.join(environ.get("HOME", "~"), ".local")
    places = [(os.path.join(user_base, "lib"), "your user base")]
    for version in _USER_VERSIONS:
        site = os.path.join(user_base, "lib", f"python{version}", "site-packages")
        places.append((site, f"the user site of Python {version}"))
    own = os.path.realpath(env.prefix)
    places.extend(_conda_installation(env.conda_root, own))
    for pattern in (
        "/usr/lib/python3*/site-packages",
        "/usr/lib/python3/dist-packages",
        "/usr/local/lib/python3*/site-packages",
        "/usr/local/lib/python3*/dist-packages",
    ):
        for site in glob.glob(pattern):
            if not os.path.realpath(site).startswith(own + os.sep):
                places.append((site, "the system Python"))
    return places


def sanctioned(places: list[tuple[str, str]], roots: Iterable[str]) -> list[tuple[str, str]]:
    """``places`` less those the decision let pip write to (a ``--target`` the policy
    allowed, the user base when ``user-site`` is in warn mode): a place goes when it
    lies in a root or holds one."""
    real_roots = [os.path.realpath(root) for root in roots if root]

    def touched(path: str) -> bool:
        real = os.path.realpath(path)
        return any(
            real == root or real.startswith(root + os.sep) or root.startswith(real + os.sep)
            for root in real_roots
        )

    return [(path, what) for path, what in places if not touched(path)]


def _conda_installation(root: str | None, own: str) -> list[tuple[str, str]]:
    """The base env's and the other envs' site-packages of the conda installation."""
    if not root:
        return []
    places = []
    sites = os.path.join("lib", "python3*", "site-packages")
    if os.path.realpath(root) != own:
        for site in glob.glob(os.path.join(glob.escape(root), sites)):
            places.append((site, f"the conda base env {root}"))
    for site in glob.glob(os.path.join(glob.escape(root), "envs", "*", sites)):
        prefix = site.rsplit(os.sep, 3)[0]
        if os.path.realpath(prefix) != own:
            places.append((site, f"the conda env {prefix}"))
    return places


def snapshot(places: Iterable[tuple[str, str]], *, children: bool = True) -> list[Place]:
    """``children=False``: only what appears at the top level will be compared (the env's
    own site-packages: one ``scandir``, no ``listdir`` per package)."""
    return [Place(path, what, _fingerprint(path, children), children) for path, what in places]


def compare(before: Iterable[Place]) -> list[Escape]:
    """What changed in the watched places since ``before``."""
    escapes: list[Escape] = []
    for place in before:
        now = _fingerprint(place.path, place.children)
        old = place.entries
        if old is None:
            if now is not None:
                escapes.append(Escape(place.path, "created", place.what))
            continue
        if now is None:
            escapes.append(Escape(place.path, "removed", place.what))
            continue
        for name in sorted(set(old) | set(now)):
            if name in _PIP_OWN and place.what == "your user base":
                continue
            path = os.path.join(place.path, name)
            if name not in old:
                escapes.append(Escape(path, "created", place.what))
            elif name not in now:
                escapes.append(Escape(path, "removed", place.what))
            elif old[name] != now[name]:
                escapes.append(Escape(path, "changed", place.what))
    return _outermost(escapes)


def _outermost(escapes: list[Escape]) -> list[Escape]:
    """One escape per created tree: ``~/.local/lib/python3.11`` rather than also its
    ``site-packages``; a watched dir counts once."""
    created = sorted({e.path for e in escapes if e.change == "created"}, key=len)
    kept: list[Escape] = []
    seen: set[str] = set()
    for escape in escapes:
        inside = any(escape.path != top and escape.path.startswith(top + os.sep) for top in created)
        if inside or escape.path in seen:
            continue
        seen.add(escape.path)
        kept.append(escape)
    return kept


def remove_created(escapes: list[Escape], since_ns: int) -> list[Escape]:
    """Remove what provably appeared during this run: absent before, owned by us, and
    changed after ``since_ns``.  Returns the escapes, marked where removed."""
    done = []
    for escape in escapes:
        removed = False
        if escape.change == "created":
            try:
                info = os.lstat(escape.path)
            except OSError:
                info = None
            if info is not None and info.st_uid == os.geteuid() and info.st_ctime_ns >= since_ns:
                try:
                    if os.path.isdir(escape.path) and not os.path.islink(escape.path):
                        import shutil

                        shutil.rmtree(escape.path)
                    else:
                        os.unlink(escape.path)
                    removed = True
                except OSError:
                    removed = False
        done.append(Escape(escape.path, escape.change, escape.what, removed))
    return done


def unplanned_in_env(
    env: Environment,
    before: Iterable[Place],
    report: Mapping[str, Any] | None,
    new_dists: Iterable[str] = (),
) -> list[Escape]:
    """Top-level entries that appeared in the env's site-packages during an install but
    that no planned wheel writes.

    [] when the plan does not list every wheel's files (a legacy build), and when
    distributions appeared that pip did not plan (``new_dists``: normalised names):
    another install ran in the env at the same time, and what appeared cannot be
    told apart.  The caller reports these but does not remove them: another run
    may have made them.
    """
    if not report:
        return []
    from safe_pip.environment import normalize_name

    expected: set[str] = {*_PIP_OWN, *_UV_OWN}
    planned: set[str] = set()
    for item in report.get("install") or []:
        files = item.get("safe_pip_files") if isinstance(item, dict) else None
        if not isinstance(files, dict):
            return []  # a requirement without a wheel (a legacy build): nothing to compare
        planned.add(normalize_name(str((item.get("metadata") or {}).get("name", ""))))
        for member in files.get("wheel") or ():
            top, _, rest = str(member).partition("/")
            if top.endswith(".data") and rest:
                scheme, _, inner = rest.partition("/")
                if scheme in ("purelib", "platlib") and inner:
                    expected.add(inner.split("/", 1)[0])
                continue
            expected.add(top)
    if any(name not in planned for name in new_dists):
        return []
    escapes = []
    for escape in compare(before):
        name = os.path.basename(escape.path)
        if (
            escape.change == "created"
            and name not in expected
            and not name.endswith((".dist-info", ".egg-info"))
            and not name.startswith("~")  # pip's own temporary renames
        ):
            escapes.append(
                Escape(escape.path, escape.change, f"not in pip's plan for {env.prefix}")
            )
    return escapes
