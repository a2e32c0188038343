"""What ``safe-pip export`` writes: an environment.yml (or requirements) that rebuilds an env.

Pure functions only; ``commands/export.py`` gathers the inputs.

* ``pip_requirements(records)`` replays the audit log's ``changes`` (what pip
  really did on disk) in order (``audit.replay``) and returns the net pip state as a
  ``PipSection``: pinned PEP 508 requirements, index options, and comments for
  what cannot be rebuilt elsewhere (editable dev installs, ``--find-links``
  dirs, entries that would not pass a PEP 508 parser).
* ``environment_yml(...)`` and ``requirements_txt(...)`` render it.  The YAML
  is written by hand (a small, fixed shape) and follows both readers of the
  file: conda's (``conda/env/env.py``: ``dependencies`` required, strings
  there must be MatchSpecs, the pip list is a ``{pip: [...]}`` entry) and
  conda-store's (``conda_store_server/_internal/schema.py``:
  ``CondaSpecification`` with a ``name`` of ``[A-Za-z0-9-+_@$&?^~.=]+``, no
  ``null`` values, and a pip list where each item is a PEP 508 requirement or
  one of ``--index-url``/``--extra-index-url``/``--trusted-host``).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from safe_pip.audit.replay import replay
from safe_pip.values import frozen, replace

__all__ = [
    "CONDA_STORE_NAME_RE",
    "PYPI_INDEX",
    "PipPackage",
    "PipSection",
    "conda_dependencies",
    "environment_name",
    "environment_yml",
    "pip_requirements",
    "requirement_without_credentials",
    "requirements_txt",
    "strip_credentials",
    "yaml_scalar",
]

#: pip's default index; an ``index_url`` of None means this one.
PYPI_INDEX = "https://pypi.org/simple"

#: conda-store's rule for ``name`` (``ALLOWED_CHARACTERS`` in its schema.py).
CONDA_STORE_NAME_RE = re.compile(r"[A-Za-z0-9\-+_@$&?^~.=]+\Z")
#: names ``conda env create -n`` refuses (conda/base/constants.py RESERVED_ENV_NAMES).
CONDA_RESERVED_NAMES = frozenset({"base", "root"})

#: query keys that carry secrets (tokens, pre-signed signatures); dropped from URLs.
_SECRET_QUERY_RE = re.compile(
    r"(?:.*token.*|.*secret.*|.*passw(?:or)?d.*|pwd|auth.*|.*api[-_]?key.*|key|"
    r"sig|signature|credential.*|x-amz-.*|x-goog-.*)\Z",
    re.IGNORECASE,
)
#: a URL inside a requirement line: up to whitespace or a marker's ``;``
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s;]+")
_SSH_SCHEMES = frozenset({"ssh", "git+ssh", "hg+ssh", "svn+ssh", "bzr+ssh"})
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
#: PEP 440's canonical public version (appendix B), plus a local label: valid without parsing
_CANONICAL_VERSION_RE = re.compile(
    r"([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?"
    r"(\.post(0|[1-9][0-9]*))?(\.dev(0|[1-9][0-9]*))?(\+[a-z0-9]+(\.[a-z0-9]+)*)?\Z"
)
_PEP508_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_PLAIN_YAML_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-=<>!~*,/]*\Z")
_YAML_SPECIAL_WORDS = frozenset(
    {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan", "inf"}
)
#: characters YAML readers take as line breaks or refuse unescaped (C0, DEL, C1, ...)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
#: lone surrogates (from JSON ``\udXXX`` escapes) cannot be written as UTF-8
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
#: userinfo made only of ``${VAR}`` references: pip expands them from the environment
_ENV_REFERENCE_RE = re.compile(r"\$\{[A-Za-z0-9_]+\}(?::\$\{[A-Za-z0-9_]+\})?\Z")


@frozen
class PipPackage:
    """One distribution of the net pip state.

    ``requirement`` is the line for the ``pip:`` list (None when it cannot be
    rebuilt elsewhere, e.g. an editable install); ``note`` is a comment put
    before it (or in its place).
    """

    key: str
    name: str
    version: str
    kind: str
    requirement: str | None
    note: str = ""


@frozen
class PipSection:
    """The pip part of an export: index options, packages, and notes.

    ``options`` are pip option lines (``--index-url URL``); ``comments`` are
    notes about the whole section (find-links, removed credentials);
    ``problems`` are what could not be read in the log, for stderr.
    """

    options: tuple[str, ...] = ()
    packages: tuple[PipPackage, ...] = ()
    comments: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        """The items of the ``pip:`` list (and of requirements.txt), without comments."""
        return [*self.options, *(p.requirement for p in self.packages if p.requirement)]

    @property
    def requirements(self) -> list[str]:
        return [p.requirement for p in self.packages if p.requirement]

    def __bool__(self) -> bool:
        return bool(self.requirements)


# --- URLs ---------------------------------------------------------------------------------


def strip_credentials(url: str) -> tuple[str, bool]:
    """``url`` without user:password (or token) and secret query parameters; (url, changed).

    An ``ssh`` URL keeps a bare user name (``git@``): it names the account,
    it is not a secret.  Userinfo of ``${VAR}`` references stays: pip expands
    them from the environment of the build.  Anything that is not a URL is
    returned unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, False
    if not parts.scheme or not parts.netloc:
        return url, False
    changed = False
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if _ENV_REFERENCE_RE.match(userinfo):
            netloc = parts.netloc  # ${USER}:${TOKEN}: pip fills them in at install time
        elif parts.scheme.lower() in _SSH_SCHEMES and not has_password and "*" not in user:
            netloc = f"{user}@{host}" if user else host
        else:
            netloc = host
        changed = netloc != parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _SECRET_QUERY_RE.match(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
            changed = True
    if not changed:
        return url, False
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), True


def requirement_without_credentials(requirement: str) -> str:
    """A requirement line someone typed, with the credentials of every URL in it removed.

    ``git+https://ghp_...@github.com/org/tool.git@v1`` becomes
    ``git+https://github.com/org/tool.git@v1``, ``name @ https://user:pw@host/x.whl``
    becomes ``name @ https://host/x.whl``; secret query parameters go too (see
    ``strip_credentials``), and anything ``urlsplit`` cannot take apart is masked
    with ``***`` instead.
    """
    if "://" not in requirement:
        return requirement
    from safe_pip.audit.redact import redact_url

    return _URL_IN_TEXT_RE.sub(
        lambda match: redact_url(strip_credentials(match.group(0))[0]), requirement
    )


def _is_pypi(index_url: str | None) -> bool:
    if not index_url:
        return True
    return index_url.rstrip("/") in (PYPI_INDEX, "https://pypi.python.org/simple")


def _vcs_requirement_url(source: Mapping[str, Any]) -> tuple[str, bool, bool]:
    """The VCS URL pinned to the resolved commit: (url, pinned, credentials_removed)."""
    url = str(source.get("url") or "")
    if not url.startswith(_VCS_PREFIXES):
        vcs = str(source.get("vcs") or "git")
        url = f"{vcs}+{url}"
    url, removed = strip_credentials(url)
    if url.partition("+")[2].startswith("file:///"):
        # a local repository: `file://localhost/path` is the same place for git, and the
        # form older requirement parsers take (pip < 24 refuses `name @ git+file:///path`)
        url = url.replace(":///", "://localhost/", 1)
    base, _, fragment = url.partition("#")
    # keep only the subdirectory of the fragment (egg= is deprecated, hashes do not apply)
    keep = [
        f"{k}={v}" for k, v in parse_qsl(fragment, keep_blank_values=True) if k == "subdirectory"
    ]
    subdirectory = str(source.get("subdirectory") or "")
    if subdirectory and not keep:
        keep = [f"subdirectory={subdirectory}"]
    commit = str(source.get("commit") or source.get("commit_id") or "")
    scheme_end = base.find("://")
    path_start = base.find("/", scheme_end + 3) if scheme_end != -1 else -1
    if path_start != -1 and "@" in base[path_start:]:
        cut = base.rfind("@")
        ref_base, ref = base[:cut], base[cut + 1 :]
    else:
        ref_base, ref = base, ""
    pinned = bool(commit)
    if pinned:
        base = f"{ref_base}@{commit}"
    elif ref:
        base = f"{ref_base}@{ref}"
    return base + ("#" + "&".join(keep) if keep else ""), pinned, removed


def _url_requirement_url(source: Mapping[str, Any], hashes: Any) -> tuple[str, bool]:
    url, removed = strip_credentials(str(source.get("url") or ""))
    if "#" not in url and isinstance(hashes, Mapping):
        for algorithm in ("sha256", "sha384", "sha512"):
            value = hashes.get(algorithm)
            if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]+", value):
                url = f"{url}#{algorithm}={value}"
                break
    return url, removed


# --- the net effect of the audit log ------------------------------------------------------


def _pin(name: str, version: str) -> str:
    if _CANONICAL_VERSION_RE.match(version):
        return f"{name}=={version}"
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        return f"{name}==={version}"  # PEP 440 arbitrary equality for legacy versions
    return f"{name}=={version}"


def _valid_requirement(line: str) -> bool:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(line)
    except InvalidRequirement:
        return False
    return True


def _one_line(text: str) -> str:
    return _CONTROL_RE.sub(" ", _SURROGATE_RE.sub("\ufffd", text)).strip()


def _package(key: str, item: Mapping[str, Any], cleaned: list[str]) -> PipPackage:
    name = str(item["name"])
    version = str(item["version"])
    source = item.get("source")
    if not isinstance(source, Mapping):
        source = {}
    kind = str(source.get("kind") or "unknown")
    where = _one_line(str(source.get("path") or source.get("url") or ""))
    if kind == "editable":
        return PipPackage(
            key,
            name,
            version,
            kind,
            None,
            f"editable (dev install, not rebuildable by conda-store): {name}=={version}"
            + (f" from {where}" if where else ""),
        )
    note = ""
    if kind == "vcs" and source.get("url"):
        url, pinned, removed = _vcs_requirement_url(source)
        if removed:
            cleaned.append(name)
        requirement = f"{name} @ {url}"
        if not pinned:
            note = f"{name} {version}: no commit recorded, so not pinned to one"
    elif kind == "url" and str(source.get("url") or "").startswith(("https://", "http://")):
        url, removed = _url_requirement_url(source, item.get("hashes"))
        if removed:
            cleaned.append(name)
        requirement = f"{name} @ {url}"
    elif kind in ("file", "url"):
        requirement = _pin(name, version)
        note = f"{name} {version} was installed from a local file, not an index: {where}"
    else:
        requirement = _pin(name, version)
    # name==<valid PEP 440 version> with a valid name is valid; anything else is parsed
    simple_pin = requirement == f"{name}=={version}"
    if not _PEP508_NAME_RE.match(name) or not (simple_pin or _valid_requirement(requirement)):
        return PipPackage(
            key,
            name,
            version,
            kind,
            None,
            _one_line(f"left out, not a valid PEP 508 requirement: {requirement}"),
        )
    return PipPackage(key, name, version, kind, requirement, _one_line(note))


def _index_options(
    packages: Sequence[PipPackage],
    states: Mapping[str, tuple[Mapping[str, Any], int]],
    contributing: Sequence[Mapping[str, Any]],
    cleaned: list[str],
) -> list[str]:
    """``--index-url``/``--extra-index-url`` lines for the indexes the listed packages used."""
    records = sorted({states[p.key][1] for p in packages if p.requirement})
    primaries: dict[str, None] = {}
    extras: dict[str, None] = {}
    for position in records:
        index = contributing[position].get("index")
        if not isinstance(index, Mapping):
            continue
        index_url = index.get("index_url")
        if not index.get("no_index"):
            primaries.setdefault(str(index_url) if index_url else PYPI_INDEX, None)
            for extra in index.get("extra_index_urls") or []:
                if isinstance(extra, str) and extra:
                    extras.setdefault(extra, None)
    options: list[str] = []
    seen: set[str] = set()
    custom = [url for url in primaries if not _is_pypi(url)]
    uses_pypi = any(_is_pypi(url) for url in primaries)
    ordered: list[tuple[str, str]] = []
    if custom and not uses_pypi:
        ordered.append(("--index-url", custom[0]))
        custom = custom[1:]
    ordered.extend(("--extra-index-url", url) for url in [*custom, *extras] if not _is_pypi(url))
    for option, url in ordered:
        clean, removed = strip_credentials(url)
        if removed:
            cleaned.append(f"index {clean}")
        if clean not in seen and " " not in clean:
            seen.add(clean)
            options.append(f"{option} {clean}")
    return options


def _local_dir(link: str) -> str | None:
    """The directory a ``--find-links`` value names, or None for a URL."""
    if link.startswith("file://"):
        return link[len("file://") :].rstrip("/") or "/"
    if "://" in link:
        return None
    return link.rstrip("/") or "/"


def _find_links_notes(
    packages: list[PipPackage],
    states: Mapping[str, tuple[Mapping[str, Any], int]],
    contributing: Sequence[Mapping[str, Any]],
) -> list[str]:
    """Comments for the ``--find-links`` the listed packages were installed with.

    A package whose local file lies in such a directory is named in that
    link's comment instead of carrying its own (``packages`` is updated).
    """
    served: dict[str, list[str]] = {}
    for number, package in enumerate(packages):
        if package.requirement is None:
            continue
        item, position = states[package.key]
        index = contributing[position].get("index")
        links = index.get("find_links") if isinstance(index, Mapping) else None
        if not isinstance(links, list):
            continue
        source = item.get("source")
        path = str(source.get("path") or "") if isinstance(source, Mapping) else ""
        for link in links:
            if not isinstance(link, str) or not link:
                continue
            names = served.setdefault(link, [])
            directory = _local_dir(link)
            if package.kind == "file" and directory and posixpath.dirname(path) == directory:
                names.append(f"{package.name} {package.version}")
                packages[number] = replace(package, note="")
    notes = []
    for link, names in served.items():
        clean, _ = strip_credentials(link)
        what = f"--find-links {clean}" + (f" served {', '.join(names)}" if names else " was used")
        if _local_dir(link) is not None:
            notes.append(
                f"{what}: a local directory, not there when the env is rebuilt elsewhere, and "
                "conda-store refuses --find-links: put these on an index, or give pip "
                "--find-links by hand"
            )
        else:
            notes.append(
                f"{what}: conda-store refuses --find-links: put these on an index, "
                "or give pip --find-links by hand"
            )
    return notes


def pip_requirements(records: Iterable[Mapping[str, Any]]) -> PipSection:
    """The net pip state the audit records describe, as a pip section.

    Records are audit records, oldest first.  Only ``allowed`` records with an
    outcome of ``ok``, ``failed`` or ``interrupted`` carry real ``changes``;
    each record's removals are applied before its installs.  Packages come
    out sorted by normalised name.
    """
    net = replay(records)
    state = net.installed()
    cleaned: list[str] = []
    packages = [_package(key, state[key][0], cleaned) for key in sorted(state)]
    options = _index_options(packages, state, net.records, cleaned)
    comments = _find_links_notes(packages, state, net.records)
    if cleaned:
        comments.append(
            "credentials were removed from URLs ("
            + ", ".join(dict.fromkeys(cleaned))
            + "): give them at build time (pip's keyring support, PIP_INDEX_URL), "
            "never in the spec"
        )
    problems = net.all_problems()
    return PipSection(
        options=tuple(options),
        packages=tuple(packages),
        comments=tuple(_one_line(c) for c in comments),
        problems=tuple(problems),
    )


# --- names and conda dependencies ---------------------------------------------------------


def environment_name(name: str) -> str:
    """``name`` made acceptable to conda-store and ``conda env create -n``.

    Characters outside conda-store's set become ``-``; conda's reserved names
    (``base``, ``root``) get a ``-copy`` suffix; an empty result is ``env``.
    """
    text = re.sub(r"[^A-Za-z0-9\-+_@$&?^~.=]+", "-", name).strip("-") or "env"
    if text in CONDA_RESERVED_NAMES:
        text = f"{text}-copy"
    return text


def _conda_name(spec: str) -> str:
    text = spec.strip().strip("'\"").rpartition("::")[2]
    match = re.match(r"[^\s=<>!~\[(]*", text)
    return (match.group(0) if match else text).lower()


def conda_dependencies(
    conda_specs: Sequence[str], pip: PipSection, *, python_version: str | None = None
) -> list[str]:
    """The conda dependency strings: the specs, ``python=X.Y`` if asked, and ``pip`` if needed."""
    deps = [spec.strip() for spec in conda_specs if spec.strip()]
    names = {_conda_name(spec) for spec in deps}
    if python_version and "python" not in names:
        deps.insert(0, f"python={python_version}")
        names.add("python")
    if pip and "pip" not in names:
        deps.append("pip")
    return deps


# --- rendering ----------------------------------------------------------------------------


def yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar that every YAML reader reads back as this very string.

    Plain when it is unambiguous (starts with a letter or ``_``, only safe
    characters, not a YAML 1.1 boolean/null word), otherwise double-quoted
    with backslash escapes.  (Lone surrogates, which UTF-8 cannot hold, become
    U+FFFD.)
    """
    text = _SURROGATE_RE.sub("\ufffd", text)
    if _PLAIN_YAML_RE.match(text) and text.lower() not in _YAML_SPECIAL_WORDS:
        return text
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif _CONTROL_RE.match(char):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _comment(text: str, indent: str) -> str:
    return f"{indent}# {_one_line(text)}".rstrip()


def environment_yml(
    name: str,
    channels: Sequence[str],
    conda_specs: Sequence[str],
    pip: PipSection,
    *,
    header_comments: Sequence[str] = (),
) -> str:
    """The environment.yml text; ``conda_specs`` are the conda dependencies as given.

    No ``prefix`` key (the file recreates the env elsewhere), no ``null``
    values (conda-store rejects them), ``channels`` left out when empty (conda
    and conda-store then use their configured defaults).  The ``{pip: [...]}``
    entry is written only when it has items; notes are YAML comments.
    """
    lines = [_comment(text, "") for text in header_comments]
    lines.append(f"name: {yaml_scalar(name)}")
    if channels:
        lines.append("channels:")
        lines.extend(f"  - {yaml_scalar(channel)}" for channel in channels)
    body: list[str] = [f"  - {yaml_scalar(spec)}" for spec in conda_specs]
    pip_lines: list[str] = [f"      - {yaml_scalar(option)}" for option in pip.options]
    notes: list[str] = []
    for package in pip.packages:
        if package.requirement is None:
            notes.append(package.note)
            continue
        if package.note:
            pip_lines.append(_comment(package.note, "      "))
        pip_lines.append(f"      - {yaml_scalar(package.requirement)}")
    notes.extend(pip.comments)
    if pip:
        body.append("  - pip:")
        body.extend(pip_lines)
        body.extend(_comment(note, "      ") for note in notes)
    else:
        body.extend(_comment(note, "  ") for note in notes)
    if any(not line.lstrip().startswith("#") for line in body):
        lines.append("dependencies:")
        lines.extend(body)
    else:
        lines.append("dependencies: []")
        lines.extend(line.lstrip() for line in body)
    return "\n".join(lines) + "\n"


def requirements_txt(pip: PipSection, *, header_comments: Sequence[str] = ()) -> str:
    """The pip part alone, in pip's requirements file format."""
    lines = [_comment(text, "") for text in header_comments]
    lines.extend(pip.options)
    notes: list[str] = []
    for package in pip.packages:
        if package.requirement is None:
            notes.append(package.note)
            continue
        if package.note:
            lines.append(_comment(package.note, ""))
        lines.append(package.requirement)
    lines.extend(_comment(note, "") for note in [*notes, *pip.comments])
    return "\n".join(lines) + "\n"
