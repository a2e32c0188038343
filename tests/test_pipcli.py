"""pipcli: pip's command line read the way pip reads it.

Each environ here is built by the test; no test sees the machine's PIP_*
variables or config files.  The differential test at the end compares the
parser with the pip installed next to the tests, on generated command lines.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safe_pip.errors import InputError, UsageError
from safe_pip.pipcli import (
    PIP_COMMANDS,
    Operation,
    Setting,
    argv_without_python,
    parse_pip_command_line,
)
from safe_pip.pipconfig import PipConfig, load_pip_config, parse_config_text
from safe_pip.target import PIP_SUBPROCESS_MARKER

HOME = {"HOME": "/nonexistent-home"}


def parse(
    *argv: str, environ: Mapping[str, str] | None = None, config: PipConfig | None = None
) -> Operation:
    return parse_pip_command_line(argv, {**HOME, **(environ or {})}, config)


def config_of(text: str, path: str = "/etc/pip.conf", kind: str = "global") -> PipConfig:
    return PipConfig(files=(parse_config_text(text, path, kind),))


# --- finding the command ------------------------------------------------------------


def test_plain_install() -> None:
    op = parse("install", "--user", "requests>=2", "six")
    assert op.command == "install"
    assert op.mutating
    assert op.args == ("requests>=2", "six")
    assert op.settings == {"use_user_site": Setting(True, "--user")}
    assert op.general_argv == ()
    assert op.command_argv == ("install", "--user", "requests>=2", "six")


@pytest.mark.parametrize(
    "general",
    [
        ["--python", "/py"],
        ["--python=/py"],
        ["--log", "f.log"],
        ["--log-file=f.log"],
        ["--cache-dir", "/c"],
        ["--no-cache-dir"],
        ["--cert", "c.pem"],
        ["--client-cert", "k.pem"],
        ["--proxy", "http://p:3128"],
        ["--timeout", "5"],
        ["--default-timeout=5"],
        ["--retries", "2"],
        ["--exists-action", "a"],
        ["--trusted-host", "h"],
        ["--use-feature", "fast-deps"],
        ["--use-deprecated", "legacy-resolver"],
        ["--keyring-provider", "import"],
        ["--resume-retries", "3"],
        ["-v", "-qq", "--isolated", "--require-venv", "--no-input", "--no-color", "--debug"],
        ["--disable-pip-version-check", "--no-python-version-warning", "--no-proxy-env"],
        ["--", "list"],
    ],
)
def test_general_options_before_the_command(general: list[str]) -> None:
    argv = [*general, "list", "--outdated"] if general[-1] != "list" else general
    op = parse(*argv)
    assert op.command == "list"
    assert not op.mutating


@pytest.mark.parametrize("command", sorted(PIP_COMMANDS - {"install", "uninstall"}))
def test_other_commands_pass_through_unparsed(command: str) -> None:
    op = parse("-v", command, "--whatever", "x")
    assert op.command == command
    assert op.args == ("--whatever", "x")
    assert op.general_argv == ("-v",)
    assert op.settings == {"verbose": Setting(1, "-v")}


@pytest.mark.parametrize(
    ("argv", "command", "args"),
    [
        ((), None, ()),
        (("-v",), None, ()),
        (("--version",), None, ()),
        (("-V", "install", "--user", "x"), None, ()),
        (("--vers", "bogus-command"), None, ()),
        (("help",), "help", ()),
        (("help", "install"), "help", ("install",)),
        (("-h", "install", "--user"), "help", ()),
        (("install", "--user", "-h", "--bogus"), "help", ("install",)),
        (("uninstall", "--help"), "help", ("uninstall",)),
    ],
)
def test_help_version_and_nothing(
    argv: Sequence[str], command: str | None, args: Sequence[str]
) -> None:
    op = parse(*argv)
    assert op.command == command
    assert op.args == tuple(args)
    assert not op.mutating


def test_version_from_global_config_runs_nothing() -> None:
    op = parse("install", "x", config=config_of("[global]\nversion = true\n"))
    assert op.command is None
    assert op.settings["version"] == Setting(True, "/etc/pip.conf [global] version")


def test_unknown_command() -> None:
    with pytest.raises(UsageError, match="unknown pip command 'instal'"):
        parse("instal", "x")


def test_pip_removes_the_first_argument_equal_to_the_command() -> None:
    # pip logs to '-v' and installs 'install' and 'x' (checked with pip 26.3)
    op = parse("--log", "install", "-v", "install", "x")
    assert op.command == "install"
    assert op.args == ("install", "x")
    assert op.settings == {"log": Setting("-v", "--log -v")}
    assert op.general_argv == ("--log", "install", "-v")


# --- optparse rules -------------------------------------------------------------------


def test_prefixes_joined_values_and_end_of_options() -> None:
    op = parse(
        "install", "--targ", "/t1", "--prefi=/p", "-t/t2", "-qqq", "-Ur", "req.txt",
        "-e=x", "--dry", "--rep", "-", "-", "pkg", "--", "--user", "-e",
    )  # fmt: skip
    assert op.args == ("-", "pkg", "--user", "-e")
    assert op.target_dir == Setting("/t2", "-t/t2")
    assert op.prefix_path == Setting("/p", "--prefix=/p")
    assert op.get("quiet") == 3
    assert op.get("upgrade") is True
    assert op.requirement_files == ("req.txt",)
    assert op.editables == ("=x",)
    assert op.dry_run
    assert op.report_file == "-"
    assert op.user_site is None


def test_a_value_may_look_like_an_option() -> None:
    op = parse("install", "--target", "--user", "-r", "-h", "x")
    assert op.target_dir == Setting("--user", "--target --user")
    assert op.requirement_files == ("-h",)
    assert op.command == "install"


def test_exact_name_beats_prefix() -> None:
    op = parse("install", "--pre", "x")
    assert op.get("pre") is True
    assert op.prefix_path is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("install", "--pr", "x"), "ambiguous option --pr"),
        (("install", "--no-b", "x"), "ambiguous option --no-b"),
        (("--lo", "x", "list"), "ambiguous option --lo"),
        (("install", "--bogus", "x"), "no such option: --bogus"),
        (("uninstall", "--user", "x"), "no such option: --user"),
        (("install", "-Z"), "no such option: -Z"),
        (("install", "-qZ"), "no such option: -Z"),
        (("--bogus", "install"), "no such option: --bogus"),
        (("install", "-t"), "-t requires a value"),
        (("install", "--target"), "--target requires a value"),
        (("install", "--user=1"), "--user does not take a value"),
        (("install", "--=x"), "ambiguous option --"),
        (("install", "---user"), "no such option: ---user"),
        (("--python",), "--python requires a value"),
    ],
)
def test_usage_errors_name_the_option(argv: Sequence[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(*argv)


def test_repeated_options_append_and_count() -> None:
    op = parse("-v", "install", "-e", "a", "--editable=b", "-r", "r1", "-rr2", "-vv", "x")
    assert op.editables == ("a", "b")
    assert op.source("editables") == "-e a + --editable=b"
    assert op.requirement_files == ("r1", "r2")
    assert op.get("verbose") == 3


def test_uninstall() -> None:
    op = parse("uninstall", "-y", "-r", "reqs.txt", "--break-system-packages", "six")
    assert op.command == "uninstall"
    assert op.mutating
    assert op.args == ("six",)
    assert op.requirement_files == ("reqs.txt",)
    assert op.break_system_packages == Setting(True, "--break-system-packages")


def test_options_of_older_pips_are_accepted() -> None:
    op = parse(
        "install", "-V", "--install-option=--x", "--global-option", "y", "--no-use-pep517", "z"
    )
    assert op.args == ("z",)
    assert op.get("use_pep517") is False
    assert "version" not in op.settings


# --- values from the environment and config files ---------------------------------------


@pytest.mark.parametrize(
    ("environ", "argv", "expected"),
    [
        ({"PIP_USER": "1"}, [], True),
        ({"PIP_USER": "yes"}, [], True),
        ({"PIP_USER": "0"}, [], False),
        ({"PIP_USER": "no"}, [], False),
        ({"PIP_USER": ""}, [], None),
        # pip stores store_false options' value as is: PIP_NO_USER=1 is a user install
        ({"PIP_NO_USER": "1"}, [], True),
        ({"PIP_NO_USER": "true"}, [], True),
        ({"PIP_NO_USER": "0"}, [], False),
        ({"PIP_NO_USER": "1"}, ["--no-user"], False),
        ({"PIP_USER": "0"}, ["--user"], True),
        ({"PIP_user": "1"}, [], True),
        ({"pip_USER": "1"}, [], None),
        ({"PIP___USER": "1"}, [], True),
        ({"PIP_US": "1"}, [], None),
    ],
)
def test_user_site_from_environment(
    environ: dict[str, str], argv: list[str], expected: bool | None
) -> None:
    op = parse("install", *argv, "x", environ=environ)
    assert op.get("use_user_site") is expected
    assert (op.user_site is not None) is bool(expected)


def test_user_site_sources() -> None:
    assert parse("install", "x", environ={"PIP_NO_USER": "1"}).user_site == Setting(
        True, "PIP_NO_USER=1"
    )
    config = config_of("[install]\nuser = false\n[global]\nuser = true\n")
    op = parse("install", "x", config=config)
    assert op.settings["use_user_site"] == Setting(False, "/etc/pip.conf [install] user")
    op = parse("install", "x", environ={"PIP_USER": "on"}, config=config)
    assert op.user_site == Setting(True, "PIP_USER=on")
    op = parse("uninstall", "x", config=config)
    assert "use_user_site" not in op.settings


def test_bad_boolean_in_environment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="PIP_USER=maybe"):
        parse("install", "x", environ={"PIP_USER": "maybe"})
    # install-only keys do not bother other commands: pip's list parser is not modelled
    assert parse("list", environ={"PIP_USER": "maybe"}).command == "list"
    # general options are checked by the main parser, for every command
    with pytest.raises(UsageError, match="PIP_ISOLATED"):
        parse("list", environ={"PIP_ISOLATED": "maybe"})


def test_bad_boolean_in_config_is_an_input_error_with_location() -> None:
    config = config_of("[global]\n\n[install]\nuser = maybe\n", path="/site/pip.conf")
    with pytest.raises(InputError) as caught:
        parse("install", "x", config=config)
    assert (caught.value.path, caught.value.line, caught.value.key) == ("/site/pip.conf", 4, "user")


@pytest.mark.parametrize(
    ("environ", "argv", "isolation"),
    [
        ({}, [], True),
        ({"PIP_NO_BUILD_ISOLATION": "1"}, [], True),
        ({"PIP_NO_BUILD_ISOLATION": "yes"}, [], True),
        # pip's documented quirk: a false value *disables* build isolation
        ({"PIP_NO_BUILD_ISOLATION": "0"}, [], False),
        ({"PIP_NO_BUILD_ISOLATION": "false"}, [], False),
        ({"PIP_BUILD_ISOLATION": "0"}, [], True),
        ({"PIP_NO_BUILD_ISOLATION": "1"}, ["--no-build-isolation"], False),
    ],
)
def test_build_isolation(environ: dict[str, str], argv: list[str], isolation: bool) -> None:
    assert parse("install", *argv, "x", environ=environ).build_isolation is isolation


@pytest.mark.parametrize(
    ("environ", "text", "argv", "expected"),
    [
        ({"PIP_BREAK_SYSTEM_PACKAGES": "1"}, "", [], "PIP_BREAK_SYSTEM_PACKAGES=1"),
        ({"PIP_BREAK_SYSTEM_PACKAGES": "0"}, "", [], None),
        (
            {},
            "[global]\nbreak-system-packages = true\n",
            [],
            "/etc/pip.conf [global] break-system-packages",
        ),
        (
            {},
            "[install]\nbreak_system_packages = yes\n",
            [],
            "/etc/pip.conf [install] break_system_packages",
        ),
        ({"PIP_BREAK_SYSTEM_PACKAGES": "no"}, "[install]\nbreak-system-packages = 1\n", [], None),
        ({}, "[uninstall]\nbreak-system-packages = 1\n", [], None),
        (
            {"PIP_BREAK_SYSTEM_PACKAGES": "0"},
            "",
            ["--break-system-packages"],
            "--break-system-packages",
        ),
        ({}, "", ["--break"], "--break-system-packages"),
    ],
)
def test_break_system_packages(
    environ: dict[str, str], text: str, argv: list[str], expected: str | None
) -> None:
    op = parse("install", *argv, "x", environ=environ, config=config_of(text))
    found = op.break_system_packages
    assert (found.source if found else None) == expected


def test_locations_from_environment_are_taken_as_written() -> None:
    op = parse("install", "x", environ={"PIP_TARGET": "~/t", "PIP_PREFIX": "/p", "PIP_ROOT": "/r"})
    assert op.target_dir == Setting("~/t", "PIP_TARGET=~/t")
    assert op.prefix_path == Setting("/p", "PIP_PREFIX=/p")
    assert op.root_path == Setting("/r", "PIP_ROOT=/r")


def test_empty_locations_on_the_command_line_are_kept() -> None:
    op = parse("install", "--target=", "--prefix=", "--root=", "x")
    assert op.target_dir == Setting("", "--target=")
    assert op.prefix_path == Setting("", "--prefix=")
    assert op.root_path == Setting("", "--root=")


def test_command_line_beats_environment_beats_config() -> None:
    config = config_of("[global]\ntarget = /global\n[install]\ntarget = /install\nprefix = /cp\n")
    op = parse("install", "x", environ={"PIP_TARGET": "/env"}, config=config)
    assert op.target_dir == Setting("/env", "PIP_TARGET=/env")
    assert op.prefix_path == Setting("/cp", "/etc/pip.conf [install] prefix")
    op = parse("install", "-t", "/cli", "x", environ={"PIP_TARGET": "/env"}, config=config)
    assert op.target_dir == Setting("/cli", "-t /cli")


def test_append_options_from_environment_are_split_then_extended() -> None:
    op = parse("install", "-f", "/c", "x", environ={"PIP_FIND_LINKS": " /a\t/b "})
    assert op.find_links == ("/a", "/b", "/c")
    assert op.source("find_links") == "PIP_FIND_LINKS= /a\t/b  + -f /c"
    # a blank (not empty) value is an empty list that overrides the config file
    config = config_of("[global]\nfind-links = /cfg\n")
    assert parse("install", "x", environ={"PIP_FIND_LINKS": " "}, config=config).find_links == ()
    assert parse("install", "x", environ={"PIP_FIND_LINKS": ""}, config=config).find_links == (
        "/cfg",
    )
    op = parse("install", "x", environ={"PIP_EDITABLE": "/e1 /e2", "PIP_REQUIREMENT": "r.txt"})
    assert op.editables == ("/e1", "/e2")
    assert op.requirement_files == ("r.txt",)


@pytest.mark.parametrize(
    ("value", "count"), [("2", 2), ("yes", 1), ("off", 0), (" 3 ", 3), ("1_0", 10)]
)
def test_counts_from_environment(value: str, count: int) -> None:
    op = parse("install", "-v", "x", environ={"PIP_VERBOSE": value})
    assert op.get("verbose") == count + 1


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_bad_counts(value: str) -> None:
    with pytest.raises(UsageError, match="PIP_VERBOSE"):
        parse("list", environ={"PIP_VERBOSE": value})


def test_callback_options() -> None:
    op = parse("install", "x", environ={"PIP_NO_CACHE_DIR": "false"})
    assert op.settings["cache_dir"] == Setting(False, "PIP_NO_CACHE_DIR=false")
    with pytest.raises(UsageError):
        parse("install", "x", environ={"PIP_NO_CACHE_DIR": "maybe"})
    with pytest.raises(UsageError, match="PIP_NO_USE_PEP517"):
        parse("install", "x", environ={"PIP_NO_USE_PEP517": "1"})
    op = parse(
        "install", "--only-binary", ":all:", "-C", "k=v", "x", environ={"PIP_NO_BINARY": "a"}
    )
    assert op.get("format_control") == ("--no-binary=a", "--only-binary=:all:")
    assert op.get("config_settings") == ("--config-settings=k=v",)


def test_keys_must_name_a_long_option_exactly() -> None:
    op = parse("install", "x", environ={"PIP_T": "/t", "PIP_E": "e", "PIP_TARG": "/t"})
    assert op.settings == {}
    op = parse("install", "x", environ={"PIP_PYPI_URL": "http://i", "PIP_SOURCE_DIR": "/s"})
    assert op.index_url == "http://i"
    assert op.get("src_dir") == "/s"


# --- isolation --------------------------------------------------------------------------


def test_only_the_literal_isolated_after_the_command_ignores_environment() -> None:
    environ = {"PIP_USER": "1"}
    assert parse("install", "--isolated", "x", environ=environ).user_site is None
    op = parse("--isolated", "install", "x", environ=environ)
    assert op.user_site is None
    assert op.isolated and op.config_isolated
    op = parse("install", "--isol", "x", environ=environ)
    assert op.isolated and not op.config_isolated
    assert op.user_site is not None
    op = parse("install", "x", environ={**environ, "PIP_ISOLATED": "1"})
    assert op.isolated and op.user_site is not None
    # even after '--', where it is a (bad) requirement, as in pip
    assert parse("install", "x", "--", "--isolated", environ=environ).user_site is None


def test_isolated_skips_user_config_files() -> None:
    user = parse_config_text("[install]\nuser = 1\n", "/h/.config/pip/pip.conf", "user")
    site = parse_config_text("[install]\ntarget = /t\n", "/venv/pip.conf", "site")
    config = PipConfig(files=(user, site))
    assert parse("install", "x", config=config).user_site is not None
    op = parse("install", "--isolated", "x", config=config)
    assert op.user_site is None
    assert op.target_dir == Setting("/t", "/venv/pip.conf [install] target")


# --- --python ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "source"),
    [
        (("--python", "/py", "install", "x"), "--python /py"),
        (("--python=/py", "install", "x"), "--python=/py"),
        (("--pyt", "/py", "list"), "--python /py"),
        (("-v", "--py=/py", "-q", "list"), "--python=/py"),
    ],
)
def test_python_before_the_command(argv: Sequence[str], source: str) -> None:
    op = parse(*argv)
    assert op.python == Setting("/py", source)
    stripped = op.argv_without_python()
    assert "/py" not in " ".join(stripped)
    assert stripped[-len(op.command_argv) :] == list(op.command_argv)
    assert argv_without_python(op) == stripped


def test_python_prefix_is_ambiguous_for_install_as_in_pip() -> None:
    # the install parser re-reads the general options and also has --python-version
    with pytest.raises(UsageError, match="ambiguous option --pyth"):
        parse("--pyth=/py", "install", "x")


def test_python_from_environment_or_global_config_even_isolated() -> None:
    op = parse("--isolated", "install", "x", environ={"PIP_PYTHON": "/py"})
    assert op.python == Setting("/py", "PIP_PYTHON=/py")
    assert op.argv_without_python() == ["--isolated", "install", "x"]
    op = parse("list", config=config_of("[global]\npython = /g\n"))
    assert op.python == Setting("/g", "/etc/pip.conf [global] python")
    op = parse("--python", "/cli", "list", environ={"PIP_PYTHON": "/env"})
    assert op.python == Setting("/cli", "--python /cli")


def test_empty_python_reruns_nothing() -> None:
    assert parse("--python=", "install", "x").python is None
    assert parse("install", "x", environ={"PIP_PYTHON": ""}).python is None
    op = parse("--python=", "install", "x", environ={"PIP_PYTHON": "/py"})
    assert op.python is None


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (("install", "--python", "/py", "x"), ""),
        (("install", "--python=/py", "x"), ""),
        (("install", "x"), "[install]\npython = /py\n"),
    ],
)
def test_python_after_the_command_is_refused_like_pip(argv: Sequence[str], text: str) -> None:
    with pytest.raises(UsageError, match="--python"):
        parse(*argv, config=config_of(text))
    # in the process pip re-ran itself in, pip ignores --python
    op = parse(*argv, environ={PIP_SUBPROCESS_MARKER: "1"}, config=config_of(text))
    assert op.command == "install"
    assert op.python is None
    assert op.argv_without_python() == list(op.argv)


def test_python_is_ignored_in_pips_child() -> None:
    op = parse("--python", "/py", "install", "x", environ={PIP_SUBPROCESS_MARKER: "1"})
    assert op.python is None
    assert op.argv_without_python() == ["install", "x"]


def test_python_with_version_or_help() -> None:
    op = parse("--python", "/py", "--version")
    assert op.command is None
    assert op.python == Setting("/py", "--python /py")
    assert op.argv_without_python() == ["--version"]


@pytest.mark.parametrize(
    "argv",
    [("--python", "install", "-v", "install", "x"), ("--python", "--isolated", "install", "x")],
)
def test_python_that_cannot_be_removed_faithfully(argv: Sequence[str]) -> None:
    op = parse(*argv)
    with pytest.raises(UsageError):
        op.argv_without_python()


def test_python_value_equal_to_command_is_fine_when_it_is_the_command_itself() -> None:
    op = parse("--python", "install", "install", "x")
    assert op.args == ("x",)
    with pytest.raises(UsageError):
        op.argv_without_python()


# --- accessors ---------------------------------------------------------------------------


def test_accessors_defaults() -> None:
    op = parse("install", "x")
    assert op.user_site is None
    assert op.target_dir is op.prefix_path is op.root_path is op.python is None
    assert op.break_system_packages is None
    assert op.build_isolation is True
    assert op.editables == op.requirement_files == op.constraint_files == ()
    assert op.isolated is False
    assert op.dry_run is False
    assert op.report_file is None
    assert op.index_url is None
    assert op.extra_index_urls == op.find_links == ()
    assert op.no_index is False
    assert op.get("nothing", 7) == 7
    assert op.source("nothing") == ""


def test_accessors_set() -> None:
    op = parse(
        "install", "-c", "c.txt", "-i", "http://i", "--extra-index-url", "http://e",
        "--no-index", "--report", "r.json", "--dry-run", "x",
    )  # fmt: skip
    assert op.constraint_files == ("c.txt",)
    assert op.index_url == "http://i"
    assert op.extra_index_urls == ("http://e",)
    assert op.no_index is True
    assert op.report_file == "r.json"
    assert op.dry_run is True


def test_user_site_false_is_explicit_but_not_a_user_install() -> None:
    op = parse("install", "--no-user", "x")
    assert op.user_site is None
    assert op.settings["use_user_site"] == Setting(False, "--no-user")


# --- start-up cost -------------------------------------------------------------------------


@pytest.mark.integration
def test_import_stays_light() -> None:
    heavy = "{'packaging', 'configparser', 'optparse', 'locale', 'subprocess'}"
    code = f"import sys, safe_pip.pipcli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


# --- properties ----------------------------------------------------------------------------

_TOKENS = [
    "install", "uninstall", "list", "help", "x", "-", "--", "--user", "--no-user", "--target",
    "-t", "-t/x", "--targ=/y", "--prefix", "--prefi", "--pre", "--pr", "--root", "/r", "-e",
    "-e=x", "-r", "req.txt", "-U", "-Ur", "-qqq", "-v", "-vq", "--isolated", "--isol",
    "--python", "--python=", "--pyth=/py", "/py", "--no-build-isolation",
    "--break-system-packages", "--dry-run", "--report", "--log", "-h", "--help", "-f",
    "--find-links=/f", "--no-index", "-y", "--bogus", "-Z", "--user=1", "--=x", "-i",
    "--cert", "--extra-index-url", "--no-deps", "-I", "--force-reinstall", "-c", "--yes",
]  # fmt: skip
_ENV_NAMES = [
    "PIP_USER", "PIP_NO_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_NO_BUILD_ISOLATION",
    "PIP_BREAK_SYSTEM_PACKAGES", "PIP_ISOLATED", "PIP_PYTHON", "PIP_FIND_LINKS", "PIP_EDITABLE",
    "PIP_VERBOSE", "PIP_REQUIREMENT", "PIP___USER", "PIP_user", PIP_SUBPROCESS_MARKER,
]  # fmt: skip
_ENV_VALUES = ["1", "0", "yes", "no", "", " ", "maybe", "/x", "/a /b", "2", "-1", "install"]
_CONFIG_KEYS = [
    "user", "no-user", "target", "break-system-packages", "no_build_isolation", "isolated",
    "python", "find-links", "verbose", "editable", "prefix", "version",
]  # fmt: skip


def _render_config(items: list[tuple[str, str, str]]) -> str:
    sections: dict[str, dict[str, str]] = {}
    for section, key, value in items:
        sections.setdefault(section, {})[key] = value
    return "".join(
        f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
        for section, values in sections.items()
    )


argvs = st.lists(
    st.one_of(
        st.sampled_from(_TOKENS),
        st.text(max_size=8),
        st.text(st.characters(blacklist_categories=()), max_size=4),
    ),
    max_size=10,
)
environs = st.dictionaries(
    st.sampled_from(_ENV_NAMES), st.one_of(st.sampled_from(_ENV_VALUES), st.text(max_size=6))
)
config_texts = st.lists(
    st.tuples(
        st.sampled_from(["global", "install", "uninstall", "list"]),
        st.sampled_from(_CONFIG_KEYS),
        st.sampled_from(_ENV_VALUES),
    ),
    max_size=5,
).map(_render_config)


def _parse_or_none(argv: Sequence[str], environ: Mapping[str, str], text: str) -> Operation | None:
    try:
        return parse_pip_command_line(argv, environ, config_of(text) if text else None)
    except (UsageError, InputError):
        return None


@settings(max_examples=400, deadline=None)
@given(argv=argvs, environ=environs, text=config_texts)
def test_parser_raises_only_its_own_errors(
    argv: list[str], environ: dict[str, str], text: str
) -> None:
    op = _parse_or_none(argv, environ, text)
    if op is None:
        return
    assert op.argv == tuple(argv)
    if op.command_argv:
        assert op.general_argv + op.command_argv == op.argv
    for setting in op.settings.values():
        assert isinstance(setting.source, str) and setting.source


short_argvs = st.lists(st.one_of(st.sampled_from(_TOKENS), st.text(max_size=8)), max_size=4)
python_argvs = st.builds(
    lambda before, python, after: [*before, *python, *after],
    short_argvs,
    st.sampled_from(
        [["--python", "/py"], ["--python=/py"], ["--py", "install"], ["--python", "--isolated"]]
    ),
    st.lists(st.sampled_from(_TOKENS), max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(argv=python_argvs, environ=environs, text=config_texts)
def test_argv_without_python_parses_to_the_same_operation(
    argv: list[str], environ: dict[str, str], text: str
) -> None:
    op = _parse_or_none(argv, environ, text)
    if op is None:
        return
    try:
        stripped = op.argv_without_python()
    except UsageError:
        return
    child_environ = {**environ, PIP_SUBPROCESS_MARKER: "1"}
    again = parse_pip_command_line(stripped, child_environ, config_of(text) if text else None)
    assert again.command == op.command
    assert again.args == op.args
    without_python = {k: v for k, v in op.settings.items() if k != "python"}
    assert {k: v.value for k, v in again.settings.items()} == {
        k: v.value for k, v in without_python.items()
    }


# --- differential test against the pip next to the tests ------------------------------------

try:
    import pip
    from pip._internal import configuration as pip_configuration
    from pip._internal.cli.main_parser import create_main_parser
    from pip._internal.commands import commands_dict, create_command

    PIP_VERSION = tuple(int(part) for part in pip.__version__.split(".")[:2] if part.isdigit())
except ImportError:  # pragma: no cover - a venv always has pip, but be polite
    PIP_VERSION = ()

needs_modern_pip = pytest.mark.skipif(
    PIP_VERSION < (26, 2), reason="the differential tests need pip >= 26.2 importable"
)

_COMMAND_DESTS = {
    "install": (
        "use_user_site", "target_dir", "prefix_path", "root_path", "override_externally_managed",
        "build_isolation", "isolated_mode", "editables", "requirements", "constraints",
        "find_links", "extra_index_urls", "index_url", "no_index", "dry_run",
        "json_report_file", "verbose", "quiet",
    ),
    "uninstall": (
        "override_externally_managed", "isolated_mode", "requirements", "yes", "verbose", "quiet",
    ),
}  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "build_isolation": True,
    "index_url": "https://pypi.org/simple",
    **dict.fromkeys(["isolated_mode", "no_index", "dry_run", "yes"], False),
    **dict.fromkeys(["verbose", "quiet"], 0),
    **dict.fromkeys(
        ["editables", "requirements", "constraints", "find_links", "extra_index_urls"], ()
    ),
}
#: options whose values pip checks and this parser does not, or that only older pips have
_NOT_COMPARED = (
    "--version", "--no-use-pep517", "--install-option", "--global-option", "--group",
    "--config-settings", "--python-version", "--refresh-package", "--uploaded-prior-to",
    "--progress-bar", "--upgrade-strategy", "--exists-action", "--keyring-provider",
    "--use-feature", "--use-deprecated", "--timeout", "--default-timeout", "--retries",
    "--resume-retries", "--root-user-action", "--no-binary", "--only-binary",
    "--all-releases", "--only-final",
)  # fmt: skip


def _resolves_to_not_compared(name: str) -> bool:
    """``name`` is, in some command, a not-compared option or a unique prefix of one
    (``--root`` is install's ``--root`` but uninstall's ``--root-user-action``)."""
    for options in _LONG_OPTIONS_BY_COMMAND.values():
        matches = [name] if name in options else [o for o in options if o.startswith(name)]
        if len(matches) == 1 and matches[0] in _NOT_COMPARED:
            return True
    return False


def _compared(token: str) -> bool:
    if token.startswith("--"):
        name = token.partition("=")[0]
        if len(name) <= 2:
            return True
        if _resolves_to_not_compared(name):
            return False
        if name in _PIP_LONG_OPTIONS:
            return True
        return not any(option.startswith(name) for option in _NOT_COMPARED)
    if token.startswith("-"):
        return "V" not in token and "C" not in token
    return True


_LONG_OPTIONS_BY_COMMAND: dict[str, frozenset[str]] = (
    {command: frozenset(create_command(command).parser._long_opt) for command in _COMMAND_DESTS}
    if PIP_VERSION
    else {}
)
_PIP_LONG_OPTIONS = (
    frozenset(create_command("install").parser._long_opt) - set(_NOT_COMPARED)
    if PIP_VERSION
    else frozenset()
)


def _normal(dest: str, value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if dest in ("use_user_site", "override_externally_managed") and value is not None:
        return bool(value)
    if dest in ("build_isolation", "isolated_mode", "no_index", "dry_run", "yes"):
        return bool(value)
    return value


def _ours(argv: Sequence[str], environ: Mapping[str, str], config: PipConfig | None) -> object:
    try:
        op = parse_pip_command_line(argv, environ, config)
    except (UsageError, InputError):
        return "error"
    if op.command is None or not op.mutating:
        return (op.command, op.get("python"))
    values = {
        dest: _normal(dest, op.get(dest, _DEFAULTS.get(dest)))
        for dest in _COMMAND_DESTS[op.command]
    }
    return (op.command, op.get("python"), op.args, values)


def _pips(argv: Sequence[str], environ: Mapping[str, str], files: dict[str, list[str]]) -> object:
    """What pip's own parsers make of it (the steps of pip's main(), running nothing)."""
    out = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, environ, clear=True))
        stack.enter_context(
            mock.patch.object(pip_configuration, "get_configuration_files", lambda: files)
        )
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(out))
        try:
            general, rest = create_main_parser().parse_args(list(argv))
        except SystemExit as stop:
            return "error" if stop.code else ("help", None)
        reexec = bool(general.python) and PIP_SUBPROCESS_MARKER not in environ
        python = general.python if reexec else None
        if general.version or not rest:
            return (None, python)
        command = rest[0]
        if command not in commands_dict:
            return "error"
        if command not in _COMMAND_DESTS:
            return (command, python)
        command_args = list(argv)
        command_args.remove(command)
        parser = create_command(command, isolated="--isolated" in command_args)
        try:
            options, args = parser.parse_args(command_args)
        except SystemExit as stop:
            return "error" if stop.code else ("help", python)
        if options.python and not reexec and PIP_SUBPROCESS_MARKER not in environ:
            return "error"
        values = {dest: _normal(dest, getattr(options, dest)) for dest in _COMMAND_DESTS[command]}
        return (command, python, tuple(args), values)


_env_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6)
pip_environs = st.dictionaries(
    st.sampled_from(_ENV_NAMES),
    st.one_of(
        st.sampled_from(["1", "0", "yes", "off", "", "/x"]), st.sampled_from(_ENV_VALUES), _env_text
    ),
)
#: mostly well-formed command lines, so that most examples get to compare option values
structured_argvs = st.builds(
    lambda general, command, rest: [*general, command, *rest],
    st.lists(
        st.sampled_from(
            ["-v", "-q", "--isolated", "--isol", "--python", "/py", "--python=/py", "--log", "--"]
        ),
        max_size=3,
    ),
    st.sampled_from(["install", "install", "install", "uninstall", "list", "help", "lock"]),
    st.lists(
        st.one_of(
            st.sampled_from(_TOKENS),
            st.sampled_from(
                ["x", "y==1", "--user", "--no-user", "-t", "/t", "--prefix=/p", "-e", "/e", "-y"]
            ),
            st.text(max_size=4),
        ),
        max_size=8,
    ),
)
pip_config_texts = st.lists(
    st.tuples(
        st.sampled_from(["global", "install", "uninstall", "list"]),
        st.sampled_from([key for key in _CONFIG_KEYS if key != "version"]),
        st.one_of(st.sampled_from(["1", "0", "yes", "off", ""]), st.sampled_from(_ENV_VALUES)),
    ),
    max_size=4,
).map(_render_config)


@pytest.fixture(scope="module")
def config_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipcfg")


@needs_modern_pip
@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    argv=st.one_of(argvs, structured_argvs, structured_argvs, structured_argvs),
    environ=pip_environs,
    site_text=pip_config_texts,
    env_text=pip_config_texts,
)
def test_same_result_as_pip(
    config_root: Path, argv: list[str], environ: dict[str, str], site_text: str, env_text: str
) -> None:
    assume(all(_compared(token) for token in argv))
    site = config_root / "site.conf"
    site.write_text(site_text)
    env_file = config_root / "env.conf"
    env_file.write_text(env_text)
    environ = {**environ, "HOME": str(config_root / "home"), "PIP_CONFIG_FILE": str(env_file)}
    files = {"global": [], "site": [str(site)], "user": []}
    config = PipConfig(
        files=(
            parse_config_text(site_text, str(site), "site"),
            parse_config_text(env_text, str(env_file), "env"),
        )
    )
    assert _ours(argv, environ, config) == _pips(argv, environ, files)


@needs_modern_pip
def test_same_config_files_as_pip(tmp_path: Path) -> None:
    """load_pip_config reads what pip reads, one file of each kind, compared end to end."""
    etc = tmp_path / "etc"
    (etc / "xdg" / "pip").mkdir(parents=True)
    (etc / "xdg" / "pip" / "pip.conf").write_text("[install]\ntarget = /xdg\nuser = 1\n")
    (etc / "pip.conf").write_text("[global]\nprefix = /etc\n")
    home = tmp_path / "home"
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text("[install]\nroot = /home\nuser =\n")
    prefix = tmp_path / "venv"
    prefix.mkdir()
    (prefix / "pip.conf").write_text("[install]\nprefix = /site\n")
    environ = {"HOME": str(home), "PIP_NO_BUILD_ISOLATION": "0"}
    files = {
        "global": [str(etc / "xdg" / "pip" / "pip.conf"), str(etc / "pip.conf")],
        "user": [str(home / ".pip" / "pip.conf"), str(home / ".config" / "pip" / "pip.conf")],
        "site": [str(prefix / "pip.conf")],
    }
    config = load_pip_config(environ, site_prefix=str(prefix), etc_dir=str(etc))
    for argv in (["install", "x"], ["install", "--isolated", "x"], ["uninstall", "y"]):
        assert _ours(argv, environ, config) == _pips(argv, environ, files)
    op = parse_pip_command_line(["install", "x"], environ, config)
    assert op.get("use_user_site") is None
    assert op.build_isolation is False
    assert op.prefix_path == Setting("/site", f"{prefix}/pip.conf [install] prefix")


def test_requirement_file_requirements_reads_lines_as_pip_does(tmp_path: Path) -> None:
    from safe_pip.pipcli import requirement_file_requirements

    reqs = tmp_path / "r.txt"
    reqs.write_text(
        "# a comment\n\n--index-url https://x/simple\nSix==1.16.0  # pinned\n"
        "demo @ https://h/demo.whl#sha256=00\n-e ./local\n"
    )
    op = parse_pip_command_line(["uninstall", "-r", str(reqs)], {}, None)
    assert requirement_file_requirements(op) == [
        "Six==1.16.0",
        "demo @ https://h/demo.whl#sha256=00",
    ]
    missing = parse_pip_command_line(["uninstall", "-r", str(tmp_path / "none")], {}, None)
    assert requirement_file_requirements(missing) == []
