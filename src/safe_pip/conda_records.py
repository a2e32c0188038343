"""conda's package records: ``conda-meta/<name>-<version>-<build>.json``.

One JSON file per package conda linked into the prefix (a PrefixRecord).  We
keep only what safe-pip decides with: the package's identity, its channel,
the spec it was requested with, and the Python distributions it installs.

Which ``.dist-info``/``.egg-info`` a record owns comes from its ``files``
list, as conda finds it: an entry ``<site-packages>/<dist>.dist-info/RECORD``,
``<site-packages>/<dist>.egg-info/PKG-INFO`` or ``<site-packages>/<dist>.egg-info``
directly inside the site-packages directory of the prefix's python record
(its ``python_site_packages_path``, else ``lib/pythonX.Y/site-packages``, or
``Lib/site-packages`` on Windows).  Without a python record, any directory
named ``site-packages`` counts.

Speed: an environment can hold thousands of records of tens or hundreds of
kilobytes each (``files`` and ``paths_data``), and safe-pip runs before every
pip call.  So:

* a record is scanned, not parsed: conda and mamba pretty-print records, so
  each top-level key starts a line at one indentation, and one regular
  expression pass finds the few values we need.  Whenever the scan is unsure
  (compact JSON, escapes, a key seen twice, a required key missing) the file
  is parsed with ``json.loads`` instead;
* what was read is cached in ``$XDG_CACHE_HOME/safe-pip/`` (default
  ``~/.cache/safe-pip/``), one file per ``conda-meta`` directory.  While the
  directory's (mtime_ns, ctime_ns, inode, device) is unchanged, nothing else
  is looked at: conda removes a record before writing its replacement, so
  every change it makes touches the directory.  Otherwise each record file is
  checked by its (size, mtime_ns, ctime_ns, inode) and only changed ones are
  read again.  Stamps younger than two seconds are not trusted (a second
  change within the clock's resolution would go unseen).  A cache that cannot
  be read or written is silently ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import zlib
from collections.abc import Iterator
from functools import cached_property
from stat import S_ISDIR, S_ISREG
from typing import NamedTuple, Union

from safe_pip.lazyre import lazy
from safe_pip.values import frozen

from .atomicwrite import write_atomic
from .conda_history import KNOWN_SUBDIRS, normalise_channel
from .readfile import MiB, read_bytes
from .userdirs import cache_dir as user_cache_dir

__all__ = [
    "CACHE_VERSION",
    "MAX_RECORD_BYTES",
    "CondaRecord",
    "RecordSet",
    "extract_record",
    "read_records",
]

#: The largest record file read (conda's biggest, with tens of thousands of files, hold a
#: few MiB); a larger one is reported and left out.
MAX_RECORD_BYTES = 32 * MiB
#: The largest cache file read; a larger one is ignored (and rewritten).
MAX_CACHE_BYTES = 64 * MiB
#: Bump when the cached form of a record changes.
CACHE_VERSION = 2
_CACHE_FORMAT = "safe-pip/conda-records"
#: Changes this recent may share a timestamp with a later one: not trusted.
_RACY_NS = 2_000_000_000
_clock_ns = time.time_ns

_ANCHOR_SUFFIXES = (".dist-info/RECORD", ".egg-info/PKG-INFO", ".egg-info")
_SCALAR_KEYS = (
    "name",
    "version",
    "build",
    "channel",
    "subdir",
    "url",
    "requested_spec",
    "python_site_packages_path",
)
_SCALAR_KEY_BYTES = tuple(key.encode() for key in _SCALAR_KEYS)
_REQUIRED_KEYS = frozenset({"name", "version", "build"})
_INDENT_RE = lazy(rb"\{[ \t]*\r?\n([ \t]+)\"")
_VERSION_XY_RE = lazy(r"(\d+)\.(\d+)")


@frozen
class CondaRecord:
    """One installed conda package.

    ``channel`` is a name or URL without subdir ('' if unknown);
    ``dist_infos`` are the prefix-relative, ``/``-separated paths of the
    ``.dist-info``/``.egg-info`` directories (or egg-info files) the package
    installs; ``file`` is the path of the record's JSON file.
    ``requested_specs``: the specs asked for that this package answers, from the
    record's ``requested_specs`` list (conda >= 25.x, py-rattler, pixi), else its
    ``requested_spec``.
    """

    name: str
    version: str
    build: str
    channel: str
    subdir: str
    requested_spec: str | None
    dist_infos: tuple[str, ...]
    python_site_packages_path: str | None
    file: str
    requested_specs: tuple[str, ...] = ()


@frozen
class RecordSet:
    """All records of a prefix, in file-name order, and what could not be read."""

    records: tuple[CondaRecord, ...] = ()
    problems: tuple[str, ...] = ()

    def by_name(self) -> dict[str, CondaRecord]:
        return {record.name: record for record in self.records}

    def owner_of(self, dist_info_relpath: str) -> CondaRecord | None:
        """The record that installs this ``.dist-info``/``.egg-info`` (prefix-relative)."""
        key = _normalise_relpath(dist_info_relpath)
        exact, folded = self._owners
        owner = exact.get(key)
        return owner if owner is not None else folded.get(key.casefold())

    def requested_specs(self) -> list[str]:
        """The specs the records say were asked for, first seen first.

        What an env made without a history (py-rattler, pixi: an empty
        ``conda-meta/history``) keeps of its user's request.
        """
        return list(dict.fromkeys(spec for r in self.records for spec in r.requested_specs))

    def channels(self) -> list[str]:
        """Channels of the records, first seen first."""
        return list(dict.fromkeys(record.channel for record in self.records if record.channel))

    def python_record(self) -> CondaRecord | None:
        return self.by_name().get("python")

    @cached_property
    def _owners(self) -> tuple[dict[str, CondaRecord], dict[str, CondaRecord]]:
        exact: dict[str, CondaRecord] = {}
        folded: dict[str, CondaRecord] = {}
        for record in self.records:
            for path in record.dist_infos:
                exact.setdefault(path, record)
                folded.setdefault(path.casefold(), record)
        return exact, folded


class _Fields(NamedTuple):
    """What is kept of one record file (a JSON list in the cache)."""

    name: str
    version: str
    build: str
    channel: str
    subdir: str
    requested_spec: str | None
    python_site_packages_path: str | None
    #: dist-info/egg-info paths found from ``files``, before the site-packages check
    candidates: tuple[str, ...]
    requested_specs: tuple[str, ...]


#: One record file read: its fields, or the problem that kept it out.
_Read = Union[_Fields, str]
#: (size, mtime_ns, ctime_ns, inode) of a file; all -1 when it is not to be trusted.
_Stamp = tuple[int, int, int, int]
_UNTRUSTED: _Stamp = (-1, -1, -1, -1)


def _read_listing(
    meta_dir: str,
    listing: list[tuple[str, _Stamp]],
    known: dict[str, tuple[_Stamp | None, object]],
) -> tuple[list[_Stamp], list[tuple[str, _Read]], bool]:
    """Each listed record, from the cache where its stamp is trusted and unchanged.

    Returns the stamps, the reads, and whether anything differs from the cache.
    """
    stamps: list[_Stamp] = []
    reads: list[tuple[str, _Read]] = []
    changed = len(known) != len(listing)
    for filename, stamp in listing:
        cached_stamp, raw = known.get(filename, (None, None))
        cached_read = _read_from_json(raw)
        read = cached_read if cached_stamp == stamp != _UNTRUSTED else None
        if read is None:
            read = _read_file(meta_dir + os.sep + filename)
            changed = changed or cached_stamp != stamp or cached_read != read
        stamps.append(stamp)
        reads.append((filename, read))
    return stamps, reads, changed


def read_records(
    prefix: str | os.PathLike[str],
    *,
    use_cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> RecordSet:
    """Read every ``<prefix>/conda-meta/*.json``; never raises on bad content.

    A prefix without ``conda-meta`` has no records.  Records that cannot be
    read are left out and reported in ``problems``.  ``cache_dir`` replaces
    ``$XDG_CACHE_HOME/safe-pip``; ``use_cache=False`` reads every file.
    """
    meta_dir = os.path.join(os.fspath(prefix), "conda-meta")
    try:
        meta_stat = os.stat(meta_dir)
    except FileNotFoundError:
        return RecordSet()
    except OSError as error:
        return RecordSet((), (f"{meta_dir}: cannot read: {error.strerror or error}",))
    if not S_ISDIR(meta_stat.st_mode):
        return RecordSet((), (f"{meta_dir}: not a directory",))

    now = _clock_ns()
    dir_stamp = (meta_stat.st_mtime_ns, meta_stat.st_ctime_ns, meta_stat.st_ino, meta_stat.st_dev)
    cache_file = _cache_file(meta_dir, cache_dir) if use_cache else None
    cache = _load_cache(cache_file, meta_dir) if cache_file is not None else None
    if cache is not None and cache.dir_stamp == dir_stamp:
        reads = cache.reads()
        if reads is not None:
            return _record_set(meta_dir, reads)

    try:
        listing = _list_records(meta_dir)
    except OSError as error:
        return RecordSet((), (f"{meta_dir}: cannot list: {error.strerror or error}",))
    known = cache.by_name() if cache is not None else {}
    stamps, reads, changed = _read_listing(meta_dir, listing, known)
    if cache_file is not None:
        # a stamp younger than the clock's resolution may hide a second change
        fresh = now - _RACY_NS
        stamps = [_UNTRUSTED if max(s[1], s[2]) >= fresh else s for s in stamps]
        trusted = max(meta_stat.st_mtime_ns, meta_stat.st_ctime_ns) < fresh and all(
            stamp != _UNTRUSTED for stamp in stamps
        )
        new_dir_stamp = dir_stamp if trusted else None
        if changed or cache is None or cache.dir_stamp != new_dir_stamp:
            _store_cache(cache_file, meta_dir, new_dir_stamp, stamps, reads)
    return _record_set(meta_dir, reads)


def extract_record(data: bytes, source: str = "") -> _Read:
    """The fields safe-pip keeps of one record's bytes, or the problem with them."""
    scanned = _scan_record(data)
    return scanned if scanned is not None else _parse_record(data, source)


# --- reading one record -------------------------------------------------------------


def _read_file(path: str) -> _Read:
    try:
        data = read_bytes(path, limit=MAX_RECORD_BYTES)
    except OSError as error:
        return f"{path}: cannot read: {error.strerror or error}"
    return extract_record(data, path)


def _scan_record(data: bytes) -> _Fields | None:
    """Read a pretty-printed record without parsing it; None when unsure.

    In pretty-printed JSON every top-level key starts a line at the
    indentation of the first key, and no deeper line has exactly that
    indentation before a quote, so ``\\n<indent>"key":`` is a top-level key.
    """
    indent_match = _INDENT_RE.match(data)
    if indent_match is None or not data[-64:].rstrip().endswith(b"\n}"):
        return None
    indent = indent_match.group(1)
    found: dict[bytes, tuple[bytes, int]] = {}
    for match in _key_pattern(indent).finditer(data):
        key, value = match.group(1), match.group(2)
        # a key twice, a value the scan does not read, or the requested_specs list
        if key in found or not value or key == b"requested_specs":
            return None
        found[key] = (value, match.end())
    values: dict[str, str | None] = {}
    for key, key_bytes in zip(_SCALAR_KEYS, _SCALAR_KEY_BYTES):
        value, _ = found.get(key_bytes, (b"null", 0))
        if value == b"[":
            return None
        text = None if value == b"null" else _decode_plain(value[1:-1])
        if key in _REQUIRED_KEYS and not text:
            return None
        values[key] = text
    anchors: list[str] = []
    files = found.get(b"files")
    if files is not None:
        if files[0] != b"[":
            return None
        scanned = _scan_anchors(data, files[1], indent)
        if scanned is None:
            return None
        anchors = scanned
    return _fields(values, anchors)


def _key_pattern(indent: bytes) -> re.Pattern[bytes]:
    pattern = _KEY_PATTERNS.get(indent)
    if pattern is None:
        keys = b"|".join(
            re.escape(key) for key in (*_SCALAR_KEY_BYTES, b"files", b"requested_specs")
        )
        pattern = re.compile(
            rb"\n" + re.escape(indent) + rb'"(' + keys + rb')"[ \t]*:[ \t]*'
            rb'("[^"\\\r\n]*"(?=[ \t]*[,}\r\n])|null(?=[ \t]*[,}\r\n])|\[|)'
        )
        _KEY_PATTERNS[indent] = pattern
    return pattern


_KEY_PATTERNS: dict[bytes, re.Pattern[bytes]] = {}


def _decode_plain(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _scan_anchors(data: bytes, start: int, indent: bytes) -> list[str] | None:
    """Anchor paths among the ``files`` entries (one per line) after ``[`` at ``start``."""
    line_end = data.find(b"\n", start)
    first_line = data[start : len(data) if line_end == -1 else line_end].strip()
    if first_line in (b"]", b"],"):
        return []
    if first_line:
        return None
    end = data.find(b"\n" + indent + b"]", start)
    if (
        end == -1
        or data.find(b"\n" + indent + b'"', start, end) != -1
        or data.find(b"\\", start, end) != -1
    ):
        return None
    anchors: list[tuple[int, str]] = []
    for suffix in _ANCHOR_SUFFIXES:
        needle = suffix.encode() + b'"'
        hit = data.find(needle, start, end)
        while hit != -1:
            quote = data.rfind(b'"', start, hit)
            path = None if quote == -1 else _decode_plain(data[quote + 1 : hit + len(suffix)])
            if path is None:
                return None
            anchors.append((quote, path))
            hit = data.find(needle, hit + 1, end)
    return [path for _, path in sorted(anchors)]


def _parse_record(data: bytes, source: str) -> _Read:
    where = f"{source}: " if source else ""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        return f"{where}not valid JSON: {error}"
    if not isinstance(document, dict):
        return f"{where}not a JSON object"
    values: dict[str, str | None] = {}
    for key in _SCALAR_KEYS:
        value = document.get(key)
        if key in _REQUIRED_KEYS and not (isinstance(value, str) and value):
            return f"{where}no {key!r} string"
        values[key] = value if isinstance(value, str) else None
    files = document.get("files")
    anchors: list[str] = []
    if isinstance(files, list):
        anchors = [
            entry.replace("\\", "/")
            for entry in files
            if isinstance(entry, str) and entry.endswith(_ANCHOR_SUFFIXES)
        ]
    specs = document.get("requested_specs")
    listed = [s for s in specs if isinstance(s, str) and s] if isinstance(specs, list) else []
    return _fields(values, anchors, listed)


def _fields(
    values: dict[str, str | None], anchors: list[str], listed_specs: list[str] | None = None
) -> _Fields:
    channel, subdir = _channel_and_subdir(values["channel"], values["subdir"], values["url"])
    requested = values["requested_spec"]
    if requested in ("", "None"):
        requested = None
    requested_specs = tuple(listed_specs or ([requested] if requested else []))
    return _Fields(
        name=values["name"] or "",
        version=values["version"] or "",
        build=values["build"] or "",
        channel=channel,
        subdir=subdir,
        requested_spec=requested,
        python_site_packages_path=values["python_site_packages_path"],
        candidates=tuple(dict.fromkeys(_candidates(anchors))),
        requested_specs=requested_specs,
    )


def _candidates(anchors: list[str]) -> Iterator[str]:
    for anchor in anchors:
        if anchor.endswith(".dist-info/RECORD"):
            path = anchor[: -len("/RECORD")]
        elif anchor.endswith(".egg-info/PKG-INFO"):
            path = anchor[: -len("/PKG-INFO")]
        else:
            path = anchor
        base = path.rpartition("/")[2]
        if base and not base.startswith("."):
            yield path


def _channel_and_subdir(
    channel: str | None, subdir: str | None, url: str | None
) -> tuple[str, str]:
    source = channel
    if not source and url:
        source = url.rpartition("/")[0]  # the package URL without its file name
    if not subdir and source:
        last = source.rstrip("/").rpartition("/")[2]
        subdir = last if last in KNOWN_SUBDIRS else ""
    return (normalise_channel(source) if source else ""), subdir or ""


# --- from what was read to records ----------------------------------------------------


def _record_set(meta_dir: str, reads: list[tuple[str, _Read]]) -> RecordSet:
    """Records from what was read, in file-name order (``reads`` is sorted)."""
    problems: list[str] = []
    python = next(
        (read for _, read in reads if not isinstance(read, str) and read.name == "python"), None
    )
    site_packages = _site_packages(python)
    records: list[CondaRecord] = []
    seen: dict[str, str] = {}
    prefix = meta_dir + os.sep
    for filename, read in reads:
        if isinstance(read, str):
            problems.append(read)
            continue
        first = seen.setdefault(read.name, filename)
        if first != filename:
            problems.append(f"{prefix}{filename}: a second record for {read.name!r} ({first})")
        dist_infos = read.candidates
        if dist_infos:
            dist_infos = tuple(p for p in dist_infos if _in_site_packages(p, site_packages))
        records.append(
            CondaRecord(
                name=read.name,
                version=read.version,
                build=read.build,
                channel=read.channel,
                subdir=read.subdir,
                requested_spec=read.requested_spec,
                dist_infos=dist_infos,
                python_site_packages_path=read.python_site_packages_path,
                file=prefix + filename,
                requested_specs=read.requested_specs,
            )
        )
    return RecordSet(tuple(records), tuple(problems))


def _site_packages(python: _Fields | None) -> tuple[str, bool] | None:
    """The python record's prefix-relative site-packages, and whether it is Windows'."""
    if python is None:
        return None
    windows = python.subdir.startswith("win-")
    if python.python_site_packages_path:
        return _normalise_relpath(python.python_site_packages_path), windows
    if windows:
        return "Lib/site-packages", True
    xy = _VERSION_XY_RE.match(python.version)
    if xy is None:
        return None
    return f"lib/python{xy.group(1)}.{xy.group(2)}/site-packages", False


def _in_site_packages(path: str, site_packages: tuple[str, bool] | None) -> bool:
    parent = path.rpartition("/")[0]
    if site_packages is None:
        return parent.rpartition("/")[2].casefold() == "site-packages"
    directory, windows = site_packages
    return parent == directory or (windows and parent.casefold() == directory.casefold())


def _normalise_relpath(path: str) -> str:
    text = path.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.strip("/")


# --- the listing and the cache --------------------------------------------------------


def _list_records(meta_dir: str) -> list[tuple[str, _Stamp]]:
    """The ``*.json`` files of conda-meta with their stamps."""
    listing: list[tuple[str, _Stamp]] = []
    with os.scandir(meta_dir) as scan:
        for entry in scan:
            if not entry.name.endswith(".json"):
                continue
            try:
                stat = entry.stat()
            except OSError:
                listing.append((entry.name, _UNTRUSTED))
                continue
            if S_ISREG(stat.st_mode):
                stamp = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
                listing.append((entry.name, stamp))
            elif not S_ISDIR(stat.st_mode):  # a FIFO or a device: reported, never opened
                listing.append((entry.name, _UNTRUSTED))
    listing.sort()
    return listing


class _Cache(NamedTuple):
    """A cache file: parallel lists of record file names, stamps and reads (as JSON)."""

    dir_stamp: tuple[int, int, int, int] | None
    names: list[str]
    stamps: list[object]
    raw_reads: list[object]

    def reads(self) -> list[tuple[str, _Read]] | None:
        """Every cached read, or None if any of them is damaged."""
        reads: list[tuple[str, _Read]] = []
        for name, raw in zip(self.names, self.raw_reads):
            read = _read_from_json(raw)
            if read is None:
                return None
            reads.append((name, read))
        return reads

    def by_name(self) -> dict[str, tuple[_Stamp | None, object]]:
        return {
            name: (_stamp_from_json(stamp), raw)
            for name, stamp, raw in zip(self.names, self.stamps, self.raw_reads)
        }


def _cache_file(meta_dir: str, cache_dir: str | os.PathLike[str] | None) -> str | None:
    if cache_dir is not None:
        base = os.fspath(cache_dir)
    else:
        found = user_cache_dir(os.environ)
        if found is None:
            return None
        base = found
    # one file per conda-meta: a readable hint (the prefix's name) and a checksum of
    # the full path; the path itself is stored inside and checked on load
    where = os.path.abspath(meta_dir)
    hint = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(os.path.dirname(where)))[:40]
    return os.path.join(base, f"conda-records-{hint}-{zlib.crc32(os.fsencode(where)):08x}.json")


def _load_cache(cache_file: str, meta_dir: str) -> _Cache | None:
    try:
        document = json.loads(read_bytes(cache_file, limit=MAX_CACHE_BYTES))
    except (OSError, ValueError, RecursionError):
        return None
    if not (
        isinstance(document, dict)
        and document.get("format") == _CACHE_FORMAT
        and document.get("version") == CACHE_VERSION
        and document.get("conda_meta") == os.path.abspath(meta_dir)
    ):
        return None
    names, stamps, reads = document.get("names"), document.get("stamps"), document.get("reads")
    if not (
        isinstance(names, list)
        and isinstance(stamps, list)
        and isinstance(reads, list)
        and len(names) == len(stamps) == len(reads)
        and all(type(name) is str for name in names)
    ):
        return None
    return _Cache(_stamp_from_json(document.get("dir")), names, stamps, reads)


def _stamp_from_json(value: object) -> _Stamp | None:
    if isinstance(value, list) and len(value) == 4 and all(type(n) is int for n in value):
        return (value[0], value[1], value[2], value[3])
    return None


def _read_from_json(value: object) -> _Read | None:
    if type(value) is str:
        return value
    if type(value) is not list or len(value) != len(_Fields._fields):
        return None
    name, version, build, channel, subdir, requested, site_packages, candidates, specs = value
    if not (
        type(name) is str
        and type(version) is str
        and type(build) is str
        and type(channel) is str
        and type(subdir) is str
        and (requested is None or type(requested) is str)
        and (site_packages is None or type(site_packages) is str)
        and type(candidates) is list
        and all(type(path) is str for path in candidates)
        and type(specs) is list
        and all(type(spec) is str for spec in specs)
    ):
        return None
    return _Fields(
        name,
        version,
        build,
        channel,
        subdir,
        requested,
        site_packages,
        tuple(candidates),
        tuple(specs),
    )


def _store_cache(
    cache_file: str,
    meta_dir: str,
    dir_stamp: tuple[int, int, int, int] | None,
    stamps: list[_Stamp],
    reads: list[tuple[str, _Read]],
) -> None:
    document = {
        "format": _CACHE_FORMAT,
        "version": CACHE_VERSION,
        "conda_meta": os.path.abspath(meta_dir),
        "dir": dir_stamp,
        "names": [name for name, _ in reads],
        "stamps": stamps,
        "reads": [read for _, read in reads],
    }
    with contextlib.suppress(OSError, ValueError):
        text = json.dumps(document, separators=(",", ":"))
        write_atomic(cache_file, text, mode=0o600, dir_mode=0o700)
