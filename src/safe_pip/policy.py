"""The policy: built-in hub defaults, the admin's system file, and per-env files.

Layers, in order: the built-in defaults; ``/etc/safe-pip/policy.toml`` (the
admin's); its ``[[envs]]`` tables whose ``path`` matches the target prefix, in
file order, so that of two matching entries the later one wins; then
``<prefix>/etc/safe-pip/policy.toml``.  An env file may tighten any key but
loosen only the keys the system file lists under ``delegate``.  Nothing a
user controls (variables, user files, flags) is read here.

Every problem in a file is found, not only the first (``check_file``, for
``safe-pip policy check``); each names the file, the line and the key, with a
"did you mean" for a misspelt key or value.  ``load_policy`` raises the first.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from safe_pip.errors import PolicyError
from safe_pip.lazyre import lazy
from safe_pip.readfile import read_bytes
from safe_pip.values import field, frozen

SYSTEM_POLICY = "/etc/safe-pip/policy.toml"
#: The largest policy file read (every key, commented, is a few KiB).
MAX_POLICY_BYTES = 256 * 1024
#: The longest glob pattern (an [[envs]] path, a packages.deny name): fnmatch compiles a
#: pattern in time quadratic in its '[' (50,000 of them took 208 s).
MAX_PATTERN = 1024
#: Problems of one file listed one by one (``policy check``); the rest are counted.
MAX_PROBLEMS = 100
_MAX_MESSAGE = 300
ENV_POLICY = os.path.join("etc", "safe-pip", "policy.toml")

MODES = ("allow", "dev-only", "deny")
KINDS = ("conda-env", "conda-base", "venv", "system", "other")
AUDIT_LOCATIONS = ("env", "user")
#: how a refusal is carried out: ``warn`` lets the command run and records ``would-deny``
ENFORCEMENT = ("warn", "enforce")
#: ``!pip`` from a notebook into another env than the notebook's: in order of strictness
NOTEBOOK_OTHER_ENV = ("warn", "refuse")
INSTALLERS = ("pip", "uv")
MISSING_INSTALLER = ("pip", "refuse")

DEFAULT_MARKER_MESSAGE = (
    "pip in this environment goes through safe-pip (the hub's policy):\n"
    "in a notebook:  %pip install <package>\n"
    "in a terminal:  {pip} install <package>"
)
DEFAULT_TOKEN_ENV = "CONDA_STORE_TOKEN"
DEFAULT_TOKEN_FILE = "~/.config/safe-pip/conda-store-token"


def _mode_rank(value: object) -> int:
    return MODES.index(str(value))


def _stricter_bool_true(old: object, new: object) -> bool:
    return bool(new) or not bool(old)


def _stricter_bool_false(old: object, new: object) -> bool:
    return not bool(new) or bool(old)


def _stricter_mode(old: object, new: object) -> bool:
    return _mode_rank(new) >= _mode_rank(old)


def _stricter_enforcement(old: object, new: object) -> bool:
    return ENFORCEMENT.index(str(new)) >= ENFORCEMENT.index(str(old))


def _stricter_notebook(old: object, new: object) -> bool:
    return NOTEBOOK_OTHER_ENV.index(str(new)) >= NOTEBOOK_OTHER_ENV.index(str(old))


def _stricter_subset(old: object, new: object) -> bool:
    assert isinstance(old, (list, tuple)) and isinstance(new, (list, tuple))
    return set(new) <= set(old)


def _stricter_allowlist(old: object, new: object) -> bool:
    """An empty allowlist allows everything: any list is stricter; else a subset."""
    assert isinstance(old, (list, tuple)) and isinstance(new, (list, tuple))
    if not old:
        return True
    return bool(new) and set(new) <= set(old)


def _stricter_table_enforce(old: object, new: object) -> bool:
    """A table of enforcement settings (merged over ``old``): stricter when it adds
    only ``enforce``."""
    assert isinstance(old, Mapping) and isinstance(new, Mapping)
    return all(value == "enforce" or old.get(name) == value for name, value in new.items())


def _stricter_superset(old: object, new: object) -> bool:
    assert isinstance(old, Mapping) and isinstance(new, Mapping)
    return set(old) <= set(new)


def _stricter_floors(old: object, new: object) -> bool:
    from packaging.version import Version

    assert isinstance(old, Mapping) and isinstance(new, Mapping)
    return all(name in new and Version(new[name]) >= Version(v) for name, v in old.items())


def _never(old: object, new: object) -> bool:
    return old == new


@frozen
class Key:
    name: str
    #: "mode", "bool", "str", "paths", "choice", "urls", "choice-table",
    #: "reason-table", "version-table"
    kind: str
    default: object
    #: True when ``new`` is at least as strict as ``old``
    stricter: Callable[[object, object], bool]
    doc: str
    choices: tuple[str, ...] = ()
    #: for tables: the names the table may have (empty: any)
    names: Callable[[], tuple[str, ...]] | None = None


def _rule_names() -> tuple[str, ...]:
    from safe_pip import rules

    return tuple(rules.CONFIGURABLE)


def _kind_names() -> tuple[str, ...]:
    return KINDS


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        *(
            Key(
                f"install.{kind}",
                "mode",
                "deny" if kind in ("conda-base", "system") else "allow",
                _stricter_mode,
                f"what pip may install in a {kind} environment",
                MODES,
            )
            for kind in KINDS
        ),
        Key(
            "install.dev-installs",
            "bool",
            True,
            _stricter_bool_false,
            "allow developer installs (-e <local dir>) where installs are allowed or dev-only",
        ),
        Key(
            "install.require-no-build-isolation",
            "bool",
            True,
            _stricter_bool_true,
            "in conda envs, builds of local source trees need --no-build-isolation",
        ),
        Key(
            "install.allowed-destinations",
            "paths",
            (),
            _stricter_subset,
            "directories outside the env that --target/--prefix/--root may write to",
        ),
        *(
            Key(
                f"installer.{kind}",
                "choice",
                "pip",
                _never,
                f"the installer that carries out allowed installs in a {kind} environment",
                INSTALLERS,
            )
            for kind in KINDS
        ),
        Key(
            "installer.user-choice",
            "bool",
            True,
            _stricter_bool_false,
            "users may choose the other installer for one command (--installer, `uv pip`)",
        ),
        Key(
            "installer.uv-missing",
            "choice",
            "pip",
            _never,
            "when uv is chosen but not installed: 'pip' (say so, install with pip) or 'refuse'",
            MISSING_INSTALLER,
        ),
        Key(
            "enforcement.mode",
            "choice",
            "enforce",
            _stricter_enforcement,
            "'enforce' refuses what the policy forbids; 'warn' lets it run, warns and "
            "records would-deny (base-env, read-only-env, system-python and frozen-env "
            "stay enforced unless enforcement.rules names them)",
            ENFORCEMENT,
        ),
        Key(
            "enforcement.kinds",
            "choice-table",
            {},
            _stricter_table_enforce,
            "enforce or warn per kind of environment, over enforcement.mode",
            ENFORCEMENT,
            _kind_names,
        ),
        Key(
            "enforcement.rules",
            "choice-table",
            {},
            _stricter_table_enforce,
            "enforce or warn per rule id, over the kind and the global setting",
            ENFORCEMENT,
            _rule_names,
        ),
        Key(
            "sources.allowed-indexes",
            "urls",
            (),
            _stricter_allowlist,
            "index URLs pip may use (--index-url, --extra-index-url, from any route); "
            "a URL allows itself and everything under it; empty: any",
        ),
        Key(
            "sources.allowed-find-links",
            "urls",
            (),
            _stricter_allowlist,
            "find-links locations pip may use (URLs or absolute paths); empty: any",
        ),
        Key(
            "packages.deny",
            "reason-table",
            {},
            _stricter_superset,
            "project names or glob patterns pip may not install, each with the reason "
            "shown to the user",
        ),
        Key(
            "packages.minimum-versions",
            "version-table",
            {},
            _stricter_floors,
            "the lowest version pip may install of a project",
        ),
        Key(
            "conda.protect-conda-packages",
            "bool",
            True,
            _stricter_bool_true,
            "pip may not replace or remove distributions that conda installed",
        ),
        Key(
            "conda.allow-override",
            "bool",
            False,
            _stricter_bool_false,
            "users may pass --replace-conda-packages to replace a conda-owned package",
        ),
        Key(
            "audit.required",
            "bool",
            True,
            _stricter_bool_true,
            "deny an allowed operation when its audit record cannot be written",
        ),
        Key(
            "audit.location",
            "str",
            "env",
            _never,
            "where records go: 'env' (<prefix>/var/log/safe-pip/audit.jsonl, falling back "
            "to the user's state dir), 'user', or an absolute path ({env_name} and "
            "{prefix_hash} are expanded)",
        ),
        Key(
            "audit.syslog",
            "str",
            "",
            _never,
            "also send every record to syslog (RFC 5424): 'unix:/dev/log', 'udp:HOST:PORT' "
            "or 'tcp:HOST:PORT'; empty: off",
        ),
        Key(
            "audit.journal",
            "bool",
            False,
            _stricter_bool_true,
            "also send every record to the systemd journal, where its socket exists",
        ),
        Key(
            "marker.message",
            "str",
            DEFAULT_MARKER_MESSAGE,
            _never,
            "the text `safe-pip protect` writes into EXTERNALLY-MANAGED ({pip}: the env's "
            "pip command, {prefix}: the env; messages.contact is added)",
        ),
        Key(
            "messages.contact",
            "str",
            "",
            _never,
            "a line added to every denial, e.g. where to ask for help",
        ),
        Key(
            "notebook.other-env",
            "choice",
            "warn",
            _stricter_notebook,
            "pip run from a notebook (`!pip`) into another env than the one the notebook "
            "runs: 'warn' (and install) or 'refuse' (rule notebook-env)",
            NOTEBOOK_OTHER_ENV,
        ),
        Key(
            "conda-store.url",
            "str",
            "",
            _never,
            "the hub's conda-store URL: named in the next step of a read-only env denial, "
            "and where `safe-pip request` submits",
        ),
        Key(
            "conda-store.namespace",
            "str",
            "",
            _never,
            "the conda-store namespace `safe-pip request` submits to (default: the env's "
            "own, from its path, else the user's name)",
        ),
        Key(
            "conda-store.token-env",
            "str",
            DEFAULT_TOKEN_ENV,
            _never,
            "the environment variable `safe-pip request` reads the user's token from",
        ),
        Key(
            "conda-store.token-file",
            "str",
            DEFAULT_TOKEN_FILE,
            _never,
            "the token file `safe-pip request` reads when the variable is unset "
            "(~ is the user's home; the user must own it)",
        ),
    )
}

SYSTEM_ONLY = ("delegate", "envs")
TOP_LEVEL = ("version", *SYSTEM_ONLY)


@frozen
class EnvEntry:
    """One ``[[envs]]`` table of the system file."""

    number: int  # 1-based, in file order
    pattern: str
    line: int | None
    values: Mapping[str, object]

    def matches(self, prefix: str) -> bool:
        real = os.path.realpath(prefix)
        return fnmatch.fnmatch(prefix, self.pattern) or fnmatch.fnmatch(real, self.pattern)

    def label(self) -> str:
        return f"[[envs]] #{self.number} (path = {self.pattern!r})"


@frozen
class Policy:
    values: Mapping[str, object]
    files: tuple[str, ...] = ()
    delegate: frozenset[str] = frozenset()
    #: loosening attempts that were ignored, for `status`
    notes: tuple[str, ...] = ()
    #: key -> where its value comes from ("built-in default", "FILE:LINE", ...)
    origins: Mapping[str, str] = field(default_factory=dict)
    #: the [[envs]] entries that matched the prefix, in the order applied
    matched: tuple[str, ...] = ()

    def mode_for(self, kind: str) -> str:
        return str(self.values[f"install.{kind}"])

    def flag(self, key: str) -> bool:
        return bool(self.values[key])

    def text(self, key: str) -> str:
        return str(self.values[key])

    def paths(self, key: str) -> tuple[str, ...]:
        value = self.values[key]
        assert isinstance(value, tuple)
        return tuple(str(v) for v in value)

    def table(self, key: str) -> dict[str, str]:
        value = self.values.get(key, KEYS[key].default)
        assert isinstance(value, Mapping)
        return {str(k): str(v) for k, v in value.items()}

    def enforcement(self, kind: str, rule: str) -> str:
        """``enforce`` or ``warn`` for a rule in a kind of env: the rule's own setting,
        else (except for the rules that protect other users' envs) the kind's, else
        ``enforcement.mode``."""
        from safe_pip import rules

        if rule not in rules.CONFIGURABLE:
            return "enforce"
        named = self.table("enforcement.rules")
        if rule in named:
            return named[rule]
        if rule in rules.PROTECTED:
            return "enforce"
        kinds = self.table("enforcement.kinds")
        return kinds.get(kind) or self.text("enforcement.mode")

    def origin(self, key: str) -> str:
        return self.origins.get(key, "built-in default")


def default_policy() -> Policy:
    return Policy(values={name: key.default for name, key in KEYS.items()})


# --- where a key is written -------------------------------------------------------------------

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r"\"[^\"]*\"|'[^']*'"
_PART = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_HEADER = lazy(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_ASSIGN = lazy(rf"^\s*({_DOTTED})\s*=")
_INLINE = lazy(rf"[{{,]\s*({_DOTTED})\s*=")


def _dotted(text: str) -> str:
    parts = re.findall(_PART, text)
    return ".".join(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def key_lines(text: str) -> dict[str, int]:
    """Dotted key -> the line it is set on; ``[[envs]]`` entries are ``envs[N]`` (0-based)."""
    lines: dict[str, int] = {}
    table = ""
    entries: dict[str, int] = {}
    in_string = False
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.count('"""') % 2 or raw.count("'''") % 2:
            was = in_string
            in_string = not in_string
            if was:
                continue
        elif in_string:
            continue
        header = _HEADER.match(raw)
        if header is not None:
            name = _dotted(header[2])
            if header[1] == "[[":
                index = entries[name] = entries.get(name, -1) + 1
                table = f"{name}[{index}]"
            else:
                head, _, rest = name.partition(".")
                table = f"{head}[{entries[head]}].{rest}" if head in entries and rest else name
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(raw)
        if assign is None:
            continue
        key = f"{table}.{_dotted(assign[1])}" if table else _dotted(assign[1])
        lines.setdefault(key, number)
        for inner in _INLINE.finditer(raw, assign.end()):
            lines.setdefault(f"{key}.{_dotted(inner[1])}", number)
    return lines


class _Located:
    """Problems of one file, each with its line."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.lines = key_lines(text)
        self.problems: list[PolicyError] = []
        self.more = 0

    def line(self, where: str) -> int | None:
        while where:
            if where in self.lines:
                return self.lines[where]
            where = where.rpartition(".")[0]
        return None

    def add(self, message: str, where: str, key: str, hint: str = "") -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.more += 1
            return
        if len(message) > _MAX_MESSAGE:  # a hostile value (say, 200 KiB of it) shown in full
            message = message[: _MAX_MESSAGE - 3] + "..."
        self.problems.append(
            PolicyError(message, path=self.path, line=self.line(where), key=key, hint=hint)
        )

    def listed(self) -> tuple[PolicyError, ...]:
        if not self.more:
            return tuple(self.problems)
        more = PolicyError(f"{self.more} more problems not listed", path=self.path)
        return (*self.problems, more)


def did_you_mean(value: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib

    if len(value) > _MAX_MESSAGE:  # difflib compares in quadratic time
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- reading and validating ------------------------------------------------------------------


def _load_toml(text: str, path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = None
        match = re.search(r"line (\d+)", str(error))
        if match:
            line = int(match.group(1))
        raise PolicyError(f"not valid TOML: {error}", path=path, line=line) from error
    except RecursionError as error:
        raise PolicyError(
            "arrays or inline tables nested too deeply (a policy needs two levels)", path=path
        ) from error
    except (ValueError, MemoryError) as error:
        # Python refuses integers of more than 4,300 digits (sys.get_int_max_str_digits)
        message = str(error)
        if len(message) > 80:
            message = message[:77] + "..."
        raise PolicyError(f"a value cannot be read: {message}", path=path) from error


def _flatten(data: Mapping[str, Any], located: _Located, where: str = "") -> dict[str, object]:
    """The valid keys of one table level (a file, or an [[envs]] entry); problems noted."""
    flat: dict[str, object] = {}
    sections = sorted({name.split(".")[0] for name in KEYS})
    for section, body in data.items():
        if not where and section in TOP_LEVEL:
            continue
        place = f"{where}.{section}" if where else section
        if section not in sections:
            known = sections if where else [*sections, *TOP_LEVEL]
            located.add(
                f"unknown table or key {section!r}{did_you_mean(section, known)}",
                place,
                section,
            )
            continue
        if not isinstance(body, dict):
            located.add(f"expected a table like [{section}]", place, section)
            continue
        for leaf, value in body.items():
            name = f"{section}.{leaf}"
            checked = _validate(name, value, located, f"{place}.{leaf}")
            if checked is not _INVALID:
                flat[name] = checked
    return flat


_INVALID = object()


def _validate(name: str, value: object, located: _Located, where: str) -> object:
    key = KEYS.get(name)
    if key is None:
        section = name.split(".")[0]
        leaves = [k.split(".", 1)[1] for k in KEYS if k.startswith(section + ".")]
        leaf = name.split(".", 1)[1]
        located.add(f"unknown key{did_you_mean(leaf, leaves)}", where, name)
        return _INVALID
    problem = _VALIDATORS[key.kind](key, value)
    if isinstance(problem, _Problem):
        located.add(problem.message, f"{where}.{problem.part}" if problem.part else where, name)
        return _INVALID
    return problem


@frozen
class _Problem:
    message: str
    #: the table entry at fault, for its line
    part: str = ""


def _check_mode(key: Key, value: object) -> object:
    if value not in key.choices:
        shown = repr(value)
        mean = did_you_mean(value, key.choices) if isinstance(value, str) else ""
        return _Problem(f"must be one of {', '.join(key.choices)}, not {shown}{mean}")
    return value


def _check_bool(_key: Key, value: object) -> object:
    if not isinstance(value, bool):
        return _Problem(f"must be true or false, not {value!r}")
    return value


def _check_paths(_key: Key, value: object) -> object:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and os.path.isabs(v) for v in value
    ):
        return _Problem("must be a list of absolute paths")
    return tuple(os.path.normpath(v) for v in value)


def _check_str(key: Key, value: object) -> object:
    if not isinstance(value, str):
        return _Problem(f"must be a string, not {value!r}")
    if key.name == "audit.location" and value not in AUDIT_LOCATIONS and not os.path.isabs(value):
        return _Problem(
            f"must be 'env', 'user' or an absolute path, not {value!r}"
            + did_you_mean(value, AUDIT_LOCATIONS)
        )
    if key.name == "audit.syslog" and value:
        from safe_pip.audit.ship import parse_target

        if parse_target(value) is None:
            return _Problem(
                f"must be 'unix:/path', 'udp:HOST:PORT' or 'tcp:HOST:PORT', not {value!r}"
            )
    if key.name == "conda-store.url" and value and not re.match(r"https?://", value):
        return _Problem(f"must be an http:// or https:// URL, not {value!r}")
    return value


def _check_urls(_key: Key, value: object) -> object:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return _Problem("must be a list of URLs (or absolute paths)")
    bad = [v for v in value if not re.match(r"[a-z][a-z0-9+.-]*://", v) and not os.path.isabs(v)]
    if bad:
        return _Problem(f"not a URL or an absolute path: {bad[0]!r}")
    return tuple(normalize_location(v) for v in value)


def _check_choice_table(key: Key, value: object) -> object:
    if not isinstance(value, dict):
        return _Problem('must be a table like { name = "warn" }')
    names = key.names() if key.names is not None else ()
    for name, setting in value.items():
        if names and name not in names:
            return _Problem(f"unknown name {name!r}{did_you_mean(name, names)}", name)
        if setting not in key.choices:
            mean = did_you_mean(setting, key.choices) if isinstance(setting, str) else ""
            return _Problem(
                f"{name} must be one of {', '.join(key.choices)}, not {setting!r}{mean}", name
            )
    return dict(value)


_NAME_OR_PATTERN = lazy(r"^[A-Za-z0-9*?\[\]!._-]+$")


def _check_reason_table(_key: Key, value: object) -> object:
    if not isinstance(value, dict):
        return _Problem('must be a table like { "name-or-pattern" = "the reason" }')
    for name, reason in value.items():
        if not _NAME_OR_PATTERN.match(name) or len(name) > MAX_PATTERN:
            return _Problem(f"not a project name or glob pattern: {name[:80]!r}", name)
        if not isinstance(reason, str):
            return _Problem(f"the reason for {name!r} must be a string, not {reason!r}", name)
    return {name.lower(): reason for name, reason in value.items()}


def _check_version_table(_key: Key, value: object) -> object:
    from packaging.version import InvalidVersion, Version

    if not isinstance(value, dict):
        return _Problem('must be a table like { urllib3 = "2.2.2" }')
    floors = {}
    for name, version in value.items():
        if not re.match(r"^[A-Za-z0-9._-]+$", name):
            return _Problem(f"not a project name: {name!r}", name)
        if not isinstance(version, str):
            return _Problem(f"the version of {name!r} must be a string, not {version!r}", name)
        try:
            Version(version)
        except InvalidVersion:
            return _Problem(f"not a version: {version!r} (for {name})", name)
        floors[normalize_project(name)] = version
    return floors


_VALIDATORS: dict[str, Callable[[Key, object], object]] = {
    "mode": _check_mode,
    "choice": _check_mode,
    "bool": _check_bool,
    "paths": _check_paths,
    "str": _check_str,
    "urls": _check_urls,
    "choice-table": _check_choice_table,
    "reason-table": _check_reason_table,
    "version-table": _check_version_table,
}


def normalize_project(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalize_location(value: str) -> str:
    """An index or find-links location as compared: no trailing slash, lower-case scheme/host."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://)([^/]*)(.*)$", value, re.IGNORECASE)
    if match is None:
        return os.path.normpath(value) if os.path.isabs(value) else value.rstrip("/")
    host = match[2].rpartition("@")[2].lower()
    return (match[1].lower() + host + match[3]).rstrip("/")


def _read(path: str) -> str | None:
    try:
        raw = read_bytes(path, limit=MAX_POLICY_BYTES)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PolicyError(f"cannot read: {error.strerror}", path=path) from error
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise PolicyError("not UTF-8 text", path=path, line=line) from error


def _check_version(data: Mapping[str, Any], located: _Located) -> None:
    version = data.get("version", 1)
    if version != 1:
        located.add(
            f"unsupported policy version {version!r} (this safe-pip reads version 1)",
            "version",
            "version",
        )


def _env_tables(data: Mapping[str, Any], located: _Located) -> list[EnvEntry]:
    tables = data.get("envs", [])
    if not isinstance(tables, list):
        located.add("expected [[envs]] tables", "envs", "envs")
        return []
    result = []
    for index, table in enumerate(tables):
        where = f"envs[{index}]"
        if not isinstance(table, dict) or not isinstance(table.get("path"), str):
            located.add('each [[envs]] table needs a path = "glob"', where, "envs.path")
            continue
        if len(table["path"]) > MAX_PATTERN:  # fnmatch compiles '[' runs in quadratic time
            located.add(f"a path glob of at most {MAX_PATTERN} characters", where, "envs.path")
            continue
        nested = {k: v for k, v in table.items() if k != "path"}
        values = _flatten(nested, located, where)
        result.append(
            EnvEntry(index + 1, str(table["path"]), located.line(f"{where}.path"), values)
        )
    return result


def _delegated(data: Mapping[str, Any], located: _Located) -> frozenset[str]:
    delegate = data.get("delegate", [])
    if isinstance(delegate, dict):
        delegate = delegate.get("keys", [])
    if not isinstance(delegate, list) or not all(isinstance(k, str) for k in delegate):
        located.add("must be a list of key names", "delegate", "delegate")
        return frozenset()
    good = []
    for name in delegate:
        if name in KEYS:
            good.append(name)
        else:
            located.add(
                f"unknown key {name!r}{did_you_mean(name, list(KEYS))}", "delegate", "delegate"
            )
    return frozenset(good)


@frozen
class FileCheck:
    """What one policy file says, and every problem in it."""

    path: str
    exists: bool
    problems: tuple[PolicyError, ...] = ()
    values: Mapping[str, object] = field(default_factory=dict)
    envs: tuple[EnvEntry, ...] = ()
    delegate: frozenset[str] = frozenset()
    #: key -> line
    lines: Mapping[str, int] = field(default_factory=dict)
    #: top-level sections a per-env file may not hold
    system_only: tuple[str, ...] = ()


def check_file(path: str) -> FileCheck:
    """Read and validate one policy file, collecting every problem."""
    try:
        text = _read(path)
    except PolicyError as error:
        return FileCheck(path, True, (error,))
    if text is None:
        return FileCheck(path, False)
    try:
        data = _load_toml(text, path)
    except PolicyError as error:
        return FileCheck(path, True, (error,))
    located = _Located(path, text)
    _check_version(data, located)
    values = _flatten(data, located)
    delegate = _delegated(data, located)
    envs = _env_tables(data, located)
    lines = {name: line for name in values if (line := located.line(name)) is not None}
    return FileCheck(
        path,
        True,
        located.listed(),
        values,
        tuple(envs),
        delegate,
        lines,
        tuple(s for s in SYSTEM_ONLY if s in data),
    )


def _first_problem(check: FileCheck) -> None:
    if check.problems:
        raise check.problems[0]


def load_policy(  # noqa: C901 - the layering in one place: system file, [[envs]], env file
    prefix: str | None, *, system_path: str = SYSTEM_POLICY
) -> Policy:
    """The policy in force for ``prefix``; raises PolicyError for an unreadable/invalid file."""
    values: dict[str, object] = {name: key.default for name, key in KEYS.items()}
    origins: dict[str, str] = {}
    files: list[str] = []
    notes: list[str] = []
    matched: list[str] = []
    delegate: frozenset[str] = frozenset()

    system = check_file(system_path)
    _first_problem(system)
    if system.exists:
        files.append(system_path)
        values.update(system.values)
        origins.update({k: f"{system_path}:{system.lines.get(k, '?')}" for k in system.values})
        delegate = system.delegate
        if prefix is not None:
            for entry in system.envs:
                if entry.matches(prefix):
                    values.update(entry.values)
                    where = f"{system_path}:{entry.line or '?'} {entry.label()}"
                    origins.update({k: where for k in entry.values})
                    matched.append(entry.label())

    if prefix is not None:
        env_path = os.path.join(prefix, ENV_POLICY)
        own = check_file(env_path)
        _first_problem(own)
        if own.exists:
            files.append(env_path)
            for section in own.system_only:
                notes.append(f"{env_path}: {section!r} is read only from the system file")
            for name, value in own.values.items():
                key = KEYS[name]
                if key.kind.endswith("-table"):
                    # a table adds to (or overrides entries of) the system's
                    before = values[name]
                    assert isinstance(value, Mapping) and isinstance(before, Mapping)
                    value = {**before, **value}
                if key.stricter(values[name], value) or name in delegate:
                    values[name] = value
                    origins[name] = f"{env_path}:{own.lines.get(name, '?')}"
                else:
                    notes.append(
                        f"{env_path}: {name} = {value!r} would loosen the system policy "
                        f"({values[name]!r}) and is ignored; the admin can delegate it"
                    )
    return Policy(
        values=values,
        files=tuple(files),
        delegate=delegate,
        notes=tuple(notes),
        origins=origins,
        matched=tuple(matched),
    )


def contact_line(system_path: str = SYSTEM_POLICY) -> str:
    """``messages.contact`` of the system file even when the file is otherwise invalid."""
    try:
        text = _read(system_path)
    except PolicyError:
        return ""
    if text is None:
        return ""
    try:
        data = _load_toml(text, system_path)
    except PolicyError:
        # not TOML any more: the line as written, if it can be found
        found = re.search(r"^\s*contact\s*=\s*\"([^\"\n]*)\"", text, re.MULTILINE)
        return found.group(1) if found else ""
    messages = data.get("messages")
    contact = messages.get("contact") if isinstance(messages, dict) else None
    return contact if isinstance(contact, str) else ""


def tell_the_admin(system_path: str = SYSTEM_POLICY, entry: str = "safe-pip") -> str:
    """What a user who meets an invalid policy should do: ask the admin, never edit the file.

    ``entry``: how the user runs safe-pip's own commands (``door``).
    """
    contact = contact_line(system_path)
    where = f" ({contact})" if contact else ""
    return (
        f"the policy is the hub admin's to fix: tell them{where} what this message says; "
        f"read-only commands (pip list, pip show, {entry} status) still work"
    )
