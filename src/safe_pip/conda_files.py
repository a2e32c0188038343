"""Which conda package lists a file: the ``files`` of ``conda-meta/*.json``, indexed.

File-level ownership (a wheel named ``six-fork`` that ships ``six/__init__.py``,
a conda package with no dist-info at all) needs the files conda linked, not
only its dist-infos.  Records list thousands of files, so the index keeps only
a *key* per file: the entry directly inside ``site-packages`` for files there
(``lib/python3.11/site-packages/six``), and the file itself for ``bin/``
(``bin/python``).  Those are where pip writes (a wheel's packages, modules and
scripts); files conda linked elsewhere (``lib/*.so``, ``share/``, ``include/``)
are not indexed, so a wheel's ``.data/data`` or headers over them are not seen
before the run.  A path whose key is in the index is then confirmed against
the full ``files`` of the few records that have that key.

The index is cached per user (``$XDG_CACHE_HOME/safe-pip/conda-files-*.json``)
and rebuilt when the ``conda-meta`` directory changes (conda removes and writes
record files, which changes the directory's stamp).  Stamps younger than two
seconds are not trusted, as in ``conda_records``.  Records with a ``pypi_*``
build are conda's notes of packages pip installed: their files are not conda's.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Mapping

from safe_pip.userdirs import cache_dir

_FORMAT = "safe-pip/conda-files"
_VERSION = 2
_RACY_NS = 2_000_000_000


def file_key(rel: str) -> str | None:
    """The index key of a prefix-relative, ``/``-separated path; None for a path outside
    site-packages and ``bin/`` (not indexed: see the module's docstring)."""
    parts = rel.split("/")
    for index, part in enumerate(parts[:-1]):
        if part == "site-packages":
            return "/".join(parts[: index + 2])
    if len(parts) == 2 and parts[0] in ("bin", "Scripts"):
        return rel
    return None


def _record_files(path: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or str(data.get("build", "")).startswith("pypi_"):
        return []  # conda's note of a package pip installed (ownership.is_pip_note)
    files = data.get("files")
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


class CondaFiles:
    """The files conda linked into one prefix; ``owner(rel)`` names the record file."""

    def __init__(self, prefix: str, environ: Mapping[str, str]) -> None:
        self.prefix = os.path.realpath(prefix)
        self.meta = os.path.join(self.prefix, "conda-meta")
        self._environ = environ
        self._index: dict[str, list[str]] | None = None
        self._files: dict[str, frozenset[str]] = {}
        #: directory -> its prefix-relative path with a trailing "/" (None: outside)
        self._dirs: dict[str, str | None] = {}

    def relative(self, path: str) -> str | None:
        """``path`` relative to the prefix (symlinks in its directory resolved), or None."""
        directory, _, base = path.rpartition("/")
        rel_dir = self._dirs.get(directory, "")
        if rel_dir == "":
            real = os.path.realpath(directory or "/") + "/"
            root = self.prefix.rstrip("/") + "/"
            rel_dir = real[len(root) :] if real.startswith(root) else None
            self._dirs[directory] = rel_dir
        return None if rel_dir is None else rel_dir + base

    def owner(self, rel: str) -> str | None:
        """The record file (``conda-meta/x.json``) that lists ``rel``, or None."""
        key = file_key(rel)
        candidates = self.index().get(key) if key is not None else None
        if not candidates:
            return None
        for name in candidates:
            record = os.path.join(self.meta, name)
            files = self._files.get(record)
            if files is None:
                files = self._files[record] = frozenset(_record_files(record))
            if rel in files:
                return record
        return None

    def index(self) -> dict[str, list[str]]:
        if self._index is None:
            self._index = self._load()
        return self._index

    def _stamp(self) -> list[int] | None:
        try:
            info = os.stat(self.meta)
        except OSError:
            return None
        return [info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]

    def _cache_file(self) -> str | None:
        base = cache_dir(self._environ)
        if base is None:
            return None
        return os.path.join(base, f"conda-files-{zlib.crc32(os.fsencode(self.prefix)):08x}.json")

    def _load(self) -> dict[str, list[str]]:
        stamp = self._stamp()
        if stamp is None:
            return {}
        cache = self._cache_file()
        if cache is not None:
            try:
                with open(cache, "rb") as handle:
                    data = json.loads(handle.read())
                if (
                    isinstance(data, dict)
                    and data.get("format") == _FORMAT
                    and data.get("version") == _VERSION
                    and data.get("prefix") == self.prefix
                    and data.get("stamp") == stamp
                    and isinstance(data.get("index"), dict)
                ):
                    return data["index"]  # type: ignore[no-any-return]
            except (OSError, ValueError):
                pass
        index = self._build()
        if cache is not None and max(stamp[0], stamp[1]) < time.time_ns() - _RACY_NS:
            self._save(cache, stamp, index)
        return index

    def _build(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        try:
            names = sorted(n for n in os.listdir(self.meta) if n.endswith(".json"))
        except OSError:
            return index
        for name in names:
            files = _record_files(os.path.join(self.meta, name))
            self._files[os.path.join(self.meta, name)] = frozenset(files)
            for key in {file_key(f) for f in files} - {None}:
                index.setdefault(str(key), []).append(name)
        return index

    def _save(self, cache: str, stamp: list[int], index: dict[str, list[str]]) -> None:
        temp = f"{cache}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            with open(os.open(temp, flags, 0o600), "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "format": _FORMAT,
                        "version": _VERSION,
                        "prefix": self.prefix,
                        "stamp": stamp,
                        "index": index,
                    },
                    handle,
                    separators=(",", ":"),
                )
            os.replace(temp, cache)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(temp)
