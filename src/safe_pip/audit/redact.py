"""Secrets out of everything safe-pip records or prints: URL credentials and inline certificates.

What is replaced with ``***``:

* the userinfo of any URL (``https://user:token@host/...``,
  ``git+https://github_pat_...@github.com/...``, ``https://oauth2:glpat-...@gitlab...``):
  scheme, host, port, path, ``@rev`` and fragment stay;
* ``user:password@host`` without a scheme (pip's ``--proxy`` form);
* inline PEM blocks (``-----BEGIN ...``), and any value of ``--cert`` or
  ``--client-cert`` that is not a plain path (safe-pip never reads those files).

Kept on purpose: ``${VAR}`` references (pip expands them in requirement files;
they name a secret, they are not one) and the bare user name of an ``ssh`` URL
(``git+ssh://git@github.com/...``: ssh authenticates with keys, not the URL).

A secret that contains ``/``, ``?`` or ``#`` unencoded does not make a valid URL;
it is caught only when the text before it reads as ``user:...`` with a
non-numeric port.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MASK = "***"

# patterns compiled on first use (``re`` caches them): this module is imported on every install
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_AUTHORITY_END = r"[/?#\s]"
_WHITESPACE = r"\s"
_ENV_REFERENCE = r"\$\{[A-Za-z0-9_]+\}(?::\$\{[A-Za-z0-9_]+\})?"
_PEM_BLOCK = r"(?s)-----BEGIN [^\n-]*-----.*?(?:-----END [^\n-]*-----|\Z)"
_TOKENS = r"(\s+)"
_SCHEME_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_CHARS = _SCHEME_LETTERS | frozenset("0123456789+.-")

#: pip options whose value is a certificate path (with their unambiguous abbreviations)
_CERT_OPTIONS = ("--cert", "--client-cert")
_CERT_MIN_PREFIX = {"--cert": "--ce", "--client-cert": "--cl"}


def _harmless_userinfo(scheme: str, userinfo: str) -> bool:
    if re.fullmatch(_ENV_REFERENCE, userinfo):
        return True
    # ssh://git@host: the user name is not a credential
    return scheme.lower().rstrip(":/").endswith("ssh") and ":" not in userinfo and bool(userinfo)


def _redact_schemeless(text: str) -> str:
    """``user:password@host[:port][/...]`` with no scheme, as pip's ``--proxy`` takes it."""
    head, slash, rest = text.partition("/")
    if re.search(_WHITESPACE, head):
        return text
    userinfo, at, host = head.rpartition("@")
    if not at or not host or ":" not in userinfo or _harmless_userinfo("", userinfo):
        return text
    return f"{MASK}@{host}{slash}{rest}"


class _Finder:
    """The next match at or after a position, each search resuming where the last one ended.

    ``redact_url`` asks about positions in increasing order; searching the text
    again from each of them made it quadratic (a 64k-character argument took 20 s).
    """

    __slots__ = ("_found", "_pattern", "_searched", "_text")

    def __init__(self, pattern: str, text: str) -> None:
        self._pattern = re.compile(pattern)
        self._text = text
        self._searched = -1  # no match in [self._searched, self._found)
        self._found = -1

    def next(self, position: int) -> int:
        """The first match at or after ``position``, or ``len(text)``."""
        if not self._searched <= position <= self._found:
            match = self._pattern.search(self._text, position)
            self._searched = position
            self._found = match.start() if match else len(self._text)
        return self._found


def _schemes(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each ``_SCHEME`` match, as ``re.finditer`` finds them, in linear time.

    The regular expression retried the run of scheme characters before a
    ``://`` from each of its positions.  Here each run is walked once, back
    from its ``://``: the match starts at the run's first letter.
    """
    position = 0
    while True:
        colon = text.find("://", position)
        if colon == -1:
            return
        run = colon
        while run > position and text[run - 1] in _SCHEME_CHARS:
            run -= 1
        first = next((i for i in range(run, colon) if text[i] in _SCHEME_LETTERS), -1)
        if first == -1:
            position = colon + 1
            continue
        yield first, colon + 3
        position = colon + 3


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    if "://" not in text:
        return _redact_schemeless(text)
    authority_ends = _Finder(_AUTHORITY_END, text)
    whitespace = _Finder(_WHITESPACE, text)
    ats = _Finder("@", text)
    pieces: list[str] = []
    done = 0
    for scheme_start, start in _schemes(text):
        if scheme_start < done:
            continue
        authority_end = authority_ends.next(start)
        userinfo_end = text.rfind("@", start, authority_end)
        if userinfo_end < 0:
            # a secret with /?# in it (``user:pa/ss@host``): up to the first '@' in the same
            # token, when the authority reads as user:... with a port that is not a number,
            # and on to the last '@' before the host's end (``user:pa/ss@wo@rd@host``)
            authority = text[start:authority_end]
            if authority.startswith("[") or ":" not in authority:
                continue
            if authority.rsplit(":", 1)[1].isdigit():
                continue
            at = ats.next(authority_end)
            if at >= whitespace.next(authority_end):
                continue
            userinfo_end = text.rfind("@", at, authority_ends.next(at + 1))
        if _harmless_userinfo(text[scheme_start:start], text[start:userinfo_end]):
            continue
        pieces.append(text[done:start])
        pieces.append(MASK)
        done = userinfo_end
    pieces.append(text[done:])
    return "".join(pieces)


def redact_pem(text: str) -> str:
    """``text`` with inline PEM blocks (certificates, keys) replaced by ``***``."""
    if "-----BEGIN " not in text:
        return text
    return re.sub(_PEM_BLOCK, MASK, text)


def redact_text(text: str) -> str:
    """Any text (an argument, a reason, a path): URL credentials and PEM blocks out."""
    return redact_url(redact_pem(text))


def _is_cert_option(option: str) -> bool:
    return any(
        full.startswith(option) and option.startswith(_CERT_MIN_PREFIX[full])
        for full in _CERT_OPTIONS
    )


def _redact_cert_value(value: str) -> str:
    """A certificate path is fine; contents (PEM, anything multi-line) are not."""
    if "\n" in value or "-----" in value:
        return MASK
    return redact_text(value)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A pip command line with every secret replaced by ``***``.

    Covers URL-valued options in every spelling (``-i URL``, ``--index-url=URL``,
    ``-iURL``, ``--extra-index-url``, ``-f``/``--find-links``, ``--proxy``,
    ``-e``, ``-r``/``-c`` URLs), requirement arguments (``name @ URL``, VCS
    URLs), and ``--cert``/``--client-cert`` values.
    """
    redacted: list[str] = []
    cert_value_next = False
    for arg in argv:
        if cert_value_next:
            redacted.append(_redact_cert_value(arg))
            cert_value_next = False
            continue
        if arg.startswith("--") and "=" in arg:
            option, _, value = arg.partition("=")
            cert = _is_cert_option(option)
            value = _redact_cert_value(value) if cert else redact_text(value)
            redacted.append(f"{option}={value}")
            continue
        cert_value_next = _is_cert_option(arg)
        redacted.append(redact_text(arg))
    return redacted


def _logical_lines(text: str) -> Iterator[str]:
    """Lines as pip reads a requirement file: a trailing backslash joins the next line."""
    pending: list[str] = []
    for line in text.splitlines():
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield "".join(pending)
        pending = []
    rest = "".join(pending)
    if rest:
        yield rest


def redact_requirement_file_lines(text: str) -> list[str]:
    """The logical lines of a requirement file, secrets replaced by ``***``.

    Continuation lines are joined (a secret may be split across them), and
    whitespace inside a line is kept.  Options on their own lines
    (``--index-url``, ``-i``, ``--extra-index-url``, ``-f``, ``-e``, ``-r``)
    and requirements (``name @ URL``, VCS URLs) are redacted like argv.
    """
    return list(iter_redacted_requirement_lines(text))


def iter_redacted_requirement_lines(text: str) -> Iterator[str]:
    """``redact_requirement_file_lines``, one line at a time (a reader that keeps the
    first N lines of a 16 MiB file need not redact the rest)."""
    for line in _logical_lines(text):
        parts = re.split(_TOKENS, line)
        parts[0::2] = redact_argv(parts[0::2])
        yield "".join(parts)
