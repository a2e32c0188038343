"""The policy: built-in hub defaults, the admin's system file, and per-env files.

Layers, in order: the built-in defaults; ``/etc/safe-pip/policy.toml`` (the
admin's); its ``[[envs]]`` tables whose ``path`` matches the target prefix;
then ``<prefix>/etc/safe-pip/policy.toml``.  An env file may tighten any key
but loosen only the keys the system file lists under ``delegate``.  Nothing a
user controls (variables, user files, flags) is read here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from safe_pip.errors import PolicyError

SYSTEM_POLICY = "/etc/safe-pip/policy.toml"
ENV_POLICY = os.path.join("etc", "safe-pip", "policy.toml")

MODES = ("allow", "dev-only", "deny")
KINDS = ("conda-env", "conda-base", "venv", "system", "other")
AUDIT_LOCATIONS = ("env", "user")

DEFAULT_MARKER_MESSAGE = (
    "This environment is managed: install packages with `pip` (safe-pip), "
    "which checks them against the hub's policy and records them, or change "
    "the environment's spec (environment.yml) and rebuild it."
)


def _mode_rank(value: object) -> int:
    return MODES.index(str(value))


def _stricter_bool_true(old: object, new: object) -> bool:
    return bool(new) or not bool(old)


def _stricter_bool_false(old: object, new: object) -> bool:
    return not bool(new) or bool(old)


def _stricter_mode(old: object, new: object) -> bool:
    return _mode_rank(new) >= _mode_rank(old)


def _stricter_subset(old: object, new: object) -> bool:
    assert isinstance(old, (list, tuple)) and isinstance(new, (list, tuple))
    return set(new) <= set(old)


def _never(old: object, new: object) -> bool:
    return old == new


@dataclass(frozen=True)
class Key:
    name: str
    kind: str  # "mode", "bool", "str", "paths", "str-choice"
    default: object
    #: True when ``new`` is at least as strict as ``old``
    stricter: Callable[[object, object], bool]
    doc: str
    choices: tuple[str, ...] = ()


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
            "marker.message",
            "str",
            DEFAULT_MARKER_MESSAGE,
            _never,
            "the text `safe-pip protect` writes into EXTERNALLY-MANAGED",
        ),
        Key(
            "messages.contact",
            "str",
            "",
            _never,
            "a line added to every denial, e.g. where to ask for help",
        ),
        Key(
            "conda-store.url",
            "str",
            "",
            _never,
            "the hub's conda-store URL, named in the next step of a read-only env denial",
        ),
    )
}

SYSTEM_ONLY = ("delegate", "envs")


@dataclass(frozen=True)
class Policy:
    values: Mapping[str, object]
    files: tuple[str, ...] = ()
    delegate: frozenset[str] = frozenset()
    #: loosening attempts that were ignored, for `status`
    notes: tuple[str, ...] = ()

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


def default_policy() -> Policy:
    return Policy(values={name: key.default for name, key in KEYS.items()})


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


def _line_of(text: str, key: str) -> int | None:
    leaf = key.rsplit(".", 1)[-1]
    pattern = re.compile(rf"^\s*[\"']?{re.escape(leaf)}[\"']?\s*=", re.MULTILINE)
    match = pattern.search(text)
    if match is None:
        return None
    return text.count("\n", 0, match.start()) + 1


def _flatten(data: Mapping[str, Any], path: str, text: str) -> dict[str, object]:
    flat: dict[str, object] = {}
    for section, body in data.items():
        if section in SYSTEM_ONLY or section == "version":
            continue
        if not isinstance(body, dict):
            raise PolicyError(
                "expected a table like [install]",
                path=path,
                line=_line_of(text, section),
                key=section,
            )
        for leaf, value in body.items():
            name = f"{section}.{leaf}"
            flat[name] = _validate(name, value, path, text)
    return flat


def _validate(name: str, value: object, path: str, text: str) -> object:
    key = KEYS.get(name)
    line = _line_of(text, name)
    if key is None:
        raise PolicyError(
            "unknown key", path=path, line=line, key=name, hint="see docs/policy.md for the keys"
        )
    if key.kind == "mode":
        if value not in MODES:
            raise PolicyError(
                f"must be one of {', '.join(MODES)}, not {value!r}", path=path, line=line, key=name
            )
        return value
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(
                f"must be true or false, not {value!r}", path=path, line=line, key=name
            )
        return value
    if key.kind == "paths":
        if not isinstance(value, list) or not all(
            isinstance(v, str) and os.path.isabs(v) for v in value
        ):
            raise PolicyError("must be a list of absolute paths", path=path, line=line, key=name)
        return tuple(os.path.normpath(v) for v in value)
    if not isinstance(value, str):
        raise PolicyError(f"must be a string, not {value!r}", path=path, line=line, key=name)
    if name == "audit.location" and value not in AUDIT_LOCATIONS and not os.path.isabs(value):
        raise PolicyError(
            "must be 'env', 'user' or an absolute path", path=path, line=line, key=name
        )
    return value


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PolicyError(f"cannot read: {error.strerror}", path=path) from error
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise PolicyError("not UTF-8 text", path=path, line=line) from error


def _check_version(data: Mapping[str, Any], path: str, text: str) -> None:
    version = data.get("version", 1)
    if version != 1:
        raise PolicyError(
            f"unsupported policy version {version!r} (this safe-pip reads version 1)",
            path=path,
            line=_line_of(text, "version"),
            key="version",
        )


def _env_tables(
    data: Mapping[str, Any], path: str, text: str
) -> list[tuple[str, dict[str, object]]]:
    tables = data.get("envs", [])
    if not isinstance(tables, list):
        raise PolicyError(
            "expected [[envs]] tables", path=path, line=_line_of(text, "envs"), key="envs"
        )
    result = []
    for table in tables:
        if not isinstance(table, dict) or not isinstance(table.get("path"), str):
            raise PolicyError(
                'each [[envs]] table needs a path = "glob"',
                path=path,
                line=_line_of(text, "envs"),
                key="envs.path",
            )
        nested = {k: v for k, v in table.items() if k != "path"}
        result.append((str(table["path"]), _flatten(nested, path, text)))
    return result


def _delegated(data: Mapping[str, Any], path: str, text: str) -> frozenset[str]:
    delegate = data.get("delegate", [])
    if isinstance(delegate, dict):
        delegate = delegate.get("keys", [])
    if not isinstance(delegate, list) or not all(isinstance(k, str) for k in delegate):
        raise PolicyError(
            "must be a list of key names",
            path=path,
            line=_line_of(text, "delegate"),
            key="delegate",
        )
    unknown = [k for k in delegate if k not in KEYS]
    if unknown:
        raise PolicyError(
            f"unknown key {unknown[0]!r}",
            path=path,
            line=_line_of(text, unknown[0]),
            key="delegate",
        )
    return frozenset(delegate)


def load_policy(prefix: str | None, *, system_path: str = SYSTEM_POLICY) -> Policy:
    """The policy in force for ``prefix``; raises PolicyError for an unreadable/invalid file."""
    values: dict[str, object] = {name: key.default for name, key in KEYS.items()}
    files: list[str] = []
    notes: list[str] = []
    delegate: frozenset[str] = frozenset()

    text = _read(system_path)
    if text is not None:
        files.append(system_path)
        data = _load_toml(text, system_path)
        _check_version(data, system_path, text)
        values.update(_flatten(data, system_path, text))
        delegate = _delegated(data, system_path, text)
        if prefix is not None:
            real = os.path.realpath(prefix)
            for pattern, table in _env_tables(data, system_path, text):
                if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(real, pattern):
                    values.update(table)

    if prefix is not None:
        env_path = os.path.join(prefix, ENV_POLICY)
        text = _read(env_path)
        if text is not None:
            files.append(env_path)
            data = _load_toml(text, env_path)
            _check_version(data, env_path, text)
            for section in SYSTEM_ONLY:
                if section in data:
                    notes.append(f"{env_path}: {section!r} is read only from the system file")
            for name, value in _flatten(data, env_path, text).items():
                key = KEYS[name]
                if key.stricter(values[name], value) or name in delegate:
                    values[name] = value
                else:
                    notes.append(
                        f"{env_path}: {name} = {value!r} would loosen the system policy "
                        f"({values[name]!r}) and is ignored; the admin can delegate it"
                    )
    return Policy(values=values, files=tuple(files), delegate=delegate, notes=tuple(notes))
