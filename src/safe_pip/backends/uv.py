"""The uv backend: uv's own plan, checked, then exactly that plan installed.

1. ``uv pip install|sync ... --dry-run --output-format json`` prints uv's
   plan: ``changes`` with name, version and action (``installed`` /
   ``uninstalled``; the schema is marked *preview*, so it is read defensively
   and an unreadable plan stops the install).
2. The plan, in pip's report format (see ``backends``), goes to the check.
3. On go, uv installs exactly the planned distributions with ``--no-deps``
   and a pinned list, so nothing else is resolved: a wheel found in a local
   ``--find-links`` directory is given by its path (the very file checked),
   a direct reference (path, URL, ``-e``) as the user wrote it, anything else
   as ``name==version``.  ``uv pip sync`` removals are carried out with
   ``uv pip uninstall`` of exactly the planned names.

uv runs with ``--no-config`` and the interpreter safe-pip resolved
(``--python``), so neither a ``uv.toml`` nor ``UV_PYTHON`` moves the install
after the decision.  The file-level checks need the files each planned
distribution writes: a local wheel is read itself (``wheel_files``); for the
others (fetched from an index, built from a direct reference) uv itself puts
exactly the pinned distributions into a private scratch prefix first, and
their RECORDs say what they write (``installed_files``); see docs/uv.md.
An uninstall's plan is uv's own ``--dry-run`` (``read_uninstall_plan``).
"""

from __future__ import annotations

import os
import sys
import time

from safe_pip.backends import UV, InstallRun, Request
from safe_pip.backends.uv_cli import CARRY, DROPPED_VARIABLES, UvCommand, parse_uv_pip
from safe_pip.child import Child, ChildTimeout, exit_code
from safe_pip.errors import ExitCode, InstallerMissing, TargetError, UsageError
from safe_pip.names import canonical as normalize_name
from safe_pip.passthrough import pip_environ
from safe_pip.readfile import MiB, open_regular, read_text
from safe_pip.values import field, frozen

# typing, json and the runner are imported where used: this module is imported before
# uv is started on its plan
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any

    from safe_pip.backends import Check
    from safe_pip.environment import Environment
    from safe_pip.runner import PipRun

    #: plan items whose files no local wheel tells, with the argument(s) that install them
    Unread = list[tuple[dict[str, Any], list[str]]]

#: where ``protect --shim`` keeps the env's real uv when it puts the shim in its place
REAL_UV_VAR = "SAFE_PIP_REAL_UV"

#: the options ``uv pip uninstall --dry-run`` leaves out: its output is read, not shown
_NOT_IN_DRY_RUN = frozenset({"--quiet", "--verbose", "--color"})

#: uv pip uninstall takes only these of the options carried from an install
_UNINSTALL_OPTIONS = frozenset(
    {
        "--target",
        "--prefix",
        "--break-system-packages",
        "--no-break-system-packages",
        "--quiet",
        "--verbose",
        "--no-cache",
        "--cache-dir",
        "--offline",
        "--color",
        "--no-progress",
        "--keyring-provider",
        "--cert",
        "--allow-insecure-host",
        "--native-tls",
        "--system-certs",
    }
)


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def candidates(env: Environment | None) -> Iterator[str]:
    """Where safe-pip looks for uv, in order (each place once).

    safe-pip's own uv (``safe-pip-policy[uv]`` puts it next to safe-pip's
    interpreter), then the env's: the one behind its shim, or its ``bin/uv``.
    Never ``PATH`` and never a download.  Each place is worked out only when the
    one before has no uv (``sysconfig`` costs a few milliseconds to load).
    """
    seen: set[str] = set()

    def new(path: str) -> bool:
        fresh = path not in seen
        seen.add(path)
        return fresh

    first = os.path.join(os.path.dirname(sys.executable), "uv")
    if new(first):
        yield first
    import sysconfig

    scripts = os.path.join(sysconfig.get_path("scripts"), "uv")
    if new(scripts):
        yield scripts
    if env is not None:
        from safe_pip.launcher import is_shim
        from safe_pip.marker import shimmed_original

        original = shimmed_original(env, "uv")
        if original and new(original):
            yield original
        plain = os.path.join(env.scripts, "uv")
        if not is_shim(plain) and new(plain):
            yield plain


def find_uv(env: Environment | None) -> str:
    """The uv binary to run; raises ``InstallerMissing``."""
    from safe_pip.launcher import is_shim

    for path in candidates(env):
        if _is_executable(path) and not is_shim(path):
            return path
    raise InstallerMissing(
        "uv is not installed for safe-pip",
        hint="the admin installs it with safe-pip: `pip install 'safe-pip-policy[uv]'` "
        "in safe-pip's own environment",
    )


def uv_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """uv's environment: the user's, less safe-pip's binding and uv's config-file variables."""
    env = pip_environ(environ, chosen=False)
    for name in DROPPED_VARIABLES:
        env.pop(name, None)
    env["UV_NO_CONFIG"] = "1"
    return env


def installed_version(binary: str) -> str | None:
    """The version of the ``uv`` distribution that installed ``binary`` (pip or uv put
    ``<prefix>/bin/uv`` there from the ``uv`` wheel), when its RECORD lists a file of
    that name and size there; None when that cannot be told (then uv is asked)."""
    from safe_pip.readfile import read_text

    prefix = os.path.dirname(os.path.dirname(binary))
    try:
        size = os.stat(binary).st_size
        lib = os.path.join(prefix, "lib")
        sites = [os.path.join(lib, d, "site-packages") for d in os.listdir(lib)]
    except OSError:
        return None
    for site in sites:
        try:
            entries = [e for e in os.listdir(site) if e.startswith("uv-")]
        except OSError:
            continue
        for entry in entries:
            version = entry[len("uv-") : -len(".dist-info")]
            if not entry.endswith(".dist-info") or not version or "-" in version:
                continue
            try:
                record = read_text(os.path.join(site, entry, "RECORD"), limit=MiB)
            except (OSError, ValueError):
                continue
            for line in record.splitlines():
                path, _, rest = line.partition(",")
                listed = os.path.normpath(os.path.join(site, path))
                if listed == os.path.normpath(binary) and rest.rpartition(",")[2] == str(size):
                    return version
    return None


class _Version:
    """uv's version, for the record: from the ``uv`` distribution's RECORD where it
    installed the binary, else ``uv --version`` asked early and read when the record is
    written, so that it costs no time of its own next to uv's real work."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.value: str | None = None
        self.child: Child | None = None

    def ask(self) -> None:
        if self.value is None and self.child is None:
            self.value = installed_version(self.binary)
        if self.value is None and self.child is None:
            try:
                self.child = Child([self.binary, "--version"], os.environ, capture=True)
            except OSError:
                self.value = ""

    def get(self) -> str:
        """``0.13.9`` ('' when uv cannot tell)."""
        if self.value is None:
            self.ask()
        if self.child is not None:
            try:
                out, _ = self.child.communicate(timeout=30)
            except ChildTimeout:
                self.child.discard()
                out = ""
            self.child = None
            words = out.split()
            self.value = words[1] if len(words) >= 2 and words[0] == "uv" else ""
        return self.value or ""


# --- direct references and local wheels ---------------------------------------------


def _project_name_of_dir(path: str) -> str:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    try:
        text = read_text(os.path.join(path, "pyproject.toml"), limit=MiB)
        name = tomllib.loads(text).get("project", {}).get("name")
        if isinstance(name, str) and name:
            return normalize_name(name)
    except (OSError, ValueError, AttributeError, RecursionError):
        pass
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read_string(read_text(os.path.join(path, "setup.cfg"), limit=MiB))
        name = parser.get("metadata", "name", fallback="")
    except (OSError, configparser.Error, UnicodeDecodeError):
        name = ""
    return normalize_name(name) if name else ""


def _path_of(text: str) -> str:
    value = text.split("#", 1)[0]
    if value.startswith("file://"):
        value = value[len("file://") :]
    return os.path.abspath(os.path.expanduser(value))


def direct_reference_name(text: str) -> str | None:
    """The project a direct reference installs; None when ``text`` is a plain requirement,
    '' when it is a direct reference whose name safe-pip cannot tell."""
    from safe_pip.decide import is_local_path

    value = text.strip()
    if " @ " in value or (value.split("@", 1)[0].strip().isidentifier() and "@" in value):
        head = value.split("@", 1)[0].split("[", 1)[0].strip()
        if head and "://" not in head:
            return normalize_name(head)
    if "#egg=" in value:
        return normalize_name(value.split("#egg=", 1)[1].split("&", 1)[0].split("[", 1)[0])
    remote = "://" in value and not value.startswith("file:")
    if not (is_local_path(value) or remote or value.startswith(("git+", "hg+"))):
        return None
    base = os.path.basename(value.split("#", 1)[0].rstrip("/"))
    if base.endswith(".whl"):
        return normalize_name(base.split("-", 1)[0])
    if not remote:
        path = _path_of(value)
        if os.path.isdir(path):
            return _project_name_of_dir(path)
    return ""


def _local_dirs(links: Sequence[str]) -> list[str]:
    dirs = []
    for link in links:
        if "://" in link and not link.startswith("file://"):
            continue
        path = _path_of(link)
        if os.path.isdir(path):
            dirs.append(path)
    return dirs


def _wheels_by_pin(dirs: Sequence[str]) -> tuple[dict[tuple[str, str], list[str]], set[str]]:
    """Wheel files in local directories by (normalised name, version) of their file name
    (``name-version(-build)?-python-abi-platform.whl``), and the names any other file
    there may belong to (every name a ``name-version.tar.gz`` or a wheel name safe-pip
    does not read could be read as: an sdist of any format counts)."""
    found: dict[tuple[str, str], list[str]] = {}
    others: set[str] = set()
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for filename in names:
            parts = filename[: -len(".whl")].split("-")
            if not filename.endswith(".whl") or len(parts) not in (5, 6):
                words = filename.split("-")
                others.update(normalize_name("-".join(words[:i])) for i in range(1, len(words)))
                continue
            found.setdefault((normalize_name(parts[0]), parts[1]), []).append(
                os.path.join(directory, filename)
            )
    return found, others


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open_regular(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- the plan ----------------------------------------------------------------------


class UvPlanError(TargetError):
    """uv's plan could not be read."""


def read_plan(stdout: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(installed, uninstalled) ``{name, version}`` lists from uv's ``--output-format json``.

    Raises ``UvPlanError`` for output this reader does not understand: the
    schema is uv's *preview* one, and an unread plan must not pass as empty.
    """
    import json

    try:
        data = json.loads(stdout)
    except ValueError as error:
        raise UvPlanError(f"uv's plan is not JSON: {error}") from error
    changes = data.get("changes") if isinstance(data, dict) else None
    if not isinstance(changes, list):
        raise UvPlanError("uv's plan has no list of changes")
    installed: list[dict[str, str]] = []
    uninstalled: list[dict[str, str]] = []
    for change in changes:
        if not isinstance(change, dict):
            raise UvPlanError("uv's plan has a change that is not an object")
        name, version, action = change.get("name"), change.get("version"), change.get("action")
        if action == "installed" and version is None:
            version = ""  # a source tree or URL uv has not built yet (see ``planned``)
        if not isinstance(name, str) or not name or not isinstance(version, str):
            raise UvPlanError(f"uv's plan has a change without name and version: {change!r}")
        item = {"name": name, "version": version}
        if action == "installed":
            installed.append(item)
        elif action in ("uninstalled", "removed"):
            uninstalled.append(item)
        else:
            raise UvPlanError(f"uv's plan has an action safe-pip does not know: {action!r}")
    return installed, uninstalled


class Pins:
    """How each planned distribution is named in the pinned install, and its plan item."""

    def __init__(self, cmd: UvCommand) -> None:
        from safe_pip.pipcli import requirement_file_requirements

        op = cmd.op
        self.editables: dict[str, str] = {}
        self.direct: dict[str, str] = {}
        self.requested: set[str] = set()
        for text in op.editables:
            name = direct_reference_name(text) or _project_name_of_dir(_path_of(text))
            if not name:
                raise UsageError(
                    f"safe-pip cannot tell which project `-e {text}` is, so it cannot install "
                    "exactly uv's plan",
                    hint="give the project a [project] name in pyproject.toml, or use pip",
                )
            self.editables[name] = text
            self.requested.add(name)
        for text in (*op.args, *requirement_file_requirements(op)):
            direct = direct_reference_name(text)
            if direct is None:
                self.requested.add(_requirement_name(text) or "")
                continue
            if not direct:
                raise UsageError(
                    f"safe-pip cannot tell which project {text!r} is, so it cannot install "
                    "exactly uv's plan",
                    hint="write it as `name @ URL`, or use pip",
                )
            self.direct[direct] = text
            self.requested.add(direct)
        local = _local_dirs(op.find_links)
        self.wheels, self._others = _wheels_by_pin(local)
        #: the versions of each project's local wheels
        self._versions: dict[str, list[str]] = {}
        for name, version in self.wheels:
            self._versions.setdefault(name, []).append(version)
        #: uv's only candidates are the local directories' files: no index, no remote
        #: find-links page (then a pin by name takes the one local wheel of its version)
        self._local_only = op.no_index and len(local) == len(op.find_links)
        self.sync = cmd.command == "sync"
        #: what ``prepare`` read of the local wheels: path -> (download_info, files)
        self._read: dict[str, tuple[dict[str, Any], dict[str, list[str]] | None]] = {}

    def prepare(self, limit: int = 64) -> None:
        """Read the local wheels of the requested projects (hash and files) while uv
        works out its plan; ``item`` then takes them.  At most ``limit`` files."""
        paths = [
            path
            for (name, _), found in self.wheels.items()
            if name in self.requested
            for path in found
        ]
        for path in paths[:limit]:
            try:
                self._wheel(path)
            except OSError:
                continue  # read again (and said) if the plan names this very file

    def _wheel(self, path: str) -> tuple[dict[str, Any], dict[str, list[str]] | None]:
        if path not in self._read:
            self._read[path] = (self._archive(path), wheel_files(path))
        return self._read[path]

    def item(self, name: str, version: str) -> tuple[dict[str, Any], list[str]]:
        """(the pip-report item, the argument(s) that install exactly it)."""
        key = normalize_name(name)
        entry: dict[str, Any] = {
            "metadata": {"name": name, "version": version},
            "requested": self.sync or key in self.requested,
            "is_direct": False,
        }
        if key in self.editables:
            text = self.editables[key]
            entry["is_direct"] = True
            entry["download_info"] = {
                "url": "file://" + _path_of(text),
                "dir_info": {"editable": True},
            }
            return entry, ["-e", text]
        if key in self.direct:
            text = self.direct[key]
            entry["is_direct"] = True
            path = _path_of(text)
            if "://" not in text or text.startswith("file:"):
                if os.path.isdir(path):
                    entry["download_info"] = {"url": "file://" + path, "dir_info": {}}
                elif os.path.isfile(path):
                    entry["download_info"] = self._archive(path)
                    if path.endswith(".whl"):
                        entry["safe_pip_files"] = wheel_files(path)
            return entry, [text]
        wheels = self.wheels.get((key, version), [])
        if len(wheels) == 1:
            entry["download_info"], files = self._wheel(wheels[0])
            # the files the wheel writes, for the file-level checks (where no local wheel
            # tells them, as for one uv fetches from an index: ``read_files``)
            entry["safe_pip_files"] = files
            if self._only_candidate(key, version):
                # installed by name, as uv installs it from --find-links (no
                # direct_url.json, `pip freeze` says `name==version`)
                return entry, [f"{key}=={version}"]
            # an index, a source archive or another wheel could answer the pin too
            return entry, [wheels[0]]
        return entry, [f"{key}=={version}"]

    def _only_candidate(self, key: str, version: str) -> bool:
        """True when the one local wheel of ``key`` ``version`` is the only file uv could
        take for ``key==version``: no index, no remote find-links, no other file there
        that could be the project's, and none of its other wheels of a version ``==``
        takes (PEP 440: ``==1.0`` also takes 1.0.0, 01.0 and 1.0+local)."""
        if not self._local_only or key in self._others:
            return False
        others = [v for v in self._versions.get(key, []) if v != version]
        if not others:
            return True
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        try:
            pin = SpecifierSet(f"=={version}")
            return not any(pin.contains(Version(v), prereleases=True) for v in others)
        except (InvalidSpecifier, InvalidVersion):
            return False

    @staticmethod
    def _archive(path: str) -> dict[str, Any]:
        digest = _sha256(path)
        return {
            "url": "file://" + path,
            "archive_info": {"hash": f"sha256={digest}", "hashes": {"sha256": digest}},
        }


def wheel_files(path: str) -> dict[str, list[str]] | None:
    """What installing the wheel at ``path`` writes, as the plan's ``safe_pip_files``
    (the format ``preflight`` gives pip's items): its members and the console
    scripts the installer generates.  None when it cannot be read."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if not n.endswith("/")]
            scripts: list[str] = []
            for name in names:
                top, _, rest = name.partition("/")
                if not (top.endswith(".dist-info") and rest == "entry_points.txt"):
                    continue
                if wheel.getinfo(name).file_size > MiB:
                    return None
                found = script_names(wheel.read(name).decode("utf-8"))
                if found is None:
                    return None
                scripts.extend(found)
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return {"wheel": names, "scripts": scripts}


_SCRIPT_SECTIONS = ("console_scripts", "gui_scripts")


def script_names(text: str) -> list[str] | None:
    """The scripts an ``entry_points.txt`` declares (``[console_scripts]``,
    ``[gui_scripts]``: ``name = module:function``), read as installers read it (an INI
    file, ``=`` the only delimiter, names kept as written); None where that reading
    fails (a line outside any section, a line without ``=``, a section or a name in
    it given twice), as an installer would fail on it."""
    section: str | None = None
    seen: dict[str, set[str]] = {}
    names: list[str] = []
    in_value = False
    key_indent = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        indent = len(raw) - len(raw.lstrip())
        if in_value and indent > key_indent:
            continue  # a continuation of the value above
        if line.startswith("[") and "]" in line:
            section = line[1 : line.index("]")]
            if section in seen:
                return None  # a section given twice
            seen[section] = set()
            in_value = False
            continue
        key, equals, _ = line.partition("=")
        key = key.strip()
        if section is None or not equals or not key or key in seen[section]:
            return None
        seen[section].add(key)
        in_value, key_indent = True, indent
        if section in _SCRIPT_SECTIONS:
            names.append(key)
    return names


# --- what the other planned distributions write: uv's own install into a scratch prefix ---

#: carried options the scratch install leaves out: where and how it links are its own, its
#: output is read only when it fails, and it compiles no bytecode (the checks read the
#: files the wheel itself writes, as for pip)
_NOT_IN_SCRATCH = frozenset(
    {
        "--target",
        "--prefix",
        "--link-mode",
        "--quiet",
        "--verbose",
        "--color",
        "--no-progress",
        "--compile-bytecode",
        "--no-compile-bytecode",
    }
)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def installed_files(prefix: str, site: str, dist_info: str) -> dict[str, list[str]]:
    """What a distribution installed under ``prefix`` writes, from its RECORD, in the
    plan's ``safe_pip_files`` format (``wheel_files`` gives the same for a wheel file).

    A path in the site-packages directory ``site`` is the wheel member of that name, one
    in ``<prefix>/bin`` a script, any other under ``prefix`` the member
    ``<dist-info stem>.data/data/<its path in prefix>`` (which the checks place in the
    env's ``data`` directory, its prefix).  Raises ``UvPlanError`` when the RECORD
    cannot be read or names a path outside ``prefix``.
    """
    import csv
    import io

    record = os.path.join(site, dist_info, "RECORD")
    try:
        rows = list(csv.reader(io.StringIO(read_text(record, limit=16 * MiB))))
    except (OSError, ValueError, csv.Error) as error:
        raise UvPlanError(f"cannot read {record}: {error}") from error
    stem = dist_info[: -len(".dist-info")]
    scripts_dir = os.path.join(prefix, "bin")
    members: list[str] = []
    scripts: list[str] = []
    for row in rows:
        if not row or not row[0]:
            continue
        path = os.path.normpath(os.path.join(site, row[0]))
        if _inside(path, site):
            members.append(os.path.relpath(path, site).replace(os.sep, "/"))
        elif _inside(path, scripts_dir):
            scripts.append(os.path.relpath(path, scripts_dir).replace(os.sep, "/"))
        elif _inside(path, prefix):
            members.append(
                f"{stem}.data/data/" + os.path.relpath(path, prefix).replace(os.sep, "/")
            )
        else:
            raise UvPlanError(f"{record} lists a file outside the scratch directory: {row[0]}")
    return {"wheel": members, "scripts": scripts}


def dist_infos(prefix: str) -> dict[str, list[tuple[str, str]]]:
    """(site-packages directory, dist-info directory name) of every distribution under
    ``prefix``, by normalised name (the walk stops at the directory holding them)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for directory, dirs, _files in os.walk(prefix):
        here = [d for d in dirs if d.endswith(".dist-info")]
        for name in here:
            found.setdefault(normalize_name(name.partition("-")[0]), []).append((directory, name))
        if here:
            dirs[:] = []
    return found


def _same_version(one: str, other: str) -> bool:
    if one == other:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(one) == Version(other)
    except InvalidVersion:
        return False


def _files_of(
    prefix: str, found: Mapping[str, list[tuple[str, str]]], entry: Mapping[str, Any]
) -> tuple[dict[str, list[str]], str]:
    """(``installed_files`` of the plan item ``entry``, found under ``prefix``; the version
    installed there)."""
    metadata = entry.get("metadata") or {}
    name, version = str(metadata.get("name", "")), str(metadata.get("version", ""))
    candidates = found.get(normalize_name(name), [])
    if len(candidates) != 1:
        raise UvPlanError(f"uv's scratch install holds {len(candidates)} dist-info of {name}")
    site, dist_info = candidates[0]
    installed = dist_info[: -len(".dist-info")].partition("-")[2]
    # a source tree uv had not built for its plan (`-e .`) is planned without a version
    if version and not _same_version(installed, version):
        raise UvPlanError(f"uv's scratch install holds {name} {installed}, not {version}")
    return installed_files(prefix, site, dist_info), installed


def _files_unknown(unread: Unread, problem: str) -> None:
    """Every item of ``unread`` without its files (the check fails closed)."""
    for entry, _pin in unread:
        entry["safe_pip_files"] = None
        entry["safe_pip_files_error"] = problem
    sys.stderr.write(f"safe-pip: cannot tell which files uv's plan writes: {problem}\n")


def _files_from(unread: Unread, scratch: str) -> None:
    """The items of ``unread`` with the files their RECORDs under ``scratch`` list (and
    the version uv built, for a source tree planned without one)."""
    found = dist_infos(scratch)
    problems: list[str] = []
    for entry, _pin in unread:
        try:
            entry["safe_pip_files"], installed = _files_of(scratch, found, entry)
            metadata = entry["metadata"]
            metadata["version"] = metadata["version"] or installed
        except UvPlanError as error:
            entry["safe_pip_files"] = None
            entry["safe_pip_files_error"] = error.message
            problems.append(error.message)
    if problems:
        sys.stderr.write(f"safe-pip: cannot tell which files uv's plan writes: {problems[0]}\n")


def _run_quietly(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the scratch install (no bytecode: see ``_NOT_IN_SCRATCH``): uv's exit code, its
    output shown when it failed; raises ``OSError`` when uv cannot be run."""
    from safe_pip.runner import started

    quiet_env = {k: v for k, v in environ.items() if k != "UV_COMPILE_BYTECODE"}
    child = started(Child(argv, quiet_env, capture=True))  # a long build: signals reach it
    try:
        _, err = child.communicate()
    except BaseException:
        child.discard()
        raise
    if child.wait() != 0:
        sys.stderr.write(err)
    return exit_code(child.wait())


def _scratch_args(cmd: UvCommand, scratch: str) -> list[str]:
    """``uv pip install`` options (before the pins) that put them into ``scratch``: the
    command's carried options but where and how to link, ``--no-deps``, and hardlinks
    from uv's cache (uv's fastest way; it copies where they cannot be made)."""
    args = [
        word
        for role, name, typed in cmd.groups
        if role == CARRY and name not in _NOT_IN_SCRATCH
        for word in typed
    ]
    return [*args, "--no-deps", "--link-mode", "hardlink", "--prefix", scratch]


def _scratch_pins(pins: Sequence[list[str]]) -> list[str]:
    """The pins as the scratch install's arguments: editables as ``--editable=PATH``
    before the ``--`` that ends the options, the others after it."""
    editables = [f"--editable={pin[1]}" for pin in pins if pin[0] == "-e"]
    return [*editables, "--", *(word for pin in pins if pin[0] != "-e" for word in pin)]


def uv_cache_dir(cmd: UvCommand, environ: Mapping[str, str]) -> str | None:
    """The cache directory uv uses for ``cmd`` on Linux (``--cache-dir``, ``UV_CACHE_DIR``,
    ``$XDG_CACHE_HOME/uv``, ``~/.cache/uv``); None with ``--no-cache`` / ``UV_NO_CACHE``
    (a temporary one) or when it cannot be told."""
    from safe_pip.backends.uv_cli import _env_bool

    if _env_bool(environ.get("UV_NO_CACHE", "")):
        return None
    given: str | None = None
    for _role, name, typed in cmd.groups:
        if name == "--no-cache":
            return None
        if name == "--cache-dir":
            given = typed[-1].partition("=")[2] if len(typed) == 1 else typed[-1]
    given = given or environ.get("UV_CACHE_DIR")
    if not given:
        xdg = environ.get("XDG_CACHE_HOME", "")
        home = environ.get("HOME", "")
        if os.path.isabs(xdg):
            given = os.path.join(xdg, "uv")
        elif home:
            given = os.path.join(home, ".cache", "uv")
    return os.path.abspath(given) if given else None


def scratch_dir(cmd: UvCommand, environ: Mapping[str, str]) -> str:
    """A new private directory for the scratch install: inside uv's cache where it exists,
    so that uv hardlinks the files there instead of copying them; else a temporary one."""
    import tempfile

    cache = uv_cache_dir(cmd, environ)
    if cache is not None and os.path.isdir(cache):
        try:
            return tempfile.mkdtemp(prefix=".safe-pip-scratch-", dir=cache)
        except OSError:
            pass
    return tempfile.mkdtemp(prefix="safe-pip-uv-")


def _requirement_name(text: str) -> str | None:
    from safe_pip.audit.record import requirement_name

    return requirement_name(text)


# --- running uv --------------------------------------------------------------------


def _run(argv: Sequence[str], environ: Mapping[str, str]) -> tuple[int, bool]:
    """uv with the terminal's streams; forwarded signals and Ctrl-C reach it, and it is
    waited for (``runner.wait_for``)."""
    from safe_pip.runner import started, wait_for

    try:
        child = started(Child(argv, environ, capture=False))
    except OSError as error:
        raise TargetError(f"cannot run {argv[0]}: {error.strerror}") from error
    return wait_for(child)


@frozen
class _Planned:
    """uv's plan: the report-format plan to check, and how to carry out exactly it."""

    plan: dict[str, Any]
    #: the pinned install: wheel paths, direct references, ``name==version``
    pins: list[str]
    #: ``--reinstall-package NAME`` for what the plan reinstalls
    reinstall: list[str]
    #: what ``uv pip sync`` removes outright
    removals: list[str]
    #: plan items whose files no local wheel tells, with the argument(s) that install them
    unread: Unread = field(default_factory=list)


def planned(stdout: str, pins: Pins) -> _Planned:
    """uv's ``--output-format json`` plan, read (``read_plan``) and pinned."""
    from safe_pip.changes import PLANNED_REMOVALS

    installed, uninstalled = read_plan(stdout)
    result = _Planned({"version": "1", "install": [], PLANNED_REMOVALS: []}, [], [], [])
    new_names = {normalize_name(i["name"]) for i in installed}
    for item in installed:
        if not item["version"] and normalize_name(item["name"]) not in {
            **pins.editables,
            **pins.direct,
        }:
            # only what the user named by path or URL may come without a version: it is
            # installed as written; anything else would be pinned as `name==`
            raise UvPlanError(f"uv's plan has {item['name']} without a version")
        entry, pin = pins.item(item["name"], item["version"])
        result.plan["install"].append(entry)
        result.pins.extend(pin)
        if "safe_pip_files" not in entry:
            result.unread.append((entry, pin))
    for item in uninstalled:
        key = normalize_name(item["name"])
        if key in new_names:
            result.reinstall.extend(["--reinstall-package", key])
        else:
            result.plan[PLANNED_REMOVALS].append(item)
            result.removals.append(key)
    return result


class UvBackend:
    name = UV

    def __init__(self, binary: str) -> None:
        self.binary = binary
        #: asked once uv is at work on the command, read when the first record is written
        self._version = _Version(binary)
        self._pending: tuple[Request, Child] | None = None

    def version(self) -> str:
        return self._version.get()

    def close(self) -> None:
        """Stop a plan asked for early that no install took (the command was refused)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].discard()
        if self._version.child is not None:
            self._version.child.discard()
            self._version.child = None

    def _base(self, command: str, python: str) -> list[str]:
        return [self.binary, "pip", command, "--python", python, "--no-config"]

    def start(self, request: Request) -> None:
        """Ask uv for its plan now, while safe-pip does its own work: a dry run changes
        nothing, and ``install`` of the same request takes its answer."""
        if self._pending is not None and self._pending[0] == request:
            return  # already asked
        cmd = parse_uv_pip(request.args, request.environ)
        if cmd.command != "uninstall" and not cmd.op.dry_run:
            self._pending = (request, self._ask_plan(cmd, request.python, request.environ))
        self._version.ask()

    def install(self, request: Request, check: Check, *, files: bool = True) -> InstallRun:
        from safe_pip.runner import PipRun, started

        began = time.monotonic()

        def ran(code: int, interrupted: bool = False) -> PipRun:
            return PipRun(code, time.monotonic() - began, interrupted)

        self._version.ask()
        cmd = parse_uv_pip(request.args, request.environ)
        environ = uv_environ(request.environ)
        if cmd.op.dry_run:
            # uv's own dry run changes nothing: run it as asked
            argv = [*self._base(cmd.command, request.python), *cmd.args_for_safe_pip_target()]
            return InstallRun(ran(*_run(argv, environ)), None)
        pending, self._pending = self._pending, None
        child = pending[1] if pending is not None and pending[0] == request else None
        if pending is not None and child is None:
            pending[1].discard()  # asked for another request: not this plan
        if child is None:
            child = self._ask_plan(cmd, request.python, request.environ)
        started(child)  # a SIGTERM or SIGHUP from now on reaches uv's plan too
        try:
            pins = Pins(cmd)  # while uv works out its plan
            pins.prepare()
            out, err = child.communicate()
        except KeyboardInterrupt:
            child.discard()
            return InstallRun(ran(130, True), None)
        except BaseException:
            child.discard()
            raise
        if child.wait() != 0:
            sys.stderr.write(err)
            return InstallRun(ran(exit_code(child.wait())), None)
        plan = planned(out, pins)
        stopped = self.read_files(plan, cmd, request.python, environ, editables=files)
        if stopped is not None:
            return InstallRun(ran(stopped, stopped == 130), None)
        go, verdict = check(plan.plan)
        if not go:
            return InstallRun(ran(1), plan.plan, verdict)
        return InstallRun(ran(*self._carry_out(plan, cmd, request.python, environ)), plan.plan)

    def read_files(
        self,
        plan: _Planned,
        cmd: UvCommand,
        python: str,
        environ: Mapping[str, str],
        *,
        editables: bool = True,
    ) -> int | None:
        """The files of the planned distributions no local wheel tells (``plan.unread``:
        from an index, or built from a direct reference or an editable project), into
        their items' ``safe_pip_files``; None to go on to the check, else the exit code
        to stop with (130: interrupted; uv's own when uv could not install the pins).

        uv itself installs exactly those pins (``--no-deps``, with the plan run's index
        and build options) into a private scratch prefix, hardlinked from its cache, so
        the install after the check takes the same files from the same cache; each RECORD
        there says what the distribution writes.  The scratch is removed.  Where uv fails
        there (a project that does not build, an index that does not answer), the install
        would fail the same way: its error is shown and nothing is installed.  Where the
        files cannot be told otherwise, the items say so (``safe_pip_files_error``) and
        the check fails closed.  An editable project's files cost a build of their own:
        without ``editables`` (no conda file checks) they are left unknown.
        """
        import shutil

        unread = [item for item in plan.unread if editables or item[1][0] != "-e"]
        if not unread:
            return None
        try:
            scratch = scratch_dir(cmd, environ)
        except OSError as error:
            _files_unknown(unread, f"cannot make a scratch directory: {error}")
            return None
        try:
            argv = [*self._base("install", python), *_scratch_args(cmd, scratch)]
            argv.extend(_scratch_pins([pin for _entry, pin in unread]))
            try:
                code = _run_quietly(argv, environ)
            except OSError as error:
                _files_unknown(unread, f"cannot run {argv[0]}: {error.strerror}")
                return None
            if code != 0:
                sys.stderr.write(
                    "safe-pip: uv could not install its plan into a scratch prefix (to see "
                    "the files it writes); nothing was installed\n"
                )
                return code
            _files_from(unread, scratch)
        except KeyboardInterrupt:
            return 130
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return None

    def _ask_plan(self, cmd: UvCommand, python: str, environ: Mapping[str, str]) -> Child:
        """uv working out its plan for the command (JSON on stdout); nothing changes."""
        argv = [
            *self._base(cmd.command, python),
            *cmd.plan_args,
            *cmd.carry_args,
            "--dry-run",
            "--output-format",
            "json",
            *(["--"] if cmd.positional else []),
            *cmd.positional,
        ]
        try:
            return Child(argv, uv_environ(environ), capture=True)
        except OSError as error:
            raise TargetError(f"cannot run {self.binary}: {error.strerror}") from error

    def _carry_out(
        self, plan: _Planned, cmd: UvCommand, python: str, environ: Mapping[str, str]
    ) -> tuple[int, bool]:
        """Exactly the plan: its removals, then its pinned installs with ``--no-deps``."""
        code, interrupted = 0, False
        if plan.removals:
            argv = [
                *self._base("uninstall", python),
                *cmd.carried(_UNINSTALL_OPTIONS),
                "--",
                *plan.removals,
            ]
            code, interrupted = _run(argv, environ)
        if plan.pins and code == 0 and not interrupted:
            argv = [
                *self._base("install", python),
                *cmd.carry_args,
                "--no-deps",
                *plan.reinstall,
                *plan.pins,
            ]
            code, interrupted = _run(argv, environ)
        elif not plan.pins and not plan.removals:
            sys.stderr.write("safe-pip: uv's plan changes nothing here\n")
        return code, interrupted

    def uninstall(self, request: Request, check: Check) -> InstallRun:
        """uv's own plan (``uv pip uninstall --dry-run``: the names and ``-r`` files read
        as uv reads them), checked, then exactly the planned distributions removed by
        name; an unreadable plan is marked incomplete (refused where conda's packages are
        protected)."""
        from safe_pip.runner import PipRun

        started = time.monotonic()

        def ran(code: int, interrupted: bool = False) -> PipRun:
            return PipRun(code, time.monotonic() - started, interrupted)

        cmd = parse_uv_pip(request.args, request.environ)
        environ = uv_environ(request.environ)
        argv = [
            *self._base("uninstall", request.python),
            *cmd.carried(_UNINSTALL_OPTIONS - _NOT_IN_DRY_RUN),
            *(w for _role, name, typed in cmd.groups if name == "--requirements" for w in typed),
            "--dry-run",
            "--color",
            "never",
            *(["--"] if cmd.positional else []),
            *cmd.positional,
        ]
        import subprocess

        try:
            done = subprocess.run(argv, env=environ, capture_output=True, text=True)
        except KeyboardInterrupt:
            return InstallRun(ran(130, True), None)
        except OSError as error:
            raise TargetError(f"cannot run {self.binary}: {error.strerror}") from error
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            return InstallRun(ran(done.returncode), None)
        plan: dict[str, Any] = {"version": "1", "uninstall": [], "safe_pip_complete": True}
        try:
            removals = read_uninstall_plan(done.stderr)
        except UvPlanError as error:
            sys.stderr.write(f"safe-pip: {error.message}\n")
            plan["safe_pip_complete"] = False
            removals = []
        plan["uninstall"] = [{**item, "files": None} for item in removals]
        go, verdict = check(plan)
        if not go:
            return InstallRun(PipRun(int(ExitCode.DENIED), 0.0, False), plan, verdict)
        if cmd.op.dry_run:
            sys.stderr.write(done.stderr)  # the user asked for uv's dry run: that one
            return InstallRun(ran(0), plan, verdict)
        if not plan["safe_pip_complete"]:
            # a plan not read, which the check let go (nothing here is protected)
            argv = [*self._base("uninstall", request.python), *cmd.args_for_safe_pip_target()]
        elif removals:
            argv = [
                *self._base("uninstall", request.python),
                *cmd.carried(_UNINSTALL_OPTIONS),
                "--",
                *(item["name"] for item in removals),
            ]
        else:
            sys.stderr.write("safe-pip: uv's plan removes nothing here\n")
            return InstallRun(ran(0), plan, verdict)
        return InstallRun(ran(*_run(argv, environ)), plan, verdict)


def read_uninstall_plan(output: str) -> list[dict[str, str]]:
    """The distributions ``uv pip uninstall --dry-run`` would remove, ``{name, version}``.

    uv prints that plan for people, on stderr: ``Would make no changes``, or ``Would
    uninstall N package(s)`` and N lines `` - name==version`` (`` (from URL)`` after a
    direct reference's).  Raises ``UvPlanError`` for output this reader does not
    recognise, so an unread plan never passes as empty.
    """
    import re

    lines = [line.strip() for line in output.splitlines() if line.strip()]
    counts = [m for m in (re.fullmatch(r"Would uninstall (\d+) packages?", x) for x in lines) if m]
    if not counts and "Would make no changes" in lines:
        return []
    if len(counts) != 1:
        raise UvPlanError("uv's uninstall plan could not be read")
    items: list[dict[str, str]] = []
    for line in lines[lines.index(counts[0][0]) + 1 :]:
        found = re.fullmatch(r"- ([A-Za-z0-9._-]+)==(\S+)( \(from .*\))?", line)
        if found is None:
            raise UvPlanError(f"uv's uninstall plan has a line safe-pip does not know: {line!r}")
        items.append({"name": found[1], "version": found[2]})
    if len(items) != int(counts[0][1]):
        raise UvPlanError(f"uv's uninstall plan lists {len(items)} of {counts[0][1]} packages")
    return items


__all__ = [
    "REAL_UV_VAR",
    "Pins",
    "UvBackend",
    "UvPlanError",
    "candidates",
    "direct_reference_name",
    "dist_infos",
    "find_uv",
    "installed_files",
    "planned",
    "read_plan",
    "read_uninstall_plan",
    "scratch_dir",
    "uv_cache_dir",
    "uv_environ",
    "wheel_files",
]
