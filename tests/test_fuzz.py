"""Fuzz targets of every parser (tests/support/fuzz_targets.py), a few dozen examples each,
and the hostile inputs found by fuzzing the earlier code, each within a time bound.

The long runs are ``scripts/fuzz.py``; their results are in docs/fuzzing.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safe_pip.audit.redact import redact_argv, redact_requirement_file_lines, redact_text
from safe_pip.conda_history import parse_history
from safe_pip.conda_records import extract_record
from safe_pip.errors import PolicyError
from safe_pip.names import project_name
from safe_pip.pipcli import parse_pip_command_line
from safe_pip.pipconfig import PipConfig, parse_config_text
from safe_pip.policy import load_policy
from support.fuzz_targets import TARGETS


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(
    max_examples=40,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(data=st.data())
def test_fuzz_target(name: str, data: st.DataObject) -> None:
    target = TARGETS[name]
    target.check(data.draw(target.strategy, label=name))


@contextmanager
def under(seconds: float) -> Iterator[None]:
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    assert took < seconds, f"took {took:.2f} s"


# --- the hostile inputs of issue 9, and their neighbours ------------------------------------


@pytest.mark.parametrize("spaces", [3_000, 5_000, 100_000])
@pytest.mark.parametrize(
    "shape",
    ["==>{s}x", "==> {s}<", "==>{s}x{s}<==", "==>{s}<=={s}", "==> x <=={s}", "==>x{s}y"],
)
def test_history_header_of_many_spaces(shape: str, spaces: int) -> None:
    # was cubic: 3,000 spaces 13 s, 5,000 spaces 58 s
    text = "==> 2024-01-01 00:00:00 <==\n+a-1-0\n" + shape.format(s=" " * spaces) + "\n+b-1-0\n"
    with under(1):
        history = parse_history(text)
        history.installed()


def test_history_with_a_problem_per_line_lists_a_hundred() -> None:
    with under(2):
        history = parse_history("==> t <==\n+" + "+nodash\n" * 100_000)
    assert len(history.problems) == 101 and history.problems[-1].startswith("99900 more")


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000,
        "[" + "-" * 60_000 + "1]",
        "['a'" + ", 'a'" * 30_000,
        "[" + " " * 100_000 + "'a']",
        '["\\x00"' + ", u'x'" * 20_000 + "]",
    ],
)
def test_history_specs_payloads(payload: str) -> None:
    with under(1):
        parse_history("==> t <==\n# cmd: conda\n# update specs: " + payload + "\n")


@pytest.mark.parametrize(
    "argument",
    [
        "a://x:y/" * 8192 + " @",  # was 1.3 s at 64k characters, quadratic
        "a://b:c/" + "a://" * 16_000 + " @",
        "a://" * 16_384,
        "a" * 65_536 + "://@",
        "https://" + "a:" * 32_000 + "@",
        "x@" + "a:/" * 21_000,
        "-----BEGIN " * 6_000,
        "\\\n" * 30_000,
    ],
)
def test_redact_long_arguments(argument: str) -> None:
    with under(1):
        redact_text(argument)
        redact_argv([argument, "--cert", argument])
        redact_requirement_file_lines(argument)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1\nx = " + "[" * 500 + "]" * 500 + "\n", "nested too deeply"),
        ("version = 1\nx = " + "{a = " * 500 + "1" + "}" * 500 + "\n", "nested too deeply"),
        ("version = " + "9" * 4_301 + "\n", "4300 digits"),
        ("version = " + "9" * 200_000 + "\n", "4300 digits"),
        ("\n" * 200_000 + "[install]\nfly = 1\n", "unknown key"),
        ("[install]\n" + "".join(f"k{i} = 1\n" for i in range(10_000)), "unknown key"),
        # fnmatch compiles a run of '[' in quadratic time (50,000: 208 s)
        ('[[envs]]\npath = "' + "[" * 50_000 + '"\n', "a path glob of at most 1024"),
        ('[packages]\ndeny = { "' + "[" * 50_000 + '" = "x" }\n', "glob pattern"),
    ],
    ids=[
        "deep-array",
        "deep-table",
        "int-4301",
        "int-200k",
        "blank-lines",
        "10k-keys",
        "envs-glob",
        "deny-glob",
    ],
)
def test_hostile_policy_is_policy_invalid(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with under(2), pytest.raises(PolicyError, match=message) as raised:
        load_policy(None, system_path=str(path))
    assert raised.value.exit_code == 11
    assert len(raised.value.message) < 500


@pytest.mark.parametrize(
    "text",
    [
        "[s]\na" + " " * 40_000 + "b\n",  # was 11 s: configparser's option expression
        "[s]\n" + ("a" + " " * 2_000 + "b\n") * 200,
        "[" + "]" * 100_000 + "\n",
        "[s]\na =" + " " * 100_000 + "b\n",
        "[s]\na = 1\n" + " x\n" * 100_000,
    ],
)
def test_hostile_pip_config(text: str) -> None:
    with under(1):
        try:
            parse_config_text(text, "pip.conf", "global")
        except Exception as error:
            assert type(error).__name__ == "InputError"


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b'{"name": ' + b"9" * 5_000 + b"}",
        b'{\n  "name": "a",\n  "files": [\n' + b'    "x.egg-info",\n' * 50_000 + b"  ]\n}",
        b'{\n  "name": "' + b"\\" * 100_000 + b'"\n}',
    ],
)
def test_hostile_records(data: bytes) -> None:
    with under(1):
        extract_record(data, "r.json")


@pytest.mark.parametrize(
    "text", ["[" * 65_536, "a" * 30_000 + "[" * 30_000, "a[" + "b," * 30_000 + "]"]
)
def test_hostile_requirements(text: str) -> None:
    # pip's extras expression backtracks: 30,000 '[' after a name took 1.5 s
    with under(1):
        project_name(text, filesystem=False)
        project_name(text + "\n", filesystem=False)


def test_hostile_pip_command_lines() -> None:
    with under(1):
        parse_pip_command_line(["install", "a" * 65_536], {}, PipConfig())
        parse_pip_command_line(["install", *(["-e", "."] * 5_000)], {}, PipConfig())
