"""conda-meta/history: real files from public repositories, hand-made edge cases, properties.

The expected user-requested specs of each real file were worked out from
conda's own code (``conda/history.py``: ``History.parse``,
``_parse_comment_line``, ``get_user_requests``, ``get_requested_specs_map``)
and checked against it: blocks without ``# cmd:`` do not count; ``install``,
``create`` and ``update`` specs replace earlier specs of the same name;
``remove``/``uninstall`` specs drop them; ``neutered`` specs replace them last.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safe_pip.conda_history import (
    Dist,
    History,
    normalise_channel,
    parse_dist,
    parse_history,
    read_history,
    spec_name,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conda-meta"

# file -> (requested specs in conda's dict order, packages installed at the end, channels)
EXPECTED: dict[str, tuple[list[tuple[str, str]], int, list[str]]] = {
    "AXGKl__be_black__conda-meta_history": (
        [
            ("conda", "conda"),
            ("python", "python=3"),
            ("git", "git"),
            ("constructor", "constructor"),
            ("jq", "jq"),
            ("vim", "vim"),
        ],
        42,
        ["defaults", "https://axchange.axiros.com/pub/conda_axchange/channel"],
    ),
    "EMERGE-Policy__imagemagick_env__conda-meta_history": (
        [("imagemagick", "imagemagick")],
        126,
        ["https://conda.anaconda.org/conda-forge"],
    ),
    "Eigenstate__dabble__miniconda_conda-meta_history": (
        [("numpy", "numpy"), ("conda", "conda"), ("python", "python 2.7*")],
        14,
        [],
    ),
    "Kim-yk__autodock-gpu__conda-meta_history": (
        [("mgltools", "mgltools"), ("autodock", "autodock"), ("autogrid", "autogrid")],
        8,
        ["bioconda", "defaults", "hcc"],
    ),
    "astromarb__sci-cluster__miniconda3_conda-meta_history": (
        [
            ("python", "python=3.12"),
            ("conda", "conda==25.3.1"),  # the neutered spec replaces the constructor's pin
            ("setuptools", "setuptools"),
            ("pip", "pip"),
            ("wheel", "wheel"),
            ("conda-anaconda-telemetry", "conda-anaconda-telemetry"),
            ("conda-anaconda-tos", "conda-anaconda-tos[version='>=0.1.2']"),
            ("conda-content-trust", "conda-content-trust"),
            ("conda-libmamba-solver", "conda-libmamba-solver"),
            ("menuinst", "menuinst"),
            ("anaconda-anon-usage", "anaconda-anon-usage"),
            ("anaconda-client", "anaconda-client"),
        ],
        117,
        ["defaults"],
    ),
    "conda__conda__tests_conda-meta_history": (
        [
            ("conda", "conda"),
            ("python", "python 2.7*"),
            ("cas-mirror", "cas-mirror"),
            ("grin", "grin"),
            ("pyflakes", "pyflakes"),
        ],
        21,
        [],
    ),
    "conda__conda__tests_data_env_metadata_envpy27osx_conda-meta_history": (
        [("python", "python=2.7")],
        16,
        ["defaults"],
    ),
    "conda__conda__tests_data_env_metadata_envpy27win_whl_conda-meta_history": (
        [("python", "python=2.7")],
        8,
        ["defaults"],
    ),
    "conda__conda__tests_data_env_metadata_envpy313tosx_whl_conda-meta_history": (
        [("python_abi", "python_abi[build=*_cp313t]"), ("python", "python=3.13"), ("pip", "pip")],
        16,
        ["conda-forge"],
    ),
    "conda__conda__tests_data_env_metadata_envpy37osx_whl_conda-meta_history": (
        [("python", "python=3.7")],
        17,
        ["defaults"],
    ),
    "conda__conda__tests_data_env_metadata_envpy37win_conda-meta_history": (
        [("python", "python=3.7")],
        8,
        ["defaults"],
    ),
    "conda__conda__tests_data_env_metadata_py27-osx-no-binary_conda-meta_history": (
        [
            ("python", "python=2"),
            ("lxml", "lxml"),
            ("pip", "pip=8"),
            ("nomkl", "nomkl"),
            ("h5py", "h5py"),
            ("numpy", "numpy"),
        ],
        34,
        ["defaults"],
    ),
    "conda__conda__tests_data_env_metadata_py36-osx-whl_conda-meta_history": (
        [
            ("nomkl", "nomkl"),
            ("lxml", "lxml"),
            ("python", "python=3.6"),
            ("numpy", "numpy"),
            ("h5py", "h5py"),
        ],
        31,
        ["defaults"],
    ),
    "jordangumm__kaggle_mania__miniconda_conda-meta_history": (
        [
            (name, name)
            for name in [
                "beautifulsoup4",
                "click",
                "pandas",
                "tqdm",
                "numpy",
                "scikit-learn",
                "lime",
                "h5py",
                "theano",
                "lasagne",
                "deap",
            ]
        ],
        48,
        ["defaults", "conda-forge"],
    ),
    "partrita__notebook__.pixi_envs_default_conda-meta_history": ([], 0, []),
    "ricardovolert__concept__anaconda_conda-meta_history": (
        [
            ("cython", "cython"),
            ("matplotlib", "matplotlib"),
            ("numpy", "numpy"),
            ("pexpect", "pexpect"),
            ("scipy", "scipy"),
            ("conda", "conda"),
            ("python", "python 3.4*"),
        ],
        30,
        [],
    ),
}


# --- the real files -------------------------------------------------------------------


def test_every_history_fixture_is_expected() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*history")) == sorted(EXPECTED)


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_fixture_parses_cleanly(filename: str) -> None:
    history = read_history(FIXTURES / filename)
    assert history.problems == ()
    requested, installed_count, channels = EXPECTED[filename]
    assert list(history.requested_specs().items()) == requested
    installed = history.installed()
    assert len(installed) == installed_count
    # every requested package is still installed in these environments
    assert history.export_specs(installed) == [spec for _, spec in requested]
    assert history.channels() == channels


def test_fixture_grammar_details() -> None:
    # conda 3.8: the first block lists the whole environment, without +/-
    first = read_history(FIXTURES / "Eigenstate__dabble__miniconda_conda-meta_history").blocks[0]
    assert first.full_state and first.removed == () and len(first.added) == 13
    assert first.requested == ()

    # constructor: no conda version line; a blank line before the next header
    axgkl = read_history(FIXTURES / "AXGKl__be_black__conda-meta_history")
    assert axgkl.blocks[0].cmd is not None and axgkl.blocks[0].cmd.startswith("constructor")
    assert axgkl.blocks[0].conda_version is None
    assert axgkl.blocks[1].conda_version == "4.5.11"
    assert [b.line for b in axgkl.blocks] == [1, 38, 48]

    # conda 4.3: comma-joined specs under "# install specs:", channel:: without subdir
    kaggle = read_history(FIXTURES / "jordangumm__kaggle_mania__miniconda_conda-meta_history")
    assert kaggle.blocks[1].install_specs[:2] == ("beautifulsoup4", "click")
    assert kaggle.blocks[1].request_action == "install"
    assert kaggle.blocks[0].cmd is not None and kaggle.blocks[0].requested == ()
    assert kaggle.blocks[0].added[0] == Dist("defaults", "asn1crypto", "0.22.0", "py27_0")
    assert kaggle.blocks[1].added[0] == Dist("conda-forge", "beautifulsoup4", "4.6.0", "py27_0")

    # an empty block, then channel/subdir:: dists
    kim = read_history(FIXTURES / "Kim-yk__autodock-gpu__conda-meta_history")
    assert not kim.blocks[0].changes_packages
    assert kim.blocks[0].conda_version == "4.7.12"
    assert kim.blocks[1].added == (Dist("bioconda/linux-64", "mgltools", "1.5.7", "h9ee0642_1"),)
    assert kim.last_change_time() == "2021-12-14 15:27:49"

    # neutered specs, and a bracketed spec written in double quotes
    astro = read_history(FIXTURES / "astromarb__sci-cluster__miniconda3_conda-meta_history")
    assert astro.blocks[1].update_specs == ("conda",)
    assert astro.blocks[1].neutered_specs == ("conda==25.3.1",)
    assert "conda-anaconda-tos[version='>=0.1.2']" in astro.blocks[0].update_specs
    assert astro.installed()["conda"].channel == "defaults/linux-64"

    # micromamba: double-quoted list, full-URL channels with subdir
    emerge = read_history(FIXTURES / "EMERGE-Policy__imagemagick_env__conda-meta_history")
    assert emerge.blocks[0].update_specs == ("imagemagick",)
    assert emerge.blocks[0].added[0].channel == "https://conda.anaconda.org/conda-forge/noarch"

    # pixi: a comment and no header at all
    pixi = read_history(FIXTURES / "partrita__notebook__.pixi_envs_default_conda-meta_history")
    assert pixi == History()
    assert pixi.last_change_time() is None


def test_read_history_accepts_a_prefix(tmp_path: Path) -> None:
    source = FIXTURES / "Kim-yk__autodock-gpu__conda-meta_history"
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").write_bytes(source.read_bytes())
    assert read_history(tmp_path) == read_history(source)


# --- the grammar, line by line --------------------------------------------------------


def specs_of(comment: str) -> History:
    return parse_history(f"==> 2024-01-01 00:00:00 <==\n# cmd: conda install x\n{comment}\n")


@pytest.mark.parametrize(
    ("comment", "specs"),
    [
        ("# install specs: ['numpy', 'conda', 'python 2.7*']", ("numpy", "conda", "python 2.7*")),
        ("# update specs: ['python=3.12', 'pip']", ("python=3.12", "pip")),
        ('# update specs: ["imagemagick"]', ("imagemagick",)),
        ("# update specs: [\"pkg[version='>=1.5.1,<2.0']\"]", ("pkg[version='>=1.5.1,<2.0']",)),
        ("# install specs: [u'numpy', u'scipy']", ("numpy", "scipy")),
        ("# install specs: ['num\\x70y']", ("numpy",)),
        ("# install specs: param >=1.5.1,<2.0", ("param >=1.5.1,<2.0",)),
        (
            "# install specs: python>=3.5.1,jupyter >=1.0.0,<2.0,numpy >=1.11.0,<2.0",
            ("python>=3.5.1", "jupyter >=1.0.0,<2.0", "numpy >=1.11.0,<2.0"),
        ),
        ("# update specs: pandas,_license >=1.0.0,<2.0", ("pandas", "_license >=1.0.0,<2.0")),
        ("# install specs: a,b,,c", ("a", "b", "c")),
        ("# install specs: ['mkl@', 'numpy', '']", ("numpy",)),
        ("#install specs:['numpy']", ("numpy",)),
        ("# install specs: []", ()),
        ("# install specs:", ()),
    ],
)
def test_specs_payloads(comment: str, specs: tuple[str, ...]) -> None:
    history = specs_of(comment)
    assert history.problems == ()
    assert history.blocks[0].requested == specs


@pytest.mark.parametrize(
    "comment",
    [
        "# install specs: ['numpy'",  # unterminated list
        "# install specs: [1, 2]",  # not strings
        "# install specs: numpy[version='>=1']",  # brackets in a comma-joined payload
        "# install specs: [__import__('os')]",  # not a literal
    ],
)
def test_unreadable_specs_are_problems(comment: str) -> None:
    history = specs_of(comment)
    assert history.blocks[0].requested == ()
    assert len(history.problems) == 1
    assert history.problems[0].startswith("line 3: ")


def test_later_specs_lines_replace_earlier_ones_within_a_block() -> None:
    history = parse_history(
        "==> 2024-01-01 00:00:00 <==\n"
        "# cmd: conda install a\n"
        "# update specs: ['a']\n"
        "# install specs: ['b']\n"
        "# install specs: []\n"  # names nothing: ignored, as conda does
    )
    block = history.blocks[0]
    assert block.update_specs == ("a",) and block.install_specs == ("b",)
    assert block.requested == ("b",)
    assert history.requested_specs() == {"b": "b"}


def test_requested_specs_follow_removes_updates_and_neutering_in_order() -> None:
    history = parse_history(
        """
==> 2024-01-01 00:00:00 <==
# cmd: conda create -n x python=3.11 numpy
# update specs: ['python=3.11', 'numpy', 'scipy']
==> 2024-01-02 00:00:00 <==
# cmd: conda install Numpy=1.26
# update specs: ['Numpy=1.26']
==> 2024-01-03 00:00:00 <==
# cmd: conda remove scipy
# remove specs: ['scipy']
==> 2024-01-04 00:00:00 <==
# update specs: ['ignored']
==> 2024-01-05 00:00:00 <==
# cmd: conda update python
# update specs: ['python']
# neutered specs: ['python=3.12']
==> 2024-01-06 00:00:00 <==
# cmd: conda install scipy
# install specs: ['conda-forge::scipy[version=">=1.10"]']
"""
    )
    assert history.problems == ()
    assert history.requested_specs() == {
        "python": "python=3.12",
        "numpy": "Numpy=1.26",
        "scipy": 'conda-forge::scipy[version=">=1.10"]',
    }
    # insertion order is conda's: updated names keep their place, re-added ones go last
    assert list(history.requested_specs()) == ["python", "numpy", "scipy"]
    assert history.export_specs({"python", "scipy", "pip"}) == [
        "python=3.12",
        'conda-forge::scipy[version=">=1.10"]',
    ]


def test_lines_before_the_first_header_and_blank_lines_are_ignored() -> None:
    history = parse_history(
        "# a comment\n+stray-1.0-0\n\n   \n==> 2024-01-01 00:00:00 <==\n\n  +a-1.0-0  \n"
    )
    assert history.problems == ()
    assert [b.line for b in history.blocks] == [5]
    assert history.installed() == {"a": Dist(None, "a", "1.0", "0")}
    assert history.requested_specs() == {}


def test_installed_applies_removes_before_adds_and_ignores_channel_spelling() -> None:
    history = parse_history(
        """
==> 2024-01-01 00:00:00 <==
+defaults::a-1.0-0
+defaults::b-1.0-0
==> 2024-01-02 00:00:00 <==
+defaults/linux-64::a-1.0-0
-defaults::a-1.0-0
-defaults::b-2.0-0
==> 2024-01-03 00:00:00 <==
# cmd: conda install c
==> 2024-01-04 00:00:00 <==
-b-1.0-0
"""
    )
    assert history.installed() == {"a": Dist("defaults/linux-64", "a", "1.0", "0")}
    assert history.last_change_time() == "2024-01-04 00:00:00"
    assert history.channels() == ["defaults"]


def test_full_state_block_replaces_the_state() -> None:
    history = parse_history(
        "==> 1 <==\n+a-1-0\n+b-1-0\n==> 2 <==\nc-1-0\nd-1-0.tar.bz2\n==> 3 <==\n+e-1-0\n"
    )
    assert sorted(history.installed()) == ["c", "d", "e"]
    assert history.blocks[1].full_state


def test_malformed_content_is_reported_and_skipped() -> None:
    history = parse_history(
        "==> 2024-01-01 00:00:00 <==\n"
        "+good-1.0-0\n"
        "+no_version\n"
        "plain-1.0-0\n"
        "==> no closing marker\n"
        "-\n"
    )
    assert history.installed() == {"good": Dist(None, "good", "1.0", "0")}
    assert [p.split(":")[0] for p in history.problems] == ["line 3", "line 5", "line 6", "line 4"]


def test_spec_without_a_name_is_reported_and_left_out() -> None:
    history = specs_of("# update specs: ['numpy', '*', '>=1.0', 'py*']")
    assert history.requested_specs() == {"numpy": "numpy"}
    assert len(history.problems) == 3


def test_bytes_not_utf8_crlf_and_bom() -> None:
    data = (
        b"\xef\xbb\xbf==> 2024-01-01 00:00:00 <==\r\n"
        b"# cmd: conda install caf\xe9\r\n"
        b"# update specs: ['numpy']\r\n"
        b"+numpy-1.0-0\r\n"
    )
    history = parse_history(data, source="env/conda-meta/history")
    assert history.problems == (
        "env/conda-meta/history: line 2: not valid UTF-8; undecodable bytes replaced with U+FFFD",
    )
    assert history.blocks[0].cmd == "conda install caf\ufffd"
    assert history.requested_specs() == {"numpy": "numpy"}
    assert history.installed() == {"numpy": Dist(None, "numpy", "1.0", "0")}


def test_read_history_missing_and_unreadable(tmp_path: Path) -> None:
    assert read_history(tmp_path) == History()
    assert read_history(tmp_path / "nope" / "history") == History()
    (tmp_path / "conda-meta").mkdir()
    (tmp_path / "conda-meta" / "history").mkdir()  # a directory cannot be read as a file
    history = read_history(tmp_path)
    assert history.blocks == ()
    assert len(history.problems) == 1 and "cannot read" in history.problems[0]


# --- names, dists and channels --------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("numpy", "numpy"),
        ("NumPy", "numpy"),
        ("python=3.12", "python"),
        ('"python=3.12"', "python"),
        ("'python=3.12'", "python"),
        ("numpy 1.2.*", "numpy"),
        ("numpy>=1.2,<2", "numpy"),
        ("numpy !=1.2", "numpy"),
        ("numpy~=1.2", "numpy"),
        ("numpy==1.2=py312_0", "numpy"),
        ("conda-forge::numpy[version='>=1.2']", "numpy"),
        ("conda-forge/linux-64::numpy>=1.0", "numpy"),
        ("defaults/linux-64::pkg", "pkg"),
        ("https://conda.anaconda.org/conda-forge::numpy", "numpy"),
        ("http://host:8080/chan::numpy 1.0", "numpy"),
        ("*/linux-64::foo>=1.0", "foo"),
        ("python_abi[build=*_cp313t]", "python_abi"),
        ("pkg[channel=https://x.org/c, subdir=linux-64]", "pkg"),
        ("__glibc>=2.17", "__glibc"),
        ("numpy # a comment", "numpy"),
        ("numpy >=1 if __unix", "numpy"),
        ("https://x.org/c/linux-64/numpy-1.26.0-py312_0.conda", "numpy"),
        ("./pkgs/scikit-learn-1.0-py39_0.tar.bz2", "scikit-learn"),
        ("*", None),
        ("num*", None),
        ("mkl@", None),
        (">=1.0", None),
        ("", None),
        ("   ", None),
        ("conda-forge::", None),
        ("not a [spec", "not"),
    ],
)
def test_spec_name(spec: str, name: str | None) -> None:
    assert spec_name(spec) == name


@pytest.mark.parametrize(
    ("text", "dist"),
    [
        ("numpy-1.9.1-py27_0", Dist(None, "numpy", "1.9.1", "py27_0")),
        ("defaults::conda-env-2.6.0-1", Dist("defaults", "conda-env", "2.6.0", "1")),
        (
            "https://conda.anaconda.org/conda-forge/noarch::font-ttf-ubuntu-0.83-h77eed37_3",
            Dist(
                "https://conda.anaconda.org/conda-forge/noarch",
                "font-ttf-ubuntu",
                "0.83",
                "h77eed37_3",
            ),
        ),
        ("pkgs/main/linux-64::x-1-0.conda", Dist("pkgs/main/linux-64", "x", "1", "0")),
        ("::x-1-0", Dist(None, "x", "1", "0")),
        ("x-1", None),
        ("-1-0", None),
        ("", None),
    ],
)
def test_parse_dist(text: str, dist: Dist | None) -> None:
    assert parse_dist(text) == dist
    if dist is not None and not text.endswith(".conda") and not text.startswith("::"):
        assert str(dist) == text


@pytest.mark.parametrize(
    ("channel", "normal"),
    [
        ("defaults", "defaults"),
        ("defaults/linux-64", "defaults"),
        ("pkgs/main/noarch", "pkgs/main"),
        (
            "https://conda.anaconda.org/conda-forge/osx-arm64/",
            "https://conda.anaconda.org/conda-forge",
        ),
        ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/main"),
        (
            "https://conda.anaconda.org/t/tk-123-abc/private/linux-64",
            "https://conda.anaconda.org/private",
        ),
        ("https://user:secret@host.example/chan/win-64", "https://host.example/chan"),
        ("file:///opt/channel/noarch", "file:///opt/channel"),
        ("linux-64", "linux-64"),
        ("<unknown>", ""),
        ("  ", ""),
    ],
)
def test_normalise_channel(channel: str, normal: str) -> None:
    assert normalise_channel(channel) == normal


# --- properties -----------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_error(data: bytes) -> None:
    history = parse_history(data, "h")
    assert history == parse_history(data, "h")  # the same answer every time
    lines = [block.line for block in history.blocks]
    assert lines == sorted(set(lines)) and all(n >= 1 for n in lines)
    assert all(problem.startswith("h") for problem in history.problems)  # each names the file
    requested = history.requested_specs()
    assert all(spec_name(spec) == name for name, spec in requested.items())
    installed = history.installed()
    assert all(dist.name == name for name, dist in installed.items())
    assert history.last_change_time() in (None, *(block.timestamp for block in history.blocks))
    # what export lists: requested specs of installed packages only
    assert set(history.export_specs(["numpy"])) <= {requested.get("numpy")}
    assert history.export_specs([]) == []


LINE_PIECES = st.sampled_from(
    [
        "==> 2024-01-01 00:00:00 <==",
        "==>",
        "<==",
        "# cmd: conda install x",
        "# conda version: 24.1.0",
        "# update specs: ",
        "# install specs: ",
        "# remove specs: ",
        "# neutered specs: ",
        "['numpy', 'python=3.12']",
        "[\"a\", 'b'",
        "[u'x']",
        "numpy,>=1.0,scipy",
        "+",
        "-",
        "defaults::",
        "numpy-1.0-0",
        "-x-1-0",
        "[",
        "]",
        "'",
        '"',
        "\\",
        "\x00",
        "\r",
        "\u2028",
        "@",
        "*",
        ",",
        " ",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(LINE_PIECES | st.text(max_size=8), max_size=6), max_size=30))
def test_history_like_text_parses_without_error(lines: list[list[str]]) -> None:
    text = "\n".join("".join(pieces) for pieces in lines)
    history = parse_history(text)
    for block in history.blocks:
        for spec in (*block.install_specs, *block.update_specs, *block.remove_specs):
            assert spec and spec == spec.strip() and not spec.endswith("@")
    for name, spec in history.requested_specs().items():
        assert spec_name(spec) == name


@given(st.text(max_size=200))
def test_spec_name_never_fails(spec: str) -> None:
    name = spec_name(spec)
    assert name is None or (name and name == name.lower())


NAMES = st.builds(
    str.__add__,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz_"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_.+-", max_size=12),
)
VERSION_PARTS = st.sampled_from(
    [
        "",
        "=1.2",
        " 1.2.*",
        ">=1.0,<2",
        "==1.0=py312_0",
        " >=1.0 py_0",
        "[version='>=1.0']",
        "[build=*_cp313t]",
    ]
)
CHANNELS = st.sampled_from(["", "conda-forge::", "defaults/linux-64::", "https://x.org/c/noarch::"])


@given(CHANNELS, NAMES, VERSION_PARTS)
def test_spec_name_finds_the_name(channel: str, name: str, rest: str) -> None:
    # `a.tar` + `.bz2` spells a package file, which conda reads as a file name
    assume(not f"{name}{rest}".endswith((".tar.bz2", ".conda")))
    assert spec_name(f"{channel}{name}{rest}") == name


DISTS = st.builds(
    Dist,
    st.sampled_from([None, "defaults", "conda-forge/noarch", "https://x.org/c/linux-64"]),
    NAMES,
    st.text("0123456789.abc_", min_size=1, max_size=7),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=10),
)
SPEC_LISTS = st.lists(
    st.builds(lambda name, rest: name + rest, NAMES, VERSION_PARTS), min_size=1, max_size=4
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # a cmd line
            st.lists(DISTS, max_size=5),
            st.lists(DISTS, max_size=5),
            st.none() | SPEC_LISTS,
            st.none() | SPEC_LISTS,
        ),
        max_size=8,
    )
)
def test_what_conda_writes_reads_back(
    blocks: list[tuple[bool, list[Dist], list[Dist], list[str] | None, list[str] | None]],
) -> None:
    """Blocks written the way conda >= 4.4 writes them read back as written."""
    lines = []
    for number, (cmd, removed, added, remove_specs, update_specs) in enumerate(blocks):
        lines.append(f"==> 2024-01-01 00:00:{number:02d} <==")
        if cmd:
            lines.append("# cmd: /opt/conda/bin/conda install foo")
            lines.append("# conda version: 24.1.2")
        lines += [f"-{dist}" for dist in removed] + [f"+{dist}" for dist in added]
        if remove_specs:
            lines.append(f"# remove specs: {remove_specs}")
        if update_specs:
            lines.append(f"# update specs: {update_specs}")
    history = parse_history("\n".join(lines) + "\n")
    assert history.problems == ()
    assert len(history.blocks) == len(blocks)
    expected: dict[str, str] = {}
    for block, (cmd, removed, added, remove_specs, update_specs) in zip(history.blocks, blocks):
        assert block.removed == tuple(removed) and block.added == tuple(added)
        assert block.remove_specs == tuple(remove_specs or ())
        assert block.update_specs == tuple(update_specs or ())
        assert (block.cmd is not None) == cmd
        if cmd:
            for spec in remove_specs or ():
                expected.pop(spec_name(spec) or "", None)
            for spec in update_specs or ():
                expected[spec_name(spec) or ""] = spec
    assert history.requested_specs() == expected
