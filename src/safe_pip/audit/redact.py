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
from collections.abc import Iterable

MASK = "***"

# patterns compiled on first use (``re`` caches them): this module is imported on every install
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_AUTHORITY_END = r"[/?#\s]"
_WHITESPACE = r"\s"
_ENV_REFERENCE = r"\$\{[A-Za-z0-9_]+\}(?::\$\{[A-Za-z0-9_]+\})?"
_PEM_BLOCK = r"(?s)-----BEGIN [^\n-]*-----.*?(?:-----END [^\n-]*-----|\Z)"
_TOKENS = r"(\s+)"

#: pip options whose value is a certificate path (with their unambiguous abbreviations)
_CERT_OPTIONS = ("--cert", "--client-cert")
_CERT_MIN_PREFIX = {"--cert": "--ce", "--client-cert": "--cl"}


def _harmless_userinfo(scheme: str, userinfo: str) -> bool:
    if re.fullmatch(_ENV_REFERENCE, userinfo):
        return True
    # ssh://git@host: the user name is not a credential
    return scheme.lower().rstrip(":/").endswith("ssh") and ":" not in userinfo and bool(userinfo)


def _malformed_userinfo_end(text: str, start: int, authority_end: int) -> int:
    """Where the userinfo ends when a secret contains ``/?#`` (``user:pa/ss@host``), or -1."""
    authority = text[start:authority_end]
    if authority.startswith("[") or ":" not in authority:
        return -1
    port = authority.rsplit(":", 1)[1]
    if port.isdigit():
        return -1
    match = re.compile(_WHITESPACE).search(text, authority_end)
    token_end = match.start() if match else len(text)
    return text.find("@", authority_end, token_end)


def _redact_schemeless(text: str) -> str:
    """``user:password@host[:port][/...]`` with no scheme, as pip's ``--proxy`` takes it."""
    head, slash, rest = text.partition("/")
    if re.search(_WHITESPACE, head):
        return text
    userinfo, at, host = head.rpartition("@")
    if not at or not host or ":" not in userinfo or _harmless_userinfo("", userinfo):
        return text
    return f"{MASK}@{host}{slash}{rest}"


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    if "@" not in text:
        return text
    if "://" not in text:
        return _redact_schemeless(text)
    authority_end_re = re.compile(_AUTHORITY_END)
    pieces: list[str] = []
    done = 0
    for match in re.finditer(_SCHEME, text):
        if match.start() < done:
            continue
        start = match.end()
        found = authority_end_re.search(text, start)
        authority_end = found.start() if found else len(text)
        at = text.rfind("@", start, authority_end)
        userinfo_end = at if at >= 0 else _malformed_userinfo_end(text, start, authority_end)
        if userinfo_end < 0:
            continue
        if _harmless_userinfo(match.group(), text[start:userinfo_end]):
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


def _logical_lines(text: str) -> list[str]:
    """Lines as pip reads a requirement file: a trailing backslash joins the next line."""
    lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def redact_requirement_file_lines(text: str) -> list[str]:
    """The logical lines of a requirement file, secrets replaced by ``***``.

    Continuation lines are joined (a secret may be split across them), and
    whitespace inside a line is kept.  Options on their own lines
    (``--index-url``, ``-i``, ``--extra-index-url``, ``-f``, ``-e``, ``-r``)
    and requirements (``name @ URL``, VCS URLs) are redacted like argv.
    """
    result: list[str] = []
    for line in _logical_lines(text):
        parts = re.split(_TOKENS, line)
        words = redact_argv(parts[0::2])
        parts[0::2] = words
        result.append("".join(parts))
    return result
