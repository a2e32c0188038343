"""Redaction: URL credentials and certificates never reach the log or the terminal."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from safe_pip.audit.redact import (
    redact_argv,
    redact_pem,
    redact_requirement_file_lines,
    redact_text,
    redact_url,
)

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUX\n-----END CERTIFICATE-----"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:token@pypi.example.org/simple", "https://***@pypi.example.org/simple"),
        ("https://__token__:pypi-AgEIcHlwaS5vcmc@upload.pypi.org/", "https://***@upload.pypi.org/"),
        (
            "git+https://github_pat_11ABCDEFG0123@github.com/org/repo.git@v1.2#egg=repo",
            "git+https://***@github.com/org/repo.git@v1.2#egg=repo",
        ),
        (
            "git+https://oauth2:glpat-xxxxYYYYzzzz@gitlab.example.com/g/p.git@main",
            "git+https://***@gitlab.example.com/g/p.git@main",
        ),
        ("https://user:glpat-abc@gitlab.com:8443/a/b", "https://***@gitlab.com:8443/a/b"),
        (
            "demo @ https://u:p@files.example.org/demo-1.0.whl",
            "demo @ https://***@files.example.org/demo-1.0.whl",
        ),
        ("demo@https://u:p@files.example.org/d.whl", "demo@https://***@files.example.org/d.whl"),
        # an unencoded @ in the password: everything up to the last @ of the authority
        ("https://me@example.com:p@ss@host/simple", "https://***@host/simple"),
        # a / in the password (not a valid URL, still caught: the "port" is not a number)
        ("https://user:pa/ss@host/simple", "https://***@host/simple"),
        # ... and an @ in it too (found by fuzzing: the part after the first @ was kept)
        ("https://user:pa/ss@wo@rd@host/simple", "https://***@host/simple"),
        # pip's --proxy form
        ("alice:s3cret@proxy.example.org:3128", "***@proxy.example.org:3128"),
        # nothing secret
        ("https://pypi.org/simple", "https://pypi.org/simple"),
        (
            "git+https://github.com/org/repo.git@v1#egg=x",
            "git+https://github.com/org/repo.git@v1#egg=x",
        ),
        ("https://host:8080/repo.git@v1", "https://host:8080/repo.git@v1"),
        ("https://[fe80::1]/p@x", "https://[fe80::1]/p@x"),
        ("git+ssh://git@github.com/org/repo.git", "git+ssh://git@github.com/org/repo.git"),
        (
            "https://${PIP_USER}:${PIP_TOKEN}@host/simple",
            "https://${PIP_USER}:${PIP_TOKEN}@host/simple",
        ),
        ("requests>=2", "requests>=2"),
        ("name@1.0", "name@1.0"),
        ("", ""),
        # several URLs in one text
        (
            "tried https://a:b@one/x and http://c:d@two/y",
            "tried https://***@one/x and http://***@two/y",
        ),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_redact_url_is_idempotent() -> None:
    once = redact_url("https://user:token@host/simple")
    assert redact_url(once) == once


def test_pem_blocks_are_replaced() -> None:
    assert redact_pem(f"before {PEM} after") == "before *** after"
    assert redact_pem("-----BEGIN PRIVATE KEY-----\nabc") == "***"
    assert redact_text("/etc/ssl/ca.pem") == "/etc/ssl/ca.pem"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["install", "-i", "https://u:t@idx/simple", "x"],
            ["install", "-i", "https://***@idx/simple", "x"],
        ),
        (["install", "-ihttps://u:t@idx/simple"], ["install", "-ihttps://***@idx/simple"]),
        (["install", "--index-url=https://u:t@idx/"], ["install", "--index-url=https://***@idx/"]),
        (
            ["install", "--extra-index-url", "https://u:t@x/", "-f", "https://u:t@y/"],
            ["install", "--extra-index-url", "https://***@x/", "-f", "https://***@y/"],
        ),
        (["install", "--find-links=https://u:t@y/"], ["install", "--find-links=https://***@y/"]),
        (["--proxy", "u:p@proxy:3128", "install"], ["--proxy", "***@proxy:3128", "install"]),
        (["--proxy=u:p@proxy:3128", "install"], ["--proxy=***@proxy:3128", "install"]),
        (["--proxy=http://u:p@proxy:3128"], ["--proxy=http://***@proxy:3128"]),
        (
            ["install", "-e", "git+https://ghp_abc@github.com/o/r.git#egg=r"],
            ["install", "-e", "git+https://***@github.com/o/r.git#egg=r"],
        ),
        (["install", "-r", "https://u:t@h/req.txt"], ["install", "-r", "https://***@h/req.txt"]),
        (["--cert", "/etc/ssl/ca.pem", "install"], ["--cert", "/etc/ssl/ca.pem", "install"]),
        (["--cert", PEM, "install"], ["--cert", "***", "install"]),
        (["--cert=" + PEM], ["--cert=***"]),
        (["--client-cert", "line1\nline2"], ["--client-cert", "***"]),
        (["--client", "a\nb"], ["--client", "***"]),
        (["--ce=" + PEM], ["--ce=***"]),
        (["install", "--hash=sha256:abcdef", "x==1"], ["install", "--hash=sha256:abcdef", "x==1"]),
        (["install", "--", "https://u:t@h/x.whl"], ["install", "--", "https://***@h/x.whl"]),
        ([], []),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_requirement_file_lines() -> None:
    text = (
        "# a comment\n"
        "--index-url https://user:tok@idx.example.org/simple\n"
        "-i https://u:t@idx2/simple\n"
        "--extra-index-url=https://u:t@extra/simple\n"
        "-e git+https://ghp_SECRET@github.com/o/r.git@main#egg=r\n"
        "demo @ https://u:t@files/demo.whl   # pinned\n"
        "numpy==1.26 --hash=sha256:0123\n"
        "https://u:to\\\n"
        "ken@host/split.whl\n"
    )
    lines = redact_requirement_file_lines(text)
    assert lines == [
        "# a comment",
        "--index-url https://***@idx.example.org/simple",
        "-i https://***@idx2/simple",
        "--extra-index-url=https://***@extra/simple",
        "-e git+https://***@github.com/o/r.git@main#egg=r",
        "demo @ https://***@files/demo.whl   # pinned",
        "numpy==1.26 --hash=sha256:0123",
        "https://***@host/split.whl",
    ]
    joined = "\n".join(lines)
    for secret in ("tok", "ghp_SECRET", "u:t", "token"):
        assert secret not in joined


# --- properties -----------------------------------------------------------------------------

# RFC 3986 userinfo characters (unreserved, sub-delims, %-encoding): what a valid URL may hold
USERINFO = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%",
    min_size=8,
    max_size=40,
)
HOST = st.from_regex(
    r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}(:[0-9]{2,5})?", fullmatch=True
)
PATH = st.from_regex(
    r"((/[A-Za-z0-9._~-]{0,12}){1,4}(@[a-z0-9.]{1,8})?(#egg=[a-z]{1,8})?)?", fullmatch=True
)
SCHEME = st.sampled_from(
    ["https", "http", "git+https", "git+http", "hg+https", "svn+https", "bzr+https"]
)


@st.composite
def secret_urls(draw: st.DrawFn) -> tuple[str, str, str]:
    """(url, secret, host+path) with the secret in the userinfo, alone or after `user:`."""
    scheme = draw(SCHEME)
    secret = draw(USERINFO)
    user = draw(st.one_of(st.none(), st.from_regex(r"[a-z_]{1,10}", fullmatch=True)))
    host = draw(HOST)
    path = draw(PATH)
    assume(secret not in f"{scheme}://{user or ''}:{host}{path}")
    assume("${" not in secret)
    userinfo = secret if user is None else f"{user}:{secret}"
    return f"{scheme}://{userinfo}@{host}{path}", secret, host + path


@given(st.text())
def test_redact_text_is_idempotent_and_leaves_plain_text_alone(text: str) -> None:
    redacted = redact_text(text)
    assert redact_text(redacted) == redacted
    assert redact_url(redact_url(text)) == redact_url(text)
    if "@" not in text and "-----BEGIN" not in text:
        assert redacted == text


@given(st.lists(st.text(), max_size=8))
def test_redact_argv_keeps_length_and_is_idempotent(argv: list[str]) -> None:
    redacted = redact_argv(argv)
    assert len(redacted) == len(argv)
    assert redact_argv(redacted) == redacted
    assert all(a == r for a, r in zip(argv, redacted) if "@" not in a and "BEGIN" not in a)


@given(st.text())
def test_requirement_file_lines_are_idempotent(text: str) -> None:
    lines = redact_requirement_file_lines(text)
    for line in lines:  # a redacted line stays as it is
        assert redact_requirement_file_lines(line) in ([line], [])
    if "@" not in text and "\\" not in text and "-----BEGIN" not in text:
        assert all(line in text for line in lines)


@given(secret_urls())
@example(("https://user:hunter2hunter2@host/simple", "hunter2hunter2", "host/simple"))
def test_secret_never_survives_and_host_and_path_do(case: tuple[str, str, str]) -> None:
    url, secret, host_path = case
    redacted = redact_url(url)
    assert secret not in redacted
    assert host_path in redacted
    assert redacted.endswith(host_path)


@given(secret_urls(), st.sampled_from(["sep", "joined", "equals", "editable", "requirement"]))
def test_secret_never_survives_in_argv(case: tuple[str, str, str], form: str) -> None:
    url, secret, host_path = case
    argv = {
        "sep": ["install", "--index-url", url, "demo"],
        "joined": ["install", f"-i{url}", "demo"],
        "equals": ["install", f"--extra-index-url={url}", "demo"],
        "editable": ["install", "-e", url],
        "requirement": ["install", f"demo @ {url}"],
    }[form]
    redacted = redact_argv(argv)
    assert not any(secret in arg for arg in redacted)
    assert any(host_path in arg for arg in redacted)


@given(secret_urls())
def test_secret_never_survives_in_requirement_files(case: tuple[str, str, str]) -> None:
    url, secret, host_path = case
    text = f"--index-url {url}\n-e {url}\ndemo @ {url} ; python_version >= '3'\n"
    assume(secret not in text.replace(url, ""))  # e.g. "python_v": the marker is no secret
    lines = redact_requirement_file_lines(text)
    assert all(secret not in line for line in lines)
    assert all(host_path in line for line in lines)


@given(
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    USERINFO.filter(lambda s: "@" not in s),
    HOST,
)
def test_proxy_secret_never_survives(user: str, secret: str, host: str) -> None:
    assume(secret not in host and secret not in user)
    redacted = redact_argv(
        ["--proxy", f"{user}:{secret}@{host}", f"--proxy={user}:{secret}@{host}"]
    )
    assert all(secret not in arg for arg in redacted)
    assert all(arg.endswith(host) for arg in redacted[1:])
