"""pipconfig: which files pip reads, in which order, and how values override.

Every test builds its own environ and its own /etc, home and prefix under
tmp_path: the machine's PIP_* variables and /etc/pip.conf never leak in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safe_pip.errors import InputError
from safe_pip.pipconfig import (
    GLOBAL,
    SITE,
    USER,
    PipConfig,
    config_file_paths,
    environment_values,
    load_pip_config,
    normalize_key,
    option_values,
    parse_config_text,
    strtobool,
)


class Tree:
    """A fake machine: /etc, a home, a prefix, and the environ that points at them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etc = root / "etc"
        self.home = root / "home"
        self.prefix = root / "prefix"
        for path in (self.etc, self.home, self.prefix):
            path.mkdir()
        self.environ: dict[str, str] = {"HOME": str(self.home)}

    def write(self, relative: str, text: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)

    def load(self, environ: Mapping[str, str] | None = None) -> PipConfig:
        return load_pip_config(
            self.environ if environ is None else environ,
            site_prefix=str(self.prefix),
            etc_dir=str(self.etc),
        )

    def values(
        self,
        section: str = "install",
        *,
        isolated: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> dict[str, tuple[str, str]]:
        env = {**self.environ, **dict(environ or {})}
        items = option_values(self.load(env), env, section, isolated=isolated)
        result: dict[str, tuple[str, str]] = {}
        for key, value in items:
            result[key] = (value.value, value.source)  # later items win, as in pip
        return result


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


# --- where pip looks ---------------------------------------------------------------


def test_default_paths_in_pips_order() -> None:
    paths = config_file_paths({"HOME": "/h"}, site_prefix="/venv")
    assert paths == [
        (GLOBAL, "/etc/xdg/pip/pip.conf"),
        (GLOBAL, "/etc/pip.conf"),
        (USER, "/h/.pip/pip.conf"),
        (USER, "/h/.config/pip/pip.conf"),
        (SITE, "/venv/pip.conf"),
    ]


def test_xdg_variables_and_pip_config_file() -> None:
    environ = {
        "HOME": "/h/",
        "XDG_CONFIG_DIRS": "/a::  :/b",
        "XDG_CONFIG_HOME": "/cfg",
        "PIP_CONFIG_FILE": "/my.conf",
    }
    paths = [path for _, path in config_file_paths(environ, site_prefix=None)]
    assert paths == [
        "/a/pip/pip.conf",
        "/b/pip/pip.conf",
        "/etc/pip.conf",
        "/h/.pip/pip.conf",
        "/cfg/pip/pip.conf",
        "/my.conf",
    ]


def test_blank_xdg_variables_mean_the_defaults() -> None:
    environ = {"HOME": "/h", "XDG_CONFIG_DIRS": "  ", "XDG_CONFIG_HOME": " "}
    paths = [path for _, path in config_file_paths(environ, site_prefix=None)]
    assert paths[0] == "/etc/xdg/pip/pip.conf"
    assert paths[-1] == "/h/.config/pip/pip.conf"


def test_empty_home_is_the_root_directory_as_for_expanduser() -> None:
    paths = [path for _, path in config_file_paths({"HOME": ""}, site_prefix=None)]
    assert "/.pip/pip.conf" in paths
    assert "/.config/pip/pip.conf" in paths


def test_explicit_home_wins_over_environ() -> None:
    paths = config_file_paths({"HOME": "/h"}, site_prefix=None, home="/other")
    assert (USER, "/other/.pip/pip.conf") in paths


# --- loading --------------------------------------------------------------------------


def test_files_override_global_user_site_env(tree: Tree) -> None:
    tree.write("etc/xdg/pip/pip.conf", "[install]\nuser = xdg\nprefix = /xdg\n")
    tree.write("etc/pip.conf", "[install]\nuser = etc\n")
    tree.write("home/.pip/pip.conf", "[install]\nuser = legacy\nroot = /legacy\n")
    tree.write("home/.config/pip/pip.conf", "[install]\nuser = home\n")
    tree.write("prefix/pip.conf", "[install]\nuser = site\n")
    values = tree.values()
    assert values["user"] == ("site", f"{tree.prefix}/pip.conf [install] user")
    assert values["prefix"][0] == "/xdg"
    assert values["root"][0] == "/legacy"

    env_file = tree.write("mine.conf", "[install]\nuser = env\n")
    values = tree.values(environ={"PIP_CONFIG_FILE": env_file})
    assert values["user"][0] == "env"
    # an existing PIP_CONFIG_FILE switches the user files off
    assert "root" not in values


def test_missing_pip_config_file_keeps_user_files(tree: Tree) -> None:
    tree.write("home/.config/pip/pip.conf", "[install]\nuser = home\n")
    assert tree.values(environ={"PIP_CONFIG_FILE": str(tree.root / "nope")})["user"][0] == "home"
    assert tree.values(environ={"PIP_CONFIG_FILE": ""})["user"][0] == "home"


def test_devnull_disables_every_file_but_not_variables(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[install]\nuser = etc\n")
    environ = {"PIP_CONFIG_FILE": os.devnull, "PIP_TARGET": "/t"}
    config = tree.load({**tree.environ, **environ})
    assert config.disabled and config.files == ()
    assert tree.values(environ=environ) == {
        "config-file": (os.devnull, "PIP_CONFIG_FILE=/dev/null"),
        "target": ("/t", "PIP_TARGET=/t"),
    }


def test_sections_global_then_command_then_environment(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[global]\nuser = g\ntarget = /g\n[install]\nuser = i\n")
    assert tree.values()["user"][0] == "i"
    assert tree.values()["target"][0] == "/g"
    assert tree.values("uninstall")["user"][0] == "g"
    assert tree.values(environ={"PIP_USER": "e"})["user"] == ("e", "PIP_USER=e")
    # the main parser reads [global] and the variables only
    assert tree.values("global")["user"][0] == "g"


def test_global_in_a_later_file_does_not_beat_an_earlier_command_section(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[install]\nuser = etc-install\n")
    tree.write("prefix/pip.conf", "[global]\nuser = site-global\n")
    assert tree.values()["user"][0] == "etc-install"


def test_empty_value_in_a_later_file_restores_the_default(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[install]\nuser = yes\n")
    tree.write("prefix/pip.conf", "[install]\nuser =\n")
    assert "user" not in tree.values()
    # an empty variable is ignored, the file value stays
    tree.write("prefix/pip.conf", "[install]\n")
    assert tree.values(environ={"PIP_USER": ""})["user"][0] == "yes"


def test_default_section_reaches_every_section_of_its_file(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[DEFAULT]\nuser = yes\n[install]\n")
    assert tree.values()["user"][0] == "yes"
    tree.write("etc/pip.conf", "[DEFAULT]\nuser = yes\n")
    assert tree.values() == {}


def test_section_names_are_case_sensitive_keys_are_not(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[Install]\nuser = 1\n[install]\nNO_USER = 1\n--Target = /t\n")
    assert tree.values() == {
        "no-user": ("1", f"{tree.etc}/pip.conf [install] no_user"),
        "target": ("/t", f"{tree.etc}/pip.conf [install] --target"),
    }


def test_isolated_skips_user_files_and_variables(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[install]\ntarget = /etc\n")
    tree.write("home/.config/pip/pip.conf", "[install]\ntarget = /home\nuser = 1\n")
    tree.write("prefix/pip.conf", "[install]\nprefix = /site\n")
    values = tree.values(isolated=True, environ={"PIP_ROOT": "/r"})
    assert values == {
        "target": ("/etc", f"{tree.etc}/pip.conf [install] target"),
        "prefix": ("/site", f"{tree.prefix}/pip.conf [install] prefix"),
    }


def test_a_path_listed_twice_keeps_its_first_position(tree: Tree) -> None:
    etc = tree.write("etc/pip.conf", "[install]\nuser = etc\n")
    tree.write("prefix/pip.conf", "[install]\nuser = site\n")
    # PIP_CONFIG_FILE=/etc/pip.conf: pip keys files by name, so the site file still wins
    assert tree.values(environ={"PIP_CONFIG_FILE": etc})["user"][0] == "site"


def test_env_section_in_a_file_joins_the_variables(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[:env:]\nuser = file\n[install]\nuser = no\n")
    assert tree.values()["user"][0] == "file"
    assert tree.values(environ={"PIP_USER": "var"})["user"][0] == "var"


def test_unreadable_file_is_ignored(tree: Tree) -> None:
    (tree.etc / "pip.conf").mkdir()
    assert tree.load().files == ()


def test_none_config_means_variables_only() -> None:
    items = option_values(None, {"PIP_USER": "1", "HOME": "/h"}, "install", isolated=False)
    assert [(key, value.value) for key, value in items] == [("user", "1")]


# --- the PIP_* layer ------------------------------------------------------------------


def test_environment_names() -> None:
    environ = {
        "PIP_NO_USER": "1",
        "PIP_user": "2",
        "pip_TARGET": "x",
        "PIP_VERSION": "1",
        "PIP_Help": "1",
        "PIP___VERSION": "1",
        "PIP_BREAK_SYSTEM_PACKAGES": "yes",
        "OTHER": "1",
    }
    values = environment_values(environ)
    assert sorted(values) == ["break-system-packages", "no-user", "user", "version"]
    assert values["user"].source == "PIP_user=2"
    assert values["version"].source == "PIP___VERSION=1"


def test_normalize_key() -> None:
    assert normalize_key("NO_BUILD_ISOLATION") == "no-build-isolation"
    assert normalize_key("--user") == "user"
    assert normalize_key("----user") == "--user"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("YES", 1), ("on", 1), ("t", 1), ("0", 0), ("Off", 0), ("n", 0), ("false", 0)],
)
def test_strtobool(text: str, expected: int) -> None:
    assert strtobool(text) == expected


@pytest.mark.parametrize("text", ["", "2", "maybe", " yes", "yes "])
def test_strtobool_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        strtobool(text)


# --- malformed files ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("user = 1\n", 1, ""),
        ("[install]\nuser = 1\nuser = 0\n", 3, "user"),
        ("[install]\nuser = 1\n[install]\n", 3, ""),
        ("[install]\nuser = 1\njunk line\n", 3, ""),
        ("[install]\n=1\n", 2, ""),
        ("\n\n[install\nuser=1\n", 3, ""),
    ],
)
def test_malformed_file_is_an_input_error_with_line(
    tree: Tree, text: str, line: int, key: str
) -> None:
    path = tree.write("etc/pip.conf", text)
    with pytest.raises(InputError) as caught:
        tree.load()
    assert caught.value.path == path
    assert caught.value.line == line
    assert caught.value.key == key
    assert caught.value.hint


def test_undecodable_file_is_an_input_error(tree: Tree) -> None:
    path = tree.etc / "pip.conf"
    path.write_bytes(b"[install]\nuser = 1\nroot = \xff\xfe\n")
    with pytest.raises(InputError) as caught:
        tree.load()
    assert caught.value.path == str(path)
    assert caught.value.line == 3


def test_malformed_user_file_fails_even_if_isolated_would_skip_it(tree: Tree) -> None:
    tree.write("home/.config/pip/pip.conf", "garbage\n")
    with pytest.raises(InputError):
        tree.load()


def test_values_keep_path_line_and_name(tree: Tree) -> None:
    tree.write("etc/pip.conf", "# c\n[global]\n; c\nTimeout: 3\n\n[install]\n  User = maybe\n")
    config = tree.load()
    (config_file,) = config.files
    user = config_file.sections["install"]["user"]
    assert (user.value, user.line, user.name) == ("maybe", 7, "user")
    assert config_file.sections["global"]["timeout"].line == 4


def test_multiline_value_is_kept_whole(tree: Tree) -> None:
    tree.write("etc/pip.conf", "[global]\nfind-links =\n    /a\n    /b\n")
    assert tree.values()["find-links"][0] == "\n/a\n/b"


# --- properties -----------------------------------------------------------------------

_config_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "[global]",
                "[install]",
                "[DEFAULT]",
                "[:env:]",
                "user = 1",
                "no-user = yes",
                "target=/t",
                "  continued",
                "# comment",
                "",
                "find-links: /a /b",
                "=",
                "[",
                "]",
            ]
        ),
        st.text(max_size=30),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(lines=_config_lines)
def test_any_text_parses_or_raises_input_error(lines: list[str]) -> None:
    try:
        parsed = parse_config_text("\n".join(lines), "/x/pip.conf", GLOBAL)
    except InputError as error:
        assert error.path == "/x/pip.conf"
        return
    for section, values in parsed.sections.items():
        for key, value in values.items():
            assert key == normalize_key(key)
            assert value.source.startswith(f"/x/pip.conf [{section}] ")


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=80))
def test_any_bytes_load_or_raise_input_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    root = tmp_path_factory.mktemp("bytes")
    (root / "pip.conf").write_bytes(data)
    try:
        load_pip_config({"HOME": str(root)}, site_prefix=str(root), etc_dir=str(root / "etc"))
    except InputError as error:
        assert error.path == str(root / "pip.conf")


@settings(max_examples=200, deadline=None)
@given(
    environ=st.dictionaries(
        st.one_of(
            st.sampled_from(["PIP_USER", "PIP_NO_USER", "PIP_", "PIP_--", "XDG_CONFIG_DIRS"]),
            st.text(max_size=12),
        ),
        st.text(max_size=12),
        max_size=6,
    ),
    section=st.sampled_from(["global", "install", ":env:", ""]),
    isolated=st.booleans(),
)
def test_option_values_never_crash(environ: dict[str, str], section: str, isolated: bool) -> None:
    for key, value in option_values(PipConfig(), environ, section, isolated=isolated):
        assert value.value
        assert key == normalize_key(key)


def test_pinned_environ_hands_pip_the_values_read_and_no_file() -> None:
    from safe_pip.pipconfig import PipConfig, parse_config_text, pinned_environ

    site = parse_config_text(
        "[global]\ntimeout = 5\n[install]\nno-deps = yes\n", "/p/pip.conf", "site"
    )
    user = parse_config_text(
        "[install]\nfind-links = /a /b\n", "/home/u/.config/pip/pip.conf", "user"
    )
    config = PipConfig(files=(site, user))
    environ = {"PIP_TIMEOUT": "9", "HOME": "/home/u"}
    env = pinned_environ(environ, config, "install", isolated=False)
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["PIP_TIMEOUT"] == "9"  # the user's variable wins, as over files in pip
    assert env["PIP_NO_DEPS"] == "yes"
    assert env["PIP_FIND_LINKS"] == "/a /b"
    isolated = pinned_environ(environ, config, "install", isolated=True)
    assert "PIP_FIND_LINKS" not in isolated  # an isolated parser skips user files
    assert isolated["PIP_TIMEOUT"] == "5"  # and the user's variables


# --- plain files without configparser -------------------------------------------------

#: lines of a plain pip.conf, and lines that need configparser (``plain_sections`` None)
_PLAIN = [
    "[global]", "[install]", "[ global ]", "[Install]", "index-url = https://h/simple?a=b:c",
    "Timeout: 60", "no-deps=yes", "k =", "a b = c", "k = v # not a comment", "k\t=\tv",
    "K = upper", "k = again", "# comment", "; comment", "  # comment", "", "   ", "\t",
]  # fmt: skip
_ODD = [
    "[DEFAULT]", "[]", "[a]b]", "[x] # c", "[", "]", "[a", "= v", ": v", "  k = indented",
    "\tcontinued", "no delimiter", "k = \x0b", "\u00e9 = 1", "k = v\r", "  /extra/links",
]  # fmt: skip


def _by_configparser(text: str) -> dict[str, dict[str, str]] | None:
    import configparser

    from safe_pip.pipconfig import _configparser_sections

    try:
        return _configparser_sections(text, "pip.conf")
    except (InputError, configparser.Error):
        return None


@settings(max_examples=500, deadline=None)
@given(st.booleans(), st.lists(st.sampled_from(_PLAIN * 6 + _ODD), max_size=10), st.booleans())
def test_plain_files_are_read_as_configparser_reads_them(
    header: bool, lines: list[str], end: bool
) -> None:
    """What the fast reading returns is what configparser returns; what it does not read
    (None) goes to configparser, errors included."""
    from safe_pip.pipconfig import plain_sections

    text = "\n".join((["[global]"] if header else []) + lines) + ("\n" if end else "")
    fast = plain_sections(text)
    if fast is not None:
        slow = _by_configparser(text)
        assert slow is not None and fast == slow
        assert [list(items) for items in fast.values()] == [list(i) for i in slow.values()]


@pytest.mark.parametrize(
    "text",
    [
        "[global]\nk = v\n  k2 = x\n",  # a continuation line
        "[global]\nk = v\n\n  more\n",  # one after a blank line
        "[global]\n  k = v\n",  # an indented key right after a header is a key
        "[DEFAULT]\nk = v\n[global]\n",  # defaults reach every section
        "[a]b]\nk = v\n",  # a header configparser reads per Python version
        "[x] # c\nk = v\n",
        "[global]\nk = v\nK = w\n",  # the same key once lower-cased: an error
        "[global]\n[global]\n",
        "k = v\n",
        "[global]\n= v\n",
    ],
)
def test_what_configparser_reads_its_own_way_is_left_to_it(text: str) -> None:
    from safe_pip.pipconfig import plain_sections

    assert plain_sections(text) is None
    assert plain_sections(text.replace("\n", "\n# note\n")) is None


def test_a_usual_pip_conf_is_plain() -> None:
    from safe_pip.pipconfig import plain_sections

    text = (
        "# set by the hub image\n[global]\nIndex-URL = https://mirror.example/simple\n"
        "timeout: 60\n\n[install]\n; no user installs here\nno-user = true\n"
    )
    assert plain_sections(text) == {
        "global": {"index-url": "https://mirror.example/simple", "timeout": "60"},
        "install": {"no-user": "true"},
    }
    assert plain_sections("[global]\nfind-links =\n  /a\n") is None  # a continuation


@pytest.mark.integration
def test_reading_a_plain_pip_conf_loads_no_parser(tmp_path: Path) -> None:
    """A guarded command reads the hub's pip.conf before it starts uv: neither
    configparser, re nor locale are loaded for a plain ASCII file."""
    import subprocess
    import sys

    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple\n")
    code = (
        "import sys\n"
        "from safe_pip.pipconfig import load_pip_config\n"
        f"environ = {{'PIP_CONFIG_FILE': {str(conf)!r}, 'HOME': {str(tmp_path)!r},"
        f" 'XDG_CONFIG_DIRS': {str(tmp_path)!r}}}\n"
        f"config = load_pip_config(environ, site_prefix=None, etc_dir={str(tmp_path)!r})\n"
        "assert config.files and config.files[-1].sections['global']['index-url'].value\n"
        "print(sorted({'configparser', 're', 'locale'} & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
