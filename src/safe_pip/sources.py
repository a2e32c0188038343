"""Where packages come from and which may come: the index allowlist, the deny list, floors.

- ``source_uses`` lists every index URL and find-links location a command
  would read, with where it was set: argv, a ``PIP_*`` variable, a pip config
  file (pip's own combination, see ``pipcli``), or a requirement file (its
  option lines, also in nested ``-r``/``-c`` files);
  ``source_refusal`` checks them against ``sources.allowed-indexes`` and
  ``sources.allowed-find-links`` (pure).
- ``plan_refusal`` checks what pip is about to install (its report, so
  dependencies count) against ``packages.deny`` and
  ``packages.minimum-versions`` (pure).
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from safe_pip import rules
from safe_pip.pipcli import Operation, read_requirement_file
from safe_pip.policy import Policy, normalize_location, normalize_project
from safe_pip.values import frozen

#: the allowlist entry for pip's built-in default index (used when no index URL is set)
DEFAULT_INDEX = "default"
_MAX_FILES = 64


@frozen
class SourceUse:
    kind: str  # "index", "find-links", or "unchecked" (a requirements file not readable)
    location: str
    where: str


def _redacted(url: str) -> str:
    from safe_pip.audit.redact import redact_text

    return redact_text(url)


def option_uses(op: Operation) -> list[SourceUse]:
    """Index URLs and find-links locations from argv, variables and config files."""
    uses: list[SourceUse] = []
    if op.no_index:
        index_urls: tuple[str, ...] = ()
    else:
        index = op.settings.get("index_url")
        if index is not None and isinstance(index.value, str):
            uses.append(SourceUse("index", index.value, index.source))
        else:
            uses.append(SourceUse("index", DEFAULT_INDEX, "no index URL is set"))
        index_urls = op.extra_index_urls
    extra = op.settings.get("extra_index_urls")
    uses.extend(SourceUse("index", url, extra.source if extra else "") for url in index_urls)
    links = op.settings.get("find_links")
    uses.extend(
        SourceUse("find-links", loc, links.source if links else "") for loc in op.find_links
    )
    return uses


_FILE_OPTIONS = {
    "-i": "index",
    "--index-url": "index",
    "--extra-index-url": "index",
    "-f": "find-links",
    "--find-links": "find-links",
}
_NESTED = ("-r", "--requirement", "-c", "--constraint")


def requirement_file_uses(op: Operation) -> list[SourceUse]:
    """Index options in the operation's requirement files (and the files they name)."""
    uses: list[SourceUse] = []
    pending = [*op.requirement_files, *op.constraint_files]
    seen: set[str] = set()
    while pending and len(seen) < _MAX_FILES:
        path = pending.pop(0)
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        text = read_requirement_file(path)
        if text is None:
            if os.path.exists(path):
                # a pipe or /dev/stdin: pip reads it, safe-pip cannot without taking it
                uses.append(SourceUse("unchecked", path, path))
            continue
        for number, line in enumerate(text.replace("\\\n", " ").splitlines(), 1):
            words = _words(line)
            for position, word in enumerate(words):
                option, value = _option_value(word, words, position)
                if option in _FILE_OPTIONS and value:
                    uses.append(
                        SourceUse(_FILE_OPTIONS[option], value, f"{path}:{number} {option}")
                    )
                elif option in _NESTED and value:
                    pending.append(os.path.join(os.path.dirname(path), value))
    return uses


def _words(line: str) -> list[str]:
    line = line.split(" #", 1)[0]
    if line.lstrip().startswith("#"):
        return []
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _option_value(word: str, words: list[str], position: int) -> tuple[str, str]:
    if "=" in word and word.startswith("--"):
        option, _, value = word.partition("=")
        return option, value
    options = (*_FILE_OPTIONS, *_NESTED)
    if word in options:
        following = words[position + 1] if position + 1 < len(words) else ""
        return word, following
    for short in ("-i", "-f", "-r", "-c"):
        if word.startswith(short) and len(word) > 2 and not word.startswith("--"):
            return short, word[2:]
    return "", ""


def _allowed(location: str, allowed: Iterable[str]) -> bool:
    if location == DEFAULT_INDEX:
        return DEFAULT_INDEX in allowed
    value = normalize_location(location)
    for entry in allowed:
        if entry == DEFAULT_INDEX:
            continue
        if value == entry or value.startswith(entry.rstrip("/") + "/"):
            return True
    return False


def source_refusal(uses: Iterable[SourceUse], policy: Policy) -> tuple[str, str] | None:
    """(reason, hint) when a location is not on the allowlist of its kind; else None."""
    for use in uses:
        if use.kind == "unchecked":
            if policy.paths("sources.allowed-indexes") or policy.paths(
                "sources.allowed-find-links"
            ):
                return (
                    f"the requirements file {use.location} is not a regular file, so safe-pip "
                    "cannot read the index options it may hold, and the policy limits where "
                    "packages come from",
                    "save it to a file first and pass that with -r",
                )
            continue
        key = "sources.allowed-indexes" if use.kind == "index" else "sources.allowed-find-links"
        allowed = policy.paths(key)
        if not allowed or _allowed(use.location, allowed):
            continue
        listed = ", ".join(allowed)
        shown = "pip's default index" if use.location == DEFAULT_INDEX else _redacted(use.location)
        what = "package index" if use.kind == "index" else "find-links location"
        where = _redacted(use.where)
        return (
            f"the {what} {shown} ({where}) is not one the policy allows ({key}: {listed})",
            f"use an allowed {what} (for example --index-url {allowed[0]})"
            if use.kind == "index" and allowed[0] != DEFAULT_INDEX
            else f"use an allowed {what} ({listed}), or ask the admin to add this one",
        )
    return None


@frozen
class Planned:
    name: str
    version: str
    requested: bool


def planned_items(report: Mapping[str, Any]) -> list[Planned]:
    """What pip's report says it is about to install."""
    from safe_pip.changes import planned_installs

    return [
        Planned(
            str(item["metadata"]["name"]),
            str(item["metadata"].get("version", "")),
            bool(item.get("requested")),
        )
        for item in planned_installs(report).values()
    ]


def _denied_by(name: str, deny: Mapping[str, str]) -> tuple[str, str] | None:
    key = normalize_project(name)
    for pattern, reason in deny.items():
        if fnmatch.fnmatchcase(key, normalize_project(pattern)) or fnmatch.fnmatchcase(
            name.lower(), pattern
        ):
            return pattern, reason
    return None


def typed_refusal(op: Operation, policy: Policy) -> tuple[str, str] | None:
    """(reason, hint) when the command names a denied project itself: refused before pip
    downloads or builds anything (an sdist's build runs its code)."""
    from safe_pip.audit.record import requirement_name

    deny = policy.table("packages.deny")
    if not deny or op.command != "install":
        return None
    for argument in op.args:
        name = requirement_name(argument)
        found = _denied_by(name, deny) if name else None
        if found is not None:
            pattern, reason = found
            return (
                f"{name} is denied by the policy ('{pattern}'): {reason or 'no reason given'}",
                "install something else, or ask the admin about it",
            )
    return None


def plan_refusal(planned: Iterable[Planned], policy: Policy) -> tuple[str, str, str] | None:
    """(rule, reason, hint) when pip's plan holds a denied project or one below its floor."""
    from packaging.version import InvalidVersion, Version

    deny = policy.table("packages.deny")
    floors = policy.table("packages.minimum-versions")
    for item in planned:
        how = "you asked for it" if item.requested else "a dependency pip pulled in"
        found = _denied_by(item.name, deny)
        if found is not None:
            pattern, reason = found
            rule_name = f"'{pattern}'" if pattern != normalize_project(item.name) else "by name"
            return (
                rules.PACKAGE_DENIED,
                f"{item.name} {item.version} ({how}) is denied by the policy ({rule_name}): "
                f"{reason or 'no reason given'}",
                "install something else, or ask the admin about it"
                + ("" if item.requested else " (the package that pulls it in needs it)"),
            )
        floor = floors.get(normalize_project(item.name))
        if floor is None:
            continue
        try:
            low = Version(item.version) < Version(floor)
        except InvalidVersion:
            low = True
        if low:
            return (
                rules.VERSION_FLOOR,
                f"{item.name} {item.version} ({how}) is below the lowest version the policy "
                f"allows, {floor}",
                f"ask for a newer one: pip install '{item.name}>={floor}' "
                "(with the rest of your command)",
            )
    return None


def checks_plan(policy: Policy) -> bool:
    return bool(policy.table("packages.deny") or policy.table("packages.minimum-versions"))
