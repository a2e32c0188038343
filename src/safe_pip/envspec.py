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
from typing import Any, NamedTuple

from safe_pip import __version__
from safe_pip.conda_history import canonical_channels, read_history
from safe_pip.conda_records import read_records
from safe_pip.drift import BOOTSTRAP_DISTS
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
from safe_pip.inventory import Installed
from safe_pip.values import replace

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


def _drift_notes(env: Environment, pip: PipSection) -> Iterator[str]:
    """Where the site-packages disagree with the log (changes made around safe-pip)."""
    from safe_pip.inventory import scan

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


def _expressed(item: Installed, direct: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(the requirement that reinstalls it, or None; why not) for an installed distribution."""
    if not item.version:
        return None, f"{item.name}: its version is unknown"
    if direct is not None:
        url = str(direct.get("url") or "")
        dir_info = direct.get("dir_info")
        if isinstance(dir_info, Mapping) and dir_info.get("editable"):
            return None, f"{item.name} {item.version} is an editable install of {url}"
        if url.startswith("file:"):
            return None, f"{item.name} {item.version} was installed from the local {url}"
        vcs = direct.get("vcs_info")
        if isinstance(vcs, Mapping) and vcs.get("vcs") and url:
            commit = f"@{vcs['commit_id']}" if vcs.get("commit_id") else ""
            return f"{item.key} @ {vcs['vcs']}+{requirement_without_credentials(url)}{commit}", ""
        if url:
            return f"{item.key} @ {requirement_without_credentials(url)}", ""
    return f"{item.key}=={item.version}", ""


def _with_installed(
    env: Environment, pip: PipSection, conda_dists: set[str]
) -> tuple[PipSection, list[str]]:
    """The pip part with every distribution really in the env that neither conda nor the
    log accounts for: the baseline's and those installed around safe-pip, pinned; what a
    spec cannot express, as a comment.  Returns it and the notes for the terminal."""
    from safe_pip.baseline import read_baseline
    from safe_pip.inventory import details, scan

    installed = scan([env.purelib, env.platlib])
    baseline = read_baseline(env.prefix)
    logged = {p.key for p in pip.packages}
    added: list[PipPackage] = []
    kinds: dict[str, list[str]] = {"baseline": [], "unlogged": [], "inexpressible": []}
    for key, item in sorted(installed.items()):
        if key in logged or key in conda_dists or key == "pip":
            continue  # pip comes with the interpreter, and is in the conda part
        if not env.is_conda and key in BOOTSTRAP_DISTS:
            continue  # what venv/ensurepip put there
        info = details(item)
        if info.installer.lower() == "conda":
            continue
        requirement, why = _expressed(item, info.direct_url)
        shown = f"{item.name} {item.version}".strip()
        if requirement is None:
            kinds["inexpressible"].append(shown)
            note = f"not in this spec: {why}; a spec cannot rebuild it (install it again after)"
        elif baseline.explains(key, item.version):
            kinds["baseline"].append(shown)
            note = "in the env's baseline (there when safe-pip protect recorded it)"
        else:
            kinds["unlogged"].append(shown)
            note = "installed around safe-pip (not in its audit log); pinned as installed"
        added.append(PipPackage(key, item.name, item.version, "installed", requirement, note))
    notes = []
    if kinds["baseline"]:
        notes.append("pinned from the env's baseline: " + _short_list(kinds["baseline"]))
    if kinds["unlogged"]:
        notes.append(
            "installed by pip but not in the audit log (before safe-pip, or around it), "
            "pinned as installed: " + _short_list(kinds["unlogged"])
        )
    if kinds["inexpressible"]:
        notes.append(
            "in the env but not expressible in a spec (written as comments in the file): "
            + _short_list(kinds["inexpressible"])
        )
    return replace(pip, packages=(*pip.packages, *added)), notes


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
    from_records = False
    channels: list[str] = []
    conda_dists: set[str] = set()
    if has_conda_meta:
        history = read_history(env.prefix)
        problems.extend(history.problems)
        names = [record.name for record in records_set.records]
        conda_specs = history.export_specs(names)
        from_records = not conda_specs
        if from_records:  # py-rattler and pixi leave the history empty: the records keep them
            conda_specs = records_set.requested_specs()
        channels = canonical_channels(records_set.channels() or history.channels())
        conda_dists = _conda_dist_keys(
            [path for record in records_set.records for path in record.dist_infos]
        )

    audit_records, audit_problems = read_audit_records(env, environ)
    problems.extend(audit_problems)
    pip = pip_requirements(audit_records)
    problems.extend(pip.problems)
    stale = list(_drift_notes(env, pip))
    pip, kept = _with_installed(env, pip, conda_dists)
    if extra_requirements:
        # the request is the user's command line: tokens in its URLs stay out of the spec
        cleaned = [requirement_without_credentials(r) for r in extra_requirements]
        pip = _with_requests(pip, cleaned, credentials_removed=cleaned != list(extra_requirements))
        extra_requirements = cleaned

    notes = [*problems, *stale, *kept]

    now = _clock().isoformat().replace("+00:00", "Z")
    header = [
        f"written by safe-pip {__version__} export at {now}",
        f"from the env {env.prefix} ({env.kind}, Python {env.version})",
    ]
    if extra_requirements:
        header.append("with the requested packages added: " + " ".join(extra_requirements))
    if fmt == "requirements":
        header.append(
            "the pip part: the net effect of safe-pip's audit log, and what else pip left "
            "in the env, pinned as installed"
        )
        return Rendered(requirements_txt(pip, header_comments=header), tuple(notes))
    if has_conda_meta:
        header.append(
            "conda part: the specs asked for, from the records' requested_specs "
            "(conda-meta/history names none)"
            if from_records
            else "conda part: the specs asked for in conda-meta/history "
            "(as `conda env export --from-history` lists them)"
        )
        deps = conda_dependencies(conda_specs, pip)
    else:
        header.append(
            f"this env has no conda-meta: python={env.short_version} stands for its "
            "interpreter, the rest is what safe-pip installed with pip"
        )
        deps = conda_dependencies([], pip, python_version=env.short_version)
    header.append(
        "pip part: the net effect of safe-pip's audit log, and what else pip left in the "
        "env, pinned as installed"
    )
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
