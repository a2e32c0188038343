"""The one way safe-pip turns a requirement into a project name: pip's way.

pip reads every requirement (an argument of ``pip install``/``uninstall``, a
line of a ``-r`` file) with ``parse_req_from_line``:

* a URL (``http``, ``https``, ``file``, ``ftp`` or a VCS scheme such as
  ``git+https``) is a link; markers follow ``"; "``;
* otherwise markers follow ``";"``, and the text is a link when it names an
  archive (``*.whl``, ``*.tar.gz``, ``*.zip``, ...) or, when it looks like a
  path, an existing directory;
* a link to a wheel is named by the wheel's file name (``six-1.17.0-py3-none-any.whl``
  is ``six``); any other link only by its ``#egg=`` fragment (``git+https://h/x.git#egg=Foo``
  is ``foo``), else it has no name until it is built;
* anything else is a PEP 508 requirement, read with ``packaging``.

Names are normalised (PEP 503).  ``None`` means pip would not know the name
before building, or would refuse the text.  A property test holds this against
pip's own parser.
"""

from __future__ import annotations

import os

from safe_pip.lazyre import lazy

_URL_SCHEMES = frozenset(
    {"http", "https", "file", "ftp"}
    | {f"git+{s}" for s in ("http", "https", "ssh", "git", "file")}
    | {f"hg+{s}" for s in ("file", "http", "https", "ssh", "static-http")}
    | {f"svn+{s}" for s in ("ssh", "http", "https", "svn", "file")}
    | {f"bzr+{s}" for s in ("http", "https", "ssh", "sftp", "ftp", "lp", "file")}
)
_ARCHIVES = (
    ".zip", ".whl", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma",
    ".tar.gz", ".tgz", ".tar",
)  # fmt: skip
_EGG = lazy(r"[#&]egg=([^&]*)")
_PROJECT = lazy(r"(?i)^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$")
_WHEEL = lazy(r"^(?P<name>[^\s-]+?)-(?P<ver>[^\s-]*?)(-\d[^-]*)?-[^\s-]+?-[^\s-]+?-[^\s-]+?\.whl$")
_SEPARATORS = lazy(r"[-_.]+")
#: ``name`` or ``name OP version`` with a plain public version: what packaging reads the
#: same way, found without importing it (most command lines are like this)
_SIMPLE = lazy(
    r"(?a)\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?:(?:==|!=|<=|>=|<|>)\s*[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?"
    r"(?:\.dev[0-9]+)?\s*)?"
)


def canonical(name: str) -> str:
    """PEP 503: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    return _SEPARATORS.sub("-", name).lower()


def is_plain_requirement(text: str) -> bool:
    """A requirement by project name (extras, versions, markers), which pip and uv look
    up in their indexes: not a path, URL, archive or VCS reference.  Conservative: an
    unusual spelling is not plain."""
    value = text.split(";", 1)[0].strip()
    if not value or value.startswith((".", "~", "-")):
        return False
    if any(char in value for char in "/\\@:"):
        return False
    bare = without_extras(value.split("=", 1)[0].split("<", 1)[0].split(">", 1)[0]).strip()
    return not bare.lower().endswith(_ARCHIVES) and not value.lower().endswith(_ARCHIVES)


def is_url(text: str) -> bool:
    from urllib.parse import urlsplit

    try:
        scheme = urlsplit(text).scheme
    except ValueError:
        return False
    return scheme in _URL_SCHEMES


def _looks_like_path(text: str) -> bool:
    return os.sep in text or text.startswith(".")


def _is_archive(path: str) -> bool:
    root, ext = os.path.splitext(path)
    if root.lower().endswith(".tar"):
        ext = ".tar" + ext
    return ext.lower() in _ARCHIVES


def _link_name(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    path = urlsplit(url).path
    filename = unquote(path.rstrip("/").rsplit("/", 1)[-1])
    if filename.endswith(".whl"):
        match = _WHEEL.match(filename)
        return match.group("name").replace("_", "-") if match else None
    egg = _EGG.search(url)
    if egg is None:
        return None
    return egg.group(1) if _PROJECT.match(egg.group(1)) else None


def without_extras(path: str) -> str:
    """``path`` without a trailing ``[extras]``: what pip's ``^(.+)(\\[[^\\]]+\\])$`` leaves
    in group 1, found without the expression (it backtracks: 30,000 ``[`` took seconds).

    The extras start at the rightmost ``[`` that leaves at least one character
    (and no newline: ``.`` does not match one) before it, and at least one
    character but no ``]`` between it and the final ``]``.
    """
    core = path[:-1] if path.endswith("\n") else path  # '$' matches before a last newline
    if not core.endswith("]"):
        return path
    low = max(core.rfind("]", 0, len(core) - 1) + 1, 1)
    newline = core.find("\n")
    high = len(core) - 2 if newline == -1 else min(len(core) - 2, newline + 1)
    start = core.rfind("[", low, high)
    return path if start == -1 else core[:start]


def project_name(text: str, *, filesystem: bool = True) -> str | None:
    """The normalised project name ``text`` names, as pip reads it (None: no name yet).

    ``filesystem=False``: no I/O (the decision core): a path is taken as written and is
    not looked up as a directory.
    """
    simple = _SIMPLE.fullmatch(text)
    if simple is not None and not _is_archive(simple.group(1)):
        return canonical(simple.group(1))  # the common case, without the steps below
    line = text
    url = is_url(line.strip())
    separator = "; " if url else ";"
    if separator in line:
        line = line.split(separator, 1)[0]
    line = line.strip()
    if not line:
        return None
    if url:
        name = _link_name(line)
        return canonical(name) if name else None
    looks_like_path = _looks_like_path(line)
    path = os.path.normpath(os.path.abspath(line)) if looks_like_path and filesystem else line
    bare = without_extras(path)
    if looks_like_path and (not filesystem or os.path.isdir(bare)) and not _is_archive(bare):
        return None  # a local project: named once built
    if _is_archive(bare):
        left, at, _ = line.partition("@")
        if not (at and not _looks_like_path(left)):
            name = _link_name(bare)
            return canonical(name) if name else None
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is a dependency
        return None
    try:
        return canonical(Requirement(line).name)
    except InvalidRequirement:
        return None


def requirement_line_name(line: str) -> str | None:
    """The name of one requirement-file line: a requirement, or ``-e``/``--editable X``."""
    stripped = line.strip()
    if stripped.startswith("-"):
        option, _, value = stripped.partition(" ")
        if option not in ("-e", "--editable"):
            return None
        stripped = value.strip()
    return project_name(stripped)
