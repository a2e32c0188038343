"""Fuzz targets for every parser of outside input, and the properties each must keep.

One target = a hypothesis strategy for its input and a check that asserts what
must hold for *any* input: the documented error and no other, a time bound,
and where there is one, a round trip or an oracle (conda's own regular
expression, the full JSON parse).  ``tests/test_fuzz.py`` runs each for a few
dozen examples in the unit tier; ``scripts/fuzz.py`` runs them for minutes
(docs/fuzzing.md).  The audit log reader has its own targets with the audit code.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from safe_pip.audit.redact import MASK, redact_argv, redact_requirement_file_lines, redact_text
from safe_pip.conda_history import (
    MAX_PROBLEMS,
    History,
    header_timestamp,
    parse_history,
    spec_name,
)
from safe_pip.conda_records import extract_record
from safe_pip.errors import InputError, PolicyError
from safe_pip.names import canonical, project_name, without_extras
from safe_pip.pipcli import Operation, parse_pip_command_line
from safe_pip.pipconfig import PipConfig, normalize_key, parse_config_text
from safe_pip.policy import KEYS, load_policy
from safe_pip.values import replace

#: What one check may take on the inputs the strategies make (a few KiB at most): the
#: parsers are linear, so this is generous; a quadratic one blows through it.
TIME_BOUND_S = 0.5


@dataclass(frozen=True)
class Target:
    name: str
    #: the parser(s) exercised, for docs/fuzzing.md
    parses: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


@contextmanager
def within(seconds: float = TIME_BOUND_S) -> Iterator[None]:
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    assert took < seconds, f"took {took:.3f} s (bound {seconds} s)"


def _glue(fragments: st.SearchStrategy[str], max_size: int = 40) -> st.SearchStrategy[str]:
    """Text made of structural fragments and noise: reaches deeper than random characters."""
    noise = st.text(max_size=12)
    return st.lists(st.one_of(fragments, noise), max_size=max_size).map("".join)


# --- conda-meta/history ------------------------------------------------------------------

_HISTORY_FRAGMENTS = st.sampled_from(
    [
        "\n",
        "==> 2024-01-02 03:04:05 <==\n",
        "==>",
        "<==",
        " " * 50,
        "\t",
        "# cmd: conda install numpy\n",
        "# conda version: 24.1.0\n",
        "# update specs: ['numpy>=1.2', \"python=3.12\"]\n",
        "# install specs: numpy,<2.0,scipy\n",
        "# remove specs: [u'six']\n",
        "# neutered specs: ['x\\'y']\n",
        "# create specs: [",
        "+conda-forge/linux-64::numpy-1.26.4-py312h0_0\n",
        "-defaults::six-1.16.0-pyhd3eb1b0_1\n",
        "python-3.12.1-h0_0\n",
        "https://user:t@conda.example.org/t/tok/conda-forge/noarch::a-1-0\n",
        "\ufeff",
        "\r\n",
        "\x85",
    ]
)


def _render_history(history: History) -> str:
    """Text that parses back to the same blocks (what conda would have written)."""
    lines: list[str] = []
    for block in history.blocks:
        lines.append(f"==> {block.timestamp} <==")
        if block.cmd is not None:
            lines.append(f"# cmd: {block.cmd}")
        if block.conda_version is not None:
            lines.append(f"# conda version: {block.conda_version}")
        install_word = "create" if block.request_action == "create" else "install"
        specs = [("update", block.update_specs), (install_word, block.install_specs)]
        if block.request_action == "update":
            specs.reverse()  # the block's request is the last install/create/update line
        specs += [("remove", block.remove_specs), ("neutered", block.neutered_specs)]
        lines.extend(f"# {action} specs: {list(group)!r}" for action, group in specs if group)
        if block.full_state:
            lines.extend(str(dist) for dist in block.added)
        else:
            lines.extend(f"-{dist}" for dist in block.removed)
            lines.extend(f"+{dist}" for dist in block.added)
    return "\n".join(lines) + "\n"


def check_history(text: str) -> None:
    with within():
        history = parse_history(text)
    assert len(history.problems) <= MAX_PROBLEMS + 1
    # what export and status derive from it never fails, and agrees with the blocks
    with within():
        specs = history.requested_specs()
        installed = history.installed()
        history.export_specs(installed)
        history.channels()
        history.last_change_time()
    assert all(spec_name(spec) == name for name, spec in specs.items())
    added = {dist for block in history.blocks for dist in block.added}
    assert set(installed.values()) <= added
    # round trip: the blocks, written out as conda writes them, read back the same
    again = parse_history(_render_history(history))
    assert [replace(b, line=0) for b in again.blocks] == [
        replace(b, line=0) for b in history.blocks
    ]


# conda's header expression: the oracle for the linear header_timestamp
_CONDA_HEADER = re.compile(r"==>\s*(.+?)\s*<==")


def check_header(rest: str) -> None:
    line = "==>" + rest
    expected = _CONDA_HEADER.match(line)
    assert header_timestamp(line) == (expected.group(1) if expected else None)


# --- conda-meta/*.json -------------------------------------------------------------------

_RECORD_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
_RECORDS = st.fixed_dictionaries(
    {
        "name": _RECORD_TEXT.filter(bool),
        "version": _RECORD_TEXT.filter(bool),
        "build": _RECORD_TEXT.filter(bool),
    },
    optional={
        "channel": st.one_of(st.none(), _RECORD_TEXT),
        "subdir": _RECORD_TEXT,
        "url": _RECORD_TEXT,
        "requested_spec": st.one_of(st.none(), _RECORD_TEXT),
        "files": st.lists(
            st.one_of(
                _RECORD_TEXT,
                st.sampled_from(
                    [
                        "lib/python3.12/site-packages/a-1.dist-info/RECORD",
                        "lib/python3.12/site-packages/b.egg-info/PKG-INFO",
                        "lib/python3.12/site-packages/c.egg-info",
                        'x".dist-info/RECORD',
                    ]
                ),
            ),
            max_size=8,
        ),
        "depends": st.lists(_RECORD_TEXT, max_size=3),
        "paths_data": st.fixed_dictionaries({"paths": st.lists(_RECORD_TEXT, max_size=3)}),
    },
)


def check_record(record: dict[str, Any]) -> None:
    """conda's pretty-printed file and the same record compact read the same (scan vs parse)."""
    pretty = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False).encode()
    compact = json.dumps(record, separators=(",", ":")).encode()
    with within():
        scanned = extract_record(pretty, "r.json")
        parsed = extract_record(compact, "r.json")
    assert scanned == parsed


def check_record_bytes(data: bytes) -> None:
    with within():
        read = extract_record(data, "r.json")
    assert isinstance(read, str) or read.name  # a problem, or a record with a name


# --- the policy ---------------------------------------------------------------------------

_POLICY_FRAGMENTS = st.sampled_from(
    [
        "\n",
        "version = 1\n",
        "[install]\n",
        "[[envs]]\n",
        'path = "/opt/conda/envs/*"\n',
        'conda-env = "dev-only"\n',
        "dev-installs = false\n",
        'allowed-destinations = ["/srv/x"]\n',
        "[audit]\n",
        'location = "user"\n',
        "[delegate]\nkeys = ['install.venv']\n",
        "x = [[[[1]]]]\n",
        "y = {a = {b = 1}}\n",
        '"""',
        "'",
        "=",
        "9" * 40,
        " " * 40,
    ]
)


@contextmanager
def _policy_file(text: str) -> Iterator[str]:
    handle, path = tempfile.mkstemp(suffix=".toml")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8", "surrogatepass"))
        yield path
    finally:
        os.unlink(path)


def check_policy(text: str) -> None:
    with _policy_file(text) as path:
        try:
            with within():
                policy = load_policy(None, system_path=path)
        except PolicyError as error:  # the one documented error, with the file named
            assert error.path == path or path in error.message
            return
        for name, value in policy.values.items():
            key = KEYS[name]
            if key.kind in ("mode", "choice"):
                assert value in key.choices
            elif key.kind == "bool":
                assert isinstance(value, bool)
            elif key.kind == "str":
                assert isinstance(value, str)


_TOML_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x7f"), max_size=30
)
_POLICY_VALUES = st.fixed_dictionaries(
    {},
    optional={
        **{
            name: st.sampled_from(key.choices)
            for name, key in KEYS.items()
            if key.kind in ("mode", "choice")
        },
        **{name: st.booleans() for name, key in KEYS.items() if key.kind == "bool"},
        "messages.contact": _TOML_TEXT,
        "marker.message": _TOML_TEXT,
    },
)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string


def check_policy_round_trip(values: dict[str, Any]) -> None:
    tables: dict[str, list[str]] = {}
    for name, value in values.items():
        section, leaf = name.split(".", 1)
        tables.setdefault(section, []).append(f"{leaf} = {_toml_value(value)}")
    text = "version = 1\n" + "".join(
        f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in tables.items()
    )
    with _policy_file(text) as path:
        policy = load_policy(None, system_path=path)
        for name, value in values.items():
            assert policy.values[name] == value, name


# --- pip configuration files ----------------------------------------------------------------

_CONFIG_FRAGMENTS = st.sampled_from(
    [
        "\n",
        "[global]\n",
        "[install]\n",
        "index-url = https://u:p@example.org/simple\n",
        "no_user: 1\n",
        "  continued\n",
        "# comment\n",
        "; comment\n",
        "[DEFAULT]\n",
        "=",
        ":",
        " " * 60,
        "[",
        "]",
        "\r",
    ]
)


def check_config_text(text: str) -> None:
    try:
        with within():
            parsed = parse_config_text(text, "pip.conf", "global")
    except InputError as error:  # pip refuses the same files (exit 2)
        assert error.path == "pip.conf"
        return
    for section in parsed.sections.values():
        for key, value in section.items():
            assert key == normalize_key(key)
            assert isinstance(value.value, str)


_CONFIG_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_CONFIG_VALUES = st.text(
    st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1, max_size=20
).map(str.strip)
_CONFIGS = st.dictionaries(
    st.sampled_from(["global", "install", "uninstall", "download"]),
    st.dictionaries(_CONFIG_NAMES, _CONFIG_VALUES, min_size=1, max_size=4),
    max_size=3,
)


def check_config_round_trip(sections: dict[str, dict[str, str]]) -> None:
    """Written as pip.conf, read back: the same values, as configparser itself reads them."""
    text = "".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
        for name, keys in sections.items()
    )
    parsed = parse_config_text(text, "pip.conf", "global")
    reference = configparser.RawConfigParser()
    reference.read_string(text)
    for name in reference.sections():
        got = {key: value.value for key, value in parsed.sections[name].items()}
        assert got == {normalize_key(k): v for k, v in reference.items(name)}
    assert set(parsed.sections) == set(sections)


# --- the pip command line -----------------------------------------------------------------

_ARGV_TOKENS = st.sampled_from(
    [
        "install",
        "uninstall",
        "list",
        "download",
        "-r",
        "req.txt",
        "--user",
        "--us",
        "-U",
        "--target",
        "--target=/tmp/x",
        "--prefix=",
        "--root",
        "-e",
        ".",
        "--no-build-isolation",
        "--isolated",
        "--python",
        "/usr/bin/python3",
        "-i",
        "https://u:p@example.org/simple",
        "--",
        "-vvv",
        "--no-user",
        "--config-settings",
        "a=b",
        "numpy>=1",
        "--break-system-packages",
        "-qqU",
        "--require-virtualenv",
    ]
)
_ARGVS = st.lists(st.one_of(_ARGV_TOKENS, st.text(max_size=8)), max_size=8)


def check_argv(argv: list[str]) -> None:
    try:
        with within():
            op = parse_pip_command_line(argv, {}, PipConfig())
    except InputError:  # a bad option value, named
        return
    except Exception as error:  # UsageError (fail closed) is the only other outcome
        assert type(error).__name__ == "UsageError", repr(error)
        return
    assert isinstance(op, Operation)
    assert list(op.argv) == list(argv)


# --- requirements (arguments and -r lines) -----------------------------------------------

_REQUIREMENT_FRAGMENTS = st.sampled_from(
    [
        "six",
        "Foo_Bar",
        "[",
        "]",
        "extra",
        ",",
        ">=1.0",
        "; python_version>'3'",
        " @ ",
        "https://h/x.git#egg=Foo",
        "git+https://u:p@h/r.git@v1",
        "six-1.17.0-py3-none-any.whl",
        "./local",
        ".tar.gz",
        "\n",
    ]
)


def check_requirement_name(text: str) -> None:
    with within():
        name = project_name(text, filesystem=False)
    assert name is None or name == canonical(name)


# pip's own extras expression: the oracle for the linear without_extras
_PIP_EXTRAS = re.compile(r"^(.+)(\[[^\]]+\])$")


def check_without_extras(text: str) -> None:
    expected = _PIP_EXTRAS.match(text)
    assert without_extras(text) == (expected.group(1) if expected else text)


# --- redaction ------------------------------------------------------------------------------

_REDACT_FRAGMENTS = st.sampled_from(
    [
        "https://",
        "git+ssh://",
        "a://",
        "u:p@",
        "@",
        ":",
        "/",
        " ",
        "\n",
        "\\\n",
        "?",
        "#",
        "[",
        "${TOKEN}",
        "--cert=",
        "--index-url=",
        "-----BEGIN X-----",
        "-----END X-----",
        "x" * 30,
    ]
)
# a secret no noise can spell: the noise has no upper-case letters
_SECRETS = st.from_regex(r"[A-Z][A-Z0-9]{11}", fullmatch=True)
_NOISE = _glue(st.sampled_from(["a", "://", "@", "/", ":", " ", "#", "x.y", "--cert"]), 10).map(
    str.lower
)
_SCHEMES = st.sampled_from(["https", "http", "git+https", "svn+http", "hg+https"])


def check_redact(text: str) -> None:
    with within():
        once = redact_text(text)
        argv = redact_argv(text.split(" "))
        redact_requirement_file_lines(text)
    assert redact_text(once) == once  # a redacted text has nothing more to hide
    assert len(argv) == len(text.split(" "))
    if "@" not in text and "-----" not in text:
        assert once == text


@st.composite
def _text_with_secret(draw: st.DrawFn) -> tuple[str, str]:
    secret = draw(_SECRETS)
    user = draw(st.sampled_from(["", "user:", "__token__:", "oauth2:"]))
    url = f"{draw(_SCHEMES)}://{user}{secret}@host.example.org/simple"
    before, after = draw(_NOISE), draw(_NOISE)
    return f"{before} {url} {after}", secret


def check_secret_never_survives(case: tuple[str, str]) -> None:
    text, secret = case
    assert secret not in redact_text(text)
    assert all(secret not in arg for arg in redact_argv(text.split(" ")))
    assert all(secret not in line for line in redact_requirement_file_lines(text))
    assert MASK in redact_text(text)


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target(
            "history",
            "conda_history.parse_history",
            _glue(_HISTORY_FRAGMENTS),
            check_history,
        ),
        Target(
            "history-header",
            "conda_history.header_timestamp (oracle: conda's regex)",
            st.text(st.sampled_from(list("=<> \t\u00a0\u2028\x1cab")), max_size=40),
            check_header,
        ),
        Target("record", "conda_records.extract_record (scan = parse)", _RECORDS, check_record),
        Target("record-bytes", "conda_records.extract_record", st.binary(), check_record_bytes),
        Target("policy", "policy.load_policy", _glue(_POLICY_FRAGMENTS), check_policy),
        Target(
            "policy-round-trip",
            "policy.load_policy (round trip)",
            _POLICY_VALUES,
            check_policy_round_trip,
        ),
        Target(
            "pip-config", "pipconfig.parse_config_text", _glue(_CONFIG_FRAGMENTS), check_config_text
        ),
        Target(
            "pip-config-round-trip",
            "pipconfig.parse_config_text (oracle: configparser)",
            _CONFIGS,
            check_config_round_trip,
        ),
        Target("pip-argv", "pipcli.parse_pip_command_line", _ARGVS, check_argv),
        Target(
            "requirement-name",
            "names.project_name",
            _glue(_REQUIREMENT_FRAGMENTS, 12),
            check_requirement_name,
        ),
        Target(
            "requirement-extras",
            "names.without_extras (oracle: pip's regex)",
            st.text(st.sampled_from(list("ab[]\n ")), max_size=30),
            check_without_extras,
        ),
        Target("redact", "audit.redact (idempotent)", _glue(_REDACT_FRAGMENTS), check_redact),
        Target(
            "redact-secret",
            "audit.redact (no secret survives)",
            _text_with_secret(),
            check_secret_never_survives,
        ),
    )
}
