"""conda's own log of an environment: ``conda-meta/history``.

The file is a list of blocks, one per conda (or mamba) transaction::

    ==> 2025-04-21 06:48:32 <==
    # cmd: /opt/conda/bin/conda update -n base -c defaults conda
    # conda version: 25.1.1
    -defaults::conda-25.1.1-py312h06a4308_0
    +defaults/linux-64::conda-25.3.1-py312h06a4308_0
    # update specs: ['conda']
    # neutered specs: ['conda==25.3.1']

Read here as conda reads it (``conda.history.History`` and CEP 32):

* lines are stripped and blank lines skipped; everything before the first
  ``==> ... <==`` header is ignored;
* a ``#`` line is a comment of the current block: ``# cmd:``, ``# conda
  version:`` and ``# <action> specs: <payload>``; a later line of a kind
  replaces an earlier one of the same kind within a block;
* any other line is a package: ``+`` linked, ``-`` unlinked, or, in a block
  without any ``+``/``-`` line, one package of a full listing of the
  environment (conda 3.x wrote its first block that way);
* a spec payload is a Python list repr (conda <= 4.2 and >= 4.4, mamba with
  double quotes) or, for conda 4.3, specs joined with ``,`` where a fragment
  that starts with a version operator belongs to the spec before it.  Empty
  specs and specs ending in ``@`` (old feature specs) are dropped.

Unlike conda, nothing here raises on a malformed file: what cannot be read is
skipped and reported in ``History.problems``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator

from safe_pip.lazyre import lazy
from safe_pip.values import frozen

from .readfile import MiB, read_bytes

__all__ = [
    "KNOWN_SUBDIRS",
    "MAX_HISTORY_BYTES",
    "MAX_PROBLEMS",
    "Dist",
    "History",
    "HistoryBlock",
    "canonical_channels",
    "normalise_channel",
    "parse_dist",
    "parse_history",
    "read_history",
    "spec_name",
]

#: conda's platform subdirectories; a channel ending in one of them names
#: that channel's subdir, which ``normalise_channel`` drops.
KNOWN_SUBDIRS = frozenset(
    {
        "noarch",
        "emscripten-wasm32",
        "wasi-wasm32",
        "freebsd-64",
        "linux-32",
        "linux-64",
        "linux-aarch64",
        "linux-armv6l",
        "linux-armv7l",
        "linux-ppc64",
        "linux-ppc64le",
        "linux-riscv64",
        "linux-s390x",
        "osx-64",
        "osx-arm64",
        "win-32",
        "win-64",
        "win-arm64",
        "zos-z",
    }
)

#: The largest history read (a base env updated weekly for ten years holds a few MiB).
MAX_HISTORY_BYTES = 16 * MiB
#: Problems listed one by one; the rest are counted in one last line.
MAX_PROBLEMS = 100
#: Spec lists of an unusual form are read with ``ast`` only up to this length.
_MAX_AST_PAYLOAD = 64 * 1024

# Actions of a "# <action> specs:" line, grouped the way conda groups them.
_INSTALL_ACTIONS = frozenset({"install", "create"})
_UPDATE_ACTIONS = frozenset({"update"})
_REMOVE_ACTIONS = frozenset({"remove", "uninstall"})
_NEUTERED_ACTIONS = frozenset({"neutered"})

_CMD_RE = lazy(r"#\s*cmd:\s*(.+)")
_CONDA_VERSION_RE = lazy(r"#\s*conda version:\s*(.+)")
_SPECS_RE = lazy(r"#\s*(\w+)\s*specs:\s*(.+)?")
# A comma-separated fragment that is only a version constraint ("<2.0").
_VERSION_FRAGMENT_RE = lazy(r"(?:==|!=|<=|>=|~=|=|<|>)(?![=<>!~])\S+\Z")
# A list repr of plain quoted strings, the common case, read without ast.
_SIMPLE_LIST_RE = lazy(
    r"""\[\s*(?:(?:'[^'\\\n]*'|"[^"\\\n]*")\s*,\s*)*(?:(?:'[^'\\\n]*'|"[^"\\\n]*")\s*)?\]\Z"""
)
_QUOTED_RE = lazy(r"""'([^'\\\n]*)'|"([^"\\\n]*)\"""")
# A package name as a spec may spell it; anything else means "no usable name".
_NAME_RE = lazy(r"[A-Za-z0-9_][A-Za-z0-9._+-]*\Z")
_NAME_STOP_RE = lazy(r"[ =<>!~]")
_PACKAGE_EXTENSIONS = (".tar.bz2", ".conda")
_CREDENTIALS_RE = lazy(r"(?<=://)[^/@]*@")
_TOKEN_RE = lazy(r"/t/[^/]+(?=/|\Z)")


@frozen
class Dist:
    """One package line of the history: ``[channel::]name-version-build``."""

    channel: str | None
    name: str
    version: str
    build: str

    def __str__(self) -> str:
        text = f"{self.name}-{self.version}-{self.build}"
        return f"{self.channel}::{text}" if self.channel else text

    @property
    def key(self) -> tuple[str, str, str]:
        """The package without its channel (channels are spelled differently over time)."""
        return (self.name, self.version, self.build)


@frozen
class HistoryBlock:
    """One ``==> timestamp <==`` block.

    ``install_specs`` holds the specs of ``# install specs:`` and ``# create
    specs:`` lines, ``update_specs`` those of ``# update specs:``,
    ``remove_specs`` those of ``# remove specs:``/``# uninstall specs:``; each
    is the last such line of the block that named any spec, as in conda.
    ``full_state`` marks a block whose package lines carry no ``+``/``-``: it
    lists the whole environment, in ``added``.  ``request_action`` is the
    action word of the specs line conda takes as this block's requested specs
    (conda folds install, create and update together: the last one wins).
    """

    line: int
    timestamp: str
    cmd: str | None
    conda_version: str | None
    added: tuple[Dist, ...]
    removed: tuple[Dist, ...]
    install_specs: tuple[str, ...]
    update_specs: tuple[str, ...]
    remove_specs: tuple[str, ...]
    neutered_specs: tuple[str, ...]
    full_state: bool = False
    request_action: str | None = None

    @property
    def requested(self) -> tuple[str, ...]:
        """The specs this block asked for (conda's ``update_specs`` of the block)."""
        if self.request_action in _UPDATE_ACTIONS:
            return self.update_specs
        if self.request_action in _INSTALL_ACTIONS:
            return self.install_specs
        return self.update_specs or self.install_specs

    @property
    def changes_packages(self) -> bool:
        return bool(self.added or self.removed or self.full_state)


@frozen
class History:
    """A parsed ``conda-meta/history``; ``problems`` lists what was skipped."""

    blocks: tuple[HistoryBlock, ...] = ()
    problems: tuple[str, ...] = ()

    def requested_specs(self) -> dict[str, str]:
        """Package name -> the spec the user last asked for, as conda computes it.

        Only blocks with a ``# cmd:`` line count.  In each, in file order:
        removed names are dropped, requested specs replace earlier ones, then
        neutered specs replace those.  Specs without a usable package name
        (globs, ``*``, garbage) are left out.  The specs are returned as
        written in the file; conda re-renders them through its MatchSpec.
        """
        specs: dict[str, str] = {}
        for block in self.blocks:
            if block.cmd is None:
                continue
            for spec in block.remove_specs:
                name = spec_name(spec)
                if name is not None:
                    specs.pop(name, None)
            for group in (block.requested, block.neutered_specs):
                for spec in group:
                    name = spec_name(spec)
                    if name is not None:
                        specs[name] = spec
        return specs

    def installed(self) -> dict[str, Dist]:
        """Package name -> package, the state the package lines add up to.

        A full listing replaces the state; otherwise a block's ``-`` lines are
        applied before its ``+`` lines, and a ``-`` line removes the package
        of that name, version and build whatever channel spelling it uses.
        A block without package lines changes nothing (conda's
        ``construct_states`` would take it for an empty environment).
        """
        state: dict[str, Dist] = {}
        for block in self.blocks:
            if block.full_state:
                state = {dist.name: dist for dist in block.added}
                continue
            for dist in block.removed:
                current = state.get(dist.name)
                if current is not None and current.key == dist.key:
                    del state[dist.name]
            for dist in block.added:
                state[dist.name] = dist
        return state

    def export_specs(self, installed_names: Collection[str]) -> list[str]:
        """What ``conda env export --from-history`` lists: requested specs still installed.

        ``installed_names`` are the names of the environment's package
        records (``conda-meta/*.json``), as conda checks them.
        """
        names = set(installed_names)
        return [spec for name, spec in self.requested_specs().items() if name in names]

    def channels(self) -> list[str]:
        """Channels of the package lines, first seen first, without subdir or credentials."""
        seen: dict[str, None] = {}
        for block in self.blocks:
            for dists in (block.added, block.removed):
                for dist in dists:
                    if dist.channel:
                        channel = normalise_channel(dist.channel)
                        if channel:
                            seen.setdefault(channel, None)
        return list(seen)

    def last_change_time(self) -> str | None:
        """Timestamp of the last block that linked or unlinked packages."""
        for block in reversed(self.blocks):
            if block.changes_packages:
                return block.timestamp
        return None


def spec_name(spec: str) -> str | None:
    """The package name a conda MatchSpec string refers to, lowercased.

    ``conda-forge::numpy[version='>=1.2']``, ``"python=3.12"``,
    ``numpy 1.2.*`` and ``defaults/linux-64::pkg`` name ``numpy``,
    ``python``, ``numpy`` and ``pkg``.  Returns None where conda would match
    any name (``*``, globs, feature specs ending in ``@``) or finds none.
    """
    text = spec.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    if not text or text.endswith("@"):
        return None
    text = text.split("#", 1)[0]
    text = text.split(" if ", 1)[0].strip()
    if text.endswith(_PACKAGE_EXTENSIONS):
        return _name_from_package_file(text)
    # The name comes before any [key=value] or (legacy) parenthesised part,
    # and after the last ':' (channel::name or channel:namespace:name).
    for stop in ("[", "("):
        cut = text.find(stop)
        if cut != -1:
            text = text[:cut]
    text = text.rpartition(":")[2].strip()
    match = _NAME_STOP_RE.search(text)
    name = text[: match.start()] if match else text
    if not _NAME_RE.match(name):
        return None
    return name.lower()


def _name_from_package_file(location: str) -> str | None:
    filename = location.replace("\\", "/").rpartition("/")[2]
    for extension in _PACKAGE_EXTENSIONS:
        if filename.endswith(extension):
            filename = filename[: -len(extension)]
            break
    parts = filename.rsplit("-", 2)
    if len(parts) != 3 or not _NAME_RE.match(parts[0]):
        return None
    return parts[0].lower()


def normalise_channel(channel: str) -> str:
    """A channel as a name or URL, without platform subdir, credentials or token.

    ``defaults/linux-64`` -> ``defaults``;
    ``https://conda.anaconda.org/conda-forge/noarch`` ->
    ``https://conda.anaconda.org/conda-forge``; ``<unknown>`` -> ``''``.
    """
    text = channel.strip().rstrip("/")
    if not text or text == "<unknown>":
        return ""
    if "://" in text:
        text = _CREDENTIALS_RE.sub("", text, count=1)
        text = _TOKEN_RE.sub("", text)
    head, sep, last = text.rpartition("/")
    if sep and last in KNOWN_SUBDIRS and head and not head.endswith(("/", ":")):
        text = head
    return text


#: conda's default channel_alias (conda/base/context.py), with and without TLS
_CHANNEL_ALIASES = ("https://conda.anaconda.org/", "http://conda.anaconda.org/")
#: conda's DEFAULT_CHANNELS (conda/base/constants.py), which ``defaults`` stands for
_DEFAULT_CHANNELS = frozenset(
    {
        f"{scheme}{host}pkgs/{name}"
        for scheme in ("https://", "http://", "")
        for host in (("repo.anaconda.com/",) if scheme else ("",))
        for name in ("main", "r", "msys2")
    }
)


def canonical_channels(channels: Iterable[str]) -> list[str]:
    """Channels as ``conda env export`` names them (``Channel.canonical_name``), deduplicated.

    A channel under conda's default channel alias (``https://conda.anaconda.org/``)
    is its name; Anaconda's default channels (``repo.anaconda.com/pkgs/main``,
    ``pkgs/r``, ``pkgs/msys2``) are ``defaults``; anything else stays as given.
    """
    out: dict[str, None] = {}
    for channel in channels:
        text = channel.strip().rstrip("/")
        lowered = text.lower()
        for alias in _CHANNEL_ALIASES:
            if lowered.startswith(alias) and len(text) > len(alias):
                text = text[len(alias) :]
                break
        if text.lower() in _DEFAULT_CHANNELS:
            text = "defaults"
        if text:
            out.setdefault(text, None)
    return list(out)


def parse_dist(text: str) -> Dist | None:
    """``[channel::]name-version-build`` (an optional package extension is ignored)."""
    for extension in _PACKAGE_EXTENSIONS:
        if text.endswith(extension):
            text = text[: -len(extension)]
            break
    channel, sep, rest = text.rpartition("::")
    parts = rest.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    name, version, build = parts
    return Dist(channel if sep and channel else None, name, version, build)


class _Problems(list[str]):
    """The first ``MAX_PROBLEMS`` problems, and a count of the others."""

    more = 0

    def append(self, problem: str) -> None:
        if len(self) < MAX_PROBLEMS:
            super().append(problem)
        else:
            self.more += 1  # from now on a truthy count: callers may skip formatting

    def listed(self) -> tuple[str, ...]:
        if not self.more:
            return tuple(self)
        return (*self, f"{self.more} more problems like these")


class _BlockBuilder:
    """The mutable state of the block being read."""

    __slots__ = (
        "added",
        "bare",
        "cmd",
        "conda_version",
        "install_specs",
        "line",
        "neutered_specs",
        "remove_specs",
        "removed",
        "request_action",
        "timestamp",
        "update_specs",
    )

    def __init__(self, line: int, timestamp: str) -> None:
        self.line = line
        self.timestamp = timestamp
        self.cmd: str | None = None
        self.conda_version: str | None = None
        self.added: list[Dist] = []
        self.removed: list[Dist] = []
        self.bare: list[tuple[int, Dist]] = []
        self.install_specs: tuple[str, ...] = ()
        self.update_specs: tuple[str, ...] = ()
        self.remove_specs: tuple[str, ...] = ()
        self.neutered_specs: tuple[str, ...] = ()
        self.request_action: str | None = None

    def build(self, problems: list[str], where: str) -> HistoryBlock:
        full_state = False
        added = self.added
        if self.bare:
            if self.added or self.removed:
                for lineno, dist in self.bare:
                    problems.append(
                        f"{where}line {lineno}: package line {str(dist)!r} without '+' or '-' "
                        "in a block of changes; ignored"
                    )
            else:
                full_state = True
                added = [dist for _, dist in self.bare]
        return HistoryBlock(
            line=self.line,
            timestamp=self.timestamp,
            cmd=self.cmd,
            conda_version=self.conda_version,
            added=tuple(added),
            removed=tuple(self.removed),
            install_specs=self.install_specs,
            update_specs=self.update_specs,
            remove_specs=self.remove_specs,
            neutered_specs=self.neutered_specs,
            full_state=full_state,
            request_action=self.request_action,
        )


def header_timestamp(line: str) -> str | None:
    """What conda's ``==>\\s*(.+?)\\s*<==`` captures of ``line`` (no newline in it), or None.

    The same answer in linear time: the regular expression backtracks over
    white space (a header of 5,000 spaces took a minute).  The capture starts
    after the white space that follows ``==>`` and ends before the white space
    that precedes the first ``<==`` after it; when only white space lies
    between, it is the last white space character.
    """
    if not line.startswith("==>"):
        return None
    rest = line[3:]
    start = len(rest) - len(rest.lstrip())
    end = rest.find("<==", start + 1)
    if end != -1:
        while end > start + 1 and rest[end - 1].isspace():
            end -= 1
        return rest[start:end]
    if start > 0 and rest.startswith("<==", start):
        return rest[start - 1 : start]
    return None


def parse_history(  # noqa: C901 - a line parser: one branch per kind of history line
    data: str | bytes, source: str = ""
) -> History:
    """Parse the text of a ``conda-meta/history`` file; never raises on bad content.

    ``source`` (a path) is put before each problem: ``"<source>: line N: ..."``.
    """
    where = f"{source}: " if source else ""
    problems = _Problems()
    text = _decode(data, problems, where)
    if text.startswith("\ufeff"):
        text = text[1:]
    blocks: list[HistoryBlock] = []
    current: _BlockBuilder | None = None
    dist_cache: dict[str, Dist | None] = {}
    for lineno, raw in enumerate(_lines(text), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("==>"):
            timestamp = header_timestamp(line)
            if timestamp is not None:
                if current is not None:
                    blocks.append(current.build(problems, where))
                current = _BlockBuilder(lineno, timestamp)
                continue
        if current is None:
            continue
        first = line[0]
        if first == "#":
            _read_comment(line, lineno, current, problems, where)
            continue
        body = line[1:] if first in "+-" else line
        if body in dist_cache:
            dist = dist_cache[body]
        else:
            dist = dist_cache[body] = parse_dist(body)
        if dist is None and problems.more:  # the list is full: count without formatting
            problems.more += 1
        elif dist is None:
            problems.append(f"{where}line {lineno}: not a package line: {_clip(line)!r}; ignored")
        elif first == "+":
            current.added.append(dist)
        elif first == "-":
            current.removed.append(dist)
        else:
            current.bare.append((lineno, dist))
    if current is not None:
        blocks.append(current.build(problems, where))
    return History(tuple(blocks), problems.listed())


def read_history(prefix_or_path: str | os.PathLike[str]) -> History:
    """Read ``<prefix>/conda-meta/history`` (or the history file given).

    A missing file is an empty history; one that cannot be read (also one
    larger than ``MAX_HISTORY_BYTES``, or a FIFO or device) is an empty
    history with a problem.
    """
    path = os.fspath(prefix_or_path)
    if os.path.isdir(path):
        path = os.path.join(path, "conda-meta", "history")
    try:
        data = read_bytes(path, limit=MAX_HISTORY_BYTES)
    except FileNotFoundError:
        return History()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        return History((), (f"{path}: cannot read: {reason}",))
    return parse_history(data, str(path))


def _lines(text: str, chunk: int = 1 << 20) -> Iterator[str]:
    """``text.splitlines()``, a chunk at a time: a list of every line of a large file
    takes many times the file's size.  Chunks end after a ``\\n``, which always ends a
    line (a ``\\r\\n`` stays whole), so the lines are the same."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + chunk)
        end = len(text) if end == -1 else end + 1
        yield from text[start:end].splitlines()
        start = end


def _decode(data: str | bytes, problems: list[str], where: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8", "replace")
        lineno = len((before + "x").splitlines())
        problems.append(
            f"{where}line {lineno}: not valid UTF-8; undecodable bytes replaced with U+FFFD"
        )
        return data.decode("utf-8", "replace")


def _read_comment(  # noqa: C901 - one branch per comment form conda has written
    line: str, lineno: int, block: _BlockBuilder, problems: list[str], where: str
) -> None:
    cmd = _CMD_RE.match(line)
    if cmd is not None:
        block.cmd = cmd.group(1)
    version = _CONDA_VERSION_RE.match(line)
    if version is not None:
        block.conda_version = version.group(1)
    specs_line = _SPECS_RE.match(line)
    if specs_line is None:
        return
    action, payload = specs_line.group(1), specs_line.group(2) or ""
    specs = tuple(_parse_specs_payload(payload, lineno, problems, where))
    if not specs:
        return
    for spec in specs:
        if spec_name(spec) is None:
            problems.append(f"{where}line {lineno}: no package name in spec {_clip(spec)!r}")
    if action in _INSTALL_ACTIONS:
        block.install_specs = specs
        block.request_action = action
    elif action in _UPDATE_ACTIONS:
        block.update_specs = specs
        block.request_action = action
    elif action in _REMOVE_ACTIONS:
        block.remove_specs = specs
    elif action in _NEUTERED_ACTIONS:
        block.neutered_specs = specs


def _parse_specs_payload(payload: str, lineno: int, problems: list[str], where: str) -> list[str]:
    if payload.startswith("["):
        items = _parse_list_repr(payload)
        if items is None:
            problems.append(
                f"{where}line {lineno}: specs list cannot be read: {_clip(payload)!r}; ignored"
            )
            return []
    elif "[" not in payload:
        items = _split_comma_joined(payload)
    else:
        problems.append(
            f"{where}line {lineno}: specs are neither a list nor comma-joined: "
            f"{_clip(payload)!r}; ignored"
        )
        return []
    specs = []
    for item in items:
        spec = item.strip()
        if spec and not spec.endswith("@"):
            specs.append(spec)
    return specs


def _parse_list_repr(payload: str) -> list[str] | None:
    """A Python list repr of strings, as ``str(list)`` writes it."""
    if _SIMPLE_LIST_RE.match(payload):
        return [single or double for single, double in _QUOTED_RE.findall(payload)]
    if len(payload) > _MAX_AST_PAYLOAD:
        return None
    import ast  # only for unusual payloads (escapes, u'' prefixes)

    try:
        value = ast.literal_eval(payload)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


def _split_comma_joined(payload: str) -> list[str]:
    """conda 4.3's ``','.join(specs)``: version-only fragments rejoin the spec before."""
    specs: list[str] = []
    for fragment in payload.split(","):
        if specs and _VERSION_FRAGMENT_RE.match(fragment):
            specs[-1] = f"{specs[-1]},{fragment}"
        else:
            specs.append(fragment)
    return specs


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
