"""The one name function (names.project_name) against pip's own parser."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safe_pip.names import canonical, project_name, requirement_line_name

pip_constructors = pytest.importorskip("pip._internal.req.constructors")


def pip_name(text: str) -> str | Exception | None:
    """pip's reading of a requirement line: the name, None (unnamed), or pip's error."""
    try:
        parts = pip_constructors.parse_req_from_line(text, None)
    except Exception as error:
        return error
    return canonical(parts.requirement.name) if parts.requirement is not None else None


def test_examples_from_the_issue() -> None:
    assert project_name("git+https://h/x.git#egg=Foo") == "foo"
    assert project_name("file:///tmp/six.tar.gz#egg=six") == "six"
    assert project_name("/wheels/six-1.17.0-py3-none-any.whl") == "six"
    assert project_name("Zope.Interface[x] >= 5 ; python_version > '3'") == "zope-interface"
    assert project_name("demo @ https://h/demo-1.0-py3-none-any.whl") == "demo"
    assert project_name("git+https://h/r.git@v1") is None
    assert project_name("./project") is None
    assert requirement_line_name("-e git+https://h/r.git#egg=My_Pkg") == "my-pkg"
    assert requirement_line_name("-r other.txt") is None


_name = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_version = st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True)
_specifier = st.builds(
    lambda op, v: f"{op}{v}", st.sampled_from(["==", ">=", "<", "~=", "!="]), _version
)
_extras = st.lists(_name, max_size=2).map(lambda e: f"[{','.join(e)}]" if e else "")
_marker = st.sampled_from(
    ["", "; python_version > '3'", ";sys_platform=='linux'", " ; os_name == 'posix'"]
)
_scheme = st.sampled_from(
    ["https", "http", "file", "git+https", "git+ssh", "hg+https", "svn+https", "ftp"]
)


@st.composite
def requirement_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["pep508", "url", "egg", "wheel", "direct", "junk"]))
    name = draw(_name)
    if kind == "pep508":
        spec = draw(st.lists(_specifier, max_size=2).map(",".join))
        return f"{name}{draw(_extras)}{draw(st.sampled_from(['', ' ']))}{spec}{draw(_marker)}"
    if kind == "url":
        return (
            f"{draw(_scheme)}://h/{name}.git{draw(st.sampled_from(['', '@v1', '#subdirectory=x']))}"
        )
    if kind == "egg":
        egg = draw(st.one_of(_name, st.just("bad name"), st.just("x[y]")))
        return f"{draw(_scheme)}://h/{name}.git#egg={egg}{draw(_marker)}"
    if kind == "wheel":
        where = draw(st.sampled_from(["", "/w/", "./", "file:///w/", "https://h/"]))
        return f"{where}{name.replace('-', '_')}-{draw(_version)}-py3-none-any.whl"
    if kind == "direct":
        return f"{name}{draw(_extras)} @ {draw(_scheme)}://h/{draw(_name)}.tar.gz{draw(_marker)}"
    return draw(st.text(alphabet="abc-_.=<>!~@;:/#[] ", max_size=20))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requirement_texts())
def test_project_name_agrees_with_pip(text: str) -> None:
    expected = pip_name(text)
    if isinstance(expected, Exception):
        return  # pip refuses the line; safe-pip then refuses nothing on its account
    assert project_name(text) == expected, text


_public = st.from_regex(
    r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}((a|b|rc)[0-9])?(\.post[0-9])?(\.dev[0-9])?", fullmatch=True
)


@settings(max_examples=300, deadline=None)
@given(
    _name,
    st.sampled_from(["", "==", "!=", "<=", ">=", "<", ">"]),
    _public,
    st.sampled_from(["", " ", "  "]),
)
def test_the_fast_reading_of_plain_requirements_is_packagings(
    name: str, op: str, version: str, space: str
) -> None:
    """Plain ``name OP version`` is read without importing packaging: the same answer."""
    from packaging.requirements import Requirement

    text = f"{space}{name}{space}{op}{space}{version if op else ''}{space}"
    assert project_name(text) == canonical(Requirement(text).name)
    assert pip_name(text) == project_name(text)


def test_what_counts_as_a_plain_requirement() -> None:
    """Only these are asked of uv before the decision (a dry run of a path builds it)."""
    from safe_pip.names import is_plain_requirement

    for plain in ("six", "six==1.0", "a[b]>=1", 'x ; python_version<"3"'):
        assert is_plain_requirement(plain), plain
    for not_plain in (
        "file:.", "file:proj", "./proj", "/w/six-1.0-py3-none-any.whl", "six.whl",
        'foo-1.0.tar.gz; python_version>"3"', "foo-1.0.tar.gz[x]", "x @ https://h/x.whl",
        "git+https://h/x.git", "~/proj", "-e", "C:x",
    ):  # fmt: skip
        assert not is_plain_requirement(not_plain), not_plain


def test_the_fast_reading_is_ascii_only() -> None:
    """Names and versions pip refuses (non-ASCII letters, digits, spaces) get no name."""
    for text in ("requ\u017fts", "foo==\u0661", "foo\u2003==1"):
        assert project_name(text) is None, text
