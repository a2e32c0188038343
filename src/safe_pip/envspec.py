"""The spec that rebuilds an env: gathered from the env, rendered by ``export``.

The conda part comes from ``conda-meta/history`` (what the users asked conda
for, as ``conda env export --from-history`` lists it), the pip part from the
audit log (what pip really changed, replayed); ``safe_pip.export`` renders
both.  Problems in the files read, and where the site-packages disagree with
the log, come back as notes, never as a failure.  Used by ``safe-pip export``
and by the read-only request (``nextstep``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from safe_pip import __version__
from safe_pip.conda_history import canonical_channels, read_history
from safe_pip.conda_records import read_records
from safe_pip.environment import Environment
from safe_pip.export import (
    PipPackage,
    PipSection,
    conda_dependencies,
    environment_name,
    environment_yml,
    pip_requirements,
    requirement_without_credentials,
    requirements_txt,
)

_MAX_NOTES = 20


class Rendered(NamedTuple):
    """The export text, and the notes for the user (problems met, drift)."""

    text: str
    notes: tuple[str, ...] = ()


def read_audit_records(
    env: Environment, environ: Mapping[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of every log the env's records may be in, that decide its pip state.

    Oldest first (merged by time), with the problems met.  Each file is read
    through ``audit.reader.read_deciding``: only lines that can still change the
    result are parsed.
    """
    from safe_pip.audit.locations import log_locations
    from safe_pip.audit.reader import read_deciding
    from safe_pip.errors import PolicyError
    from safe_pip.policy import load_policy

    problems: list[str] = []
    try:
        policy = load_policy(env.prefix)
    except PolicyError as error:
        policy = None
        problems.append(f"the policy cannot be read ({error.message}); reading the default logs")
    found = read_deciding(log_locations(env, policy, environ))
    problems.extend(found.unreadable.values())
    for path, damaged in found.damaged.items():
        shown = ", ".join(str(n) for n in damaged[:10])
        more = f" and {len(damaged) - 10} more" if len(damaged) > 10 else ""
        problems.append(f"{path}: damaged lines skipped: {shown}{more}")
    return found.records, problems


def _clock() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _drift_notes(env: Environment, pip: PipSection, conda_dists: set[str]) -> Iterator[str]:
    """Where the site-packages disagree with the log (changes made around safe-pip)."""
    from safe_pip.inventory import details, scan

    installed = scan([env.purelib, env.platlib])
    stale = [
        f"{p.name} {p.version}"
        + (f" (the env has {installed[p.key].version})" if p.key in installed else "")
        for p in pip.packages
        if p.key not in installed or installed[p.key].version != p.version
    ]
    if stale:
        yield (
            "in the audit log but not installed as logged (changed outside safe-pip?): "
            + _short_list(stale)
        )
    logged = {p.key for p in pip.packages}
    unlogged = [
        f"{item.name} {item.version}"
        for key, item in sorted(installed.items())
        if key not in logged
        and key not in conda_dists
        and key != "pip"  # comes with the interpreter, and is in the conda part
        and details(item).installer.lower() not in ("conda", "")
    ]
    if unlogged:
        yield (
            "installed by pip but not in the audit log, so not exported "
            "(installed before safe-pip, or around it): " + _short_list(unlogged)
        )


def _short_list(items: Sequence[str]) -> str:
    text = ", ".join(items[:_MAX_NOTES])
    if len(items) > _MAX_NOTES:
        text += f" and {len(items) - _MAX_NOTES} more"
    return text


def _conda_dist_keys(dist_infos: Sequence[str]) -> set[str]:
    """Normalised names of the ``name-version.dist-info``/``.egg-info`` paths given."""
    from safe_pip.environment import normalize_name

    keys = set()
    for path in dist_infos:
        base = path.rpartition("/")[2]
        keys.add(normalize_name(base.rsplit(".", 1)[0].partition("-")[0]))
    return keys


def render(
    env: Environment,
    environ: Mapping[str, str],
    *,
    fmt: str = "environment.yml",
    name: str | None = None,
    extra_requirements: Sequence[str] = (),
) -> Rendered:
    """The export text and its notes; ``extra_requirements`` are added to the pip part."""
    problems: list[str] = []
    records_set = read_records(env.prefix)
    problems.extend(records_set.problems)
    has_conda_meta = os.path.isdir(os.path.join(env.prefix, "conda-meta"))
    conda_specs: list[str] = []
    channels: list[str] = []
    conda_dists: set[str] = set()
    if has_conda_meta:
        history = read_history(env.prefix)
        problems.extend(history.problems)
        names = [record.name for record in records_set.records]
        conda_specs = history.export_specs(names)
        channels = canonical_channels(records_set.channels() or history.channels())
        conda_dists = _conda_dist_keys(
            [path for record in records_set.records for path in record.dist_infos]
        )

    audit_records, audit_problems = read_audit_records(env, environ)
    problems.extend(audit_problems)
    pip = pip_requirements(audit_records)
    problems.extend(pip.problems)
    if extra_requirements:
        # the request is the user's command line: tokens in its URLs stay out of the spec
        cleaned = [requirement_without_credentials(r) for r in extra_requirements]
        pip = _with_requests(pip, cleaned, credentials_removed=cleaned != list(extra_requirements))
        extra_requirements = cleaned

    notes = [*problems, *_drift_notes(env, pip, conda_dists)]

    now = _clock().isoformat().replace("+00:00", "Z")
    header = [
        f"written by safe-pip {__version__} export at {now}",
        f"from the env {env.prefix} ({env.kind}, Python {env.version})",
    ]
    if extra_requirements:
        header.append("with the requested packages added: " + " ".join(extra_requirements))
    if fmt == "requirements":
        header.append("the pip part: the net effect of safe-pip's audit log")
        return Rendered(requirements_txt(pip, header_comments=header), tuple(notes))
    if has_conda_meta:
        header.append(
            "conda part: the specs asked for in conda-meta/history "
            "(as `conda env export --from-history` lists them)"
        )
        deps = conda_dependencies(conda_specs, pip)
    else:
        header.append(
            f"this env has no conda-meta: python={env.short_version} stands for its "
            "interpreter, the rest is what safe-pip installed with pip"
        )
        deps = conda_dependencies([], pip, python_version=env.short_version)
    header.append("pip part: the net effect of safe-pip's audit log")
    text = environment_yml(
        name or environment_name(env.name), channels, deps, pip, header_comments=header
    )
    if pip.options:
        notes.append(
            "the pip list names index options; conda-store accepts them, but its "
            "conda-lock build step cannot read them yet (conda-store issue #1058)"
        )
    return Rendered(text, tuple(notes))


def _with_requests(
    pip: PipSection, requirements: Sequence[str], *, credentials_removed: bool = False
) -> PipSection:
    """The pip part with the user's requested requirements added (replacing same names)."""
    from safe_pip.environment import normalize_name

    added = []
    for requirement in requirements:
        head = requirement.split(";", 1)[0].strip()
        name = ""
        for char in head:
            if char.isalnum() or char in "-_.":
                name += char
            else:
                break
        if head[len(name) :].startswith(("+", ":")):
            name = ""  # a bare URL (git+https://..., https://...): it names no project
        key = normalize_name(name) if name else requirement
        added.append(PipPackage(key, name or requirement, "", "requested", requirement))
    keys = {p.key for p in added}
    kept = [p for p in pip.packages if p.key not in keys]
    comments = pip.comments
    if credentials_removed:
        comments = (
            *comments,
            "credentials were removed from the requested URLs: give them at build time "
            "(pip's keyring support, netrc), never in the spec",
        )
    return replace(pip, packages=tuple([*kept, *added]), comments=comments)
