"""``safe-pip export``: the pure functions of safe_pip.export, and the command on fake prefixes."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

from safe_pip import envspec
from safe_pip.audit import reader as reader_module
from safe_pip.audit.reader import deciding_records
from safe_pip.commands import export as export_command
from safe_pip.conda_history import canonical_channels, read_history
from safe_pip.conda_records import read_records
from safe_pip.environment import Environment, EnvKind
from safe_pip.errors import UsageError
from safe_pip.export import (
    PipSection,
    conda_dependencies,
    environment_name,
    environment_yml,
    pip_requirements,
    requirements_txt,
    strip_credentials,
    yaml_scalar,
)
from support.fakes import fake_environment

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conda-meta"
HISTORIES = sorted(FIXTURES.glob("*_history"))

# conda-store's rules (conda_store_server/_internal/schema.py, CondaSpecification and
# check_pip): the env name, and each pip item a PEP 508 requirement or one of three options.
CONDA_STORE_NAME = re.compile(r"^[A-Za-z0-9-+_@$&?^~.=]+$")
CONDA_STORE_PIP_OPTIONS = ("--index-url", "--extra-index-url", "--trusted-host")


def conda_store_accepts_pip_item(item: str) -> bool:
    if item.startswith("--"):
        match = re.fullmatch("(.+?)[ =](.*)", item)
        return match is not None and match.group(1) in CONDA_STORE_PIP_OPTIONS
    try:
        Requirement(item)
    except Exception:
        return False
    return True


def yaml_load(text: str) -> Any:
    """Parse YAML with PyYAML (a test dependency), as conda and conda-store do."""
    return yaml.safe_load(text)


def record(
    installed: Sequence[Mapping[str, Any]] = (),
    removed: Sequence[Mapping[str, Any]] = (),
    *,
    command: str = "install",
    decision: str = "allowed",
    outcome: str = "ok",
    index: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "command": command,
        "decision": decision,
        "outcome": outcome,
        "changes": {"installed": list(installed), "removed": list(removed)},
        "index": dict(
            index
            or {"index_url": None, "extra_index_urls": [], "find_links": [], "no_index": False}
        ),
        "requested": [],
        "time": "2026-01-12T09:41:27Z",
    }


def dist(name: str, version: str, kind: str = "index", **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "source": {"kind": kind, **source},
        "hashes": {},
        "requested": True,
    }


# --- the net effect ---------------------------------------------------------------------


def test_net_effect_applies_upgrades_and_removals_in_order() -> None:
    records = [
        record([dist("demo-a", "1.0"), dist("demo-b", "1.0"), dist("six", "1.16.0")]),
        record([dist("demo-a", "2.0")]),  # an upgrade lists only the new version
        record(removed=[{"name": "demo-b", "version": "1.0"}], command="uninstall"),
        # an upgrade that lists the old version as removed too
        record([dist("six", "1.17.0")], [{"name": "six", "version": "1.16.0"}]),
        # a removed conda package: nothing to drop from the pip part
        record(removed=[{"name": "numpy", "version": "1.26.4"}], command="uninstall"),
    ]
    pip = pip_requirements(records)
    assert pip.requirements == ["demo-a==2.0", "six==1.17.0"]
    assert pip.problems == ()


def test_net_effect_counts_failed_and_interrupted_runs_but_not_denials() -> None:
    records = [
        record([dist("kept", "1.0")], outcome="failed"),
        record([dist("half", "1.0")], outcome="interrupted"),
        record([dist("denied", "1.0")], decision="denied", outcome="denied"),
        record([dist("dry", "1.0")], outcome="dry-run"),
        {**record([dist("future", "1.0")]), "schema": 3},
    ]
    pip = pip_requirements(records)
    assert pip.requirements == ["half==1.0", "kept==1.0"]
    assert any("schema" in problem for problem in pip.problems)


def test_names_compare_normalised_and_reinstall_after_removal() -> None:
    records = [
        record([dist("Demo_A", "1.0")]),
        record(removed=[{"name": "demo-a", "version": "1.0"}]),
        record([dist("demo.a", "1.1")]),
    ]
    assert pip_requirements(records).requirements == ["demo.a==1.1"]


def test_damaged_records_are_problems_not_crashes() -> None:
    records: list[Any] = [
        "not an object",
        {**record(), "changes": "garbage"},
        {**record(), "changes": {"installed": "x", "removed": []}},
        record([{"name": "", "version": "1"}, "junk", dist("ok", "1.0")], [{"version": "1"}]),  # type: ignore[list-item]
    ]
    pip = pip_requirements(records)
    assert pip.requirements == ["ok==1.0"]
    assert len(pip.problems) == 6


def test_legacy_version_uses_arbitrary_equality() -> None:
    pip = pip_requirements([record([dist("old", "2004d")])])
    assert pip.requirements == ["old===2004d"]
    assert all(conda_store_accepts_pip_item(line) for line in pip.lines)


def test_an_invalid_name_is_left_out_with_a_note() -> None:
    pip = pip_requirements([record([dist("bad name!", "1.0")])])
    assert pip.requirements == []
    assert "not a valid PEP 508 requirement" in pip.packages[0].note


# --- sources ------------------------------------------------------------------------------


def test_vcs_is_pinned_to_the_commit_without_credentials() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    pip = pip_requirements(
        [
            record(
                [
                    dist(
                        "tool",
                        "2.0",
                        "vcs",
                        vcs="git",
                        url="https://user:secret@git.example.org/org/tool.git",
                        commit=commit,
                    ),
                    dist(
                        "sub",
                        "0.1",
                        "vcs",
                        url="git+https://****@github.com/org/mono.git@main#egg=sub&subdirectory=pkg",
                        commit=commit,
                    ),
                    dist(
                        "viassh",
                        "1.0",
                        "vcs",
                        url="git+ssh://git@github.com/org/viassh.git@v1.0",
                        commit=commit,
                    ),
                ]
            )
        ]
    )
    assert pip.requirements == [
        f"sub @ git+https://github.com/org/mono.git@{commit}#subdirectory=pkg",
        f"tool @ git+https://git.example.org/org/tool.git@{commit}",
        f"viassh @ git+ssh://git@github.com/org/viassh.git@{commit}",
    ]
    assert "secret" not in requirements_txt(pip)
    assert any("credentials were removed" in c for c in pip.comments)


def test_a_local_vcs_repository_is_pinned_in_a_form_old_pips_parse() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    pip = pip_requirements(
        [record([dist("loc", "1.0", "vcs", vcs="git", url="file:///srv/repos/loc", commit=commit)])]
    )
    # pip < 24 (packaging 21) refuses `name @ git+file:///path`; localhost is the same place
    assert pip.requirements == [f"loc @ git+file://localhost/srv/repos/loc@{commit}"]


def test_vcs_without_commit_keeps_its_ref_and_says_so() -> None:
    pip = pip_requirements(
        [record([dist("tool", "2.0", "vcs", url="git+https://h.example/t.git@v2")])]
    )
    assert pip.requirements == ["tool @ git+https://h.example/t.git@v2"]
    assert "not pinned" in pip.packages[0].note


def test_editables_become_comments() -> None:
    pip = pip_requirements(
        [record([dist("mine", "0.1.dev0", "editable", path="/home/u/src/mine")])]
    )
    assert pip.requirements == []
    assert not pip
    text = requirements_txt(pip)
    assert text == (
        "# editable (dev install, not rebuildable by conda-store): "
        "mine==0.1.dev0 from /home/u/src/mine\n"
    )


def test_local_files_are_pinned_with_a_comment_and_urls_stay_urls() -> None:
    pip = pip_requirements(
        [
            record(
                [
                    dist("loc", "0.3", "file", path="/tmp/w/loc-0.3-py3-none-any.whl"),
                    dist("tree", "1.0", "file", path="/home/u/tree"),
                    dist(
                        "web",
                        "1.2",
                        "url",
                        url="https://h.example/web-1.2.tar.gz?X-Amz-Signature=abc&v=1",
                    ),
                ]
            )
        ]
    )
    web = next(p for p in pip.packages if p.name == "web")
    assert web.requirement == "web @ https://h.example/web-1.2.tar.gz?v=1"
    assert pip.requirements[:2] == ["loc==0.3", "tree==1.0"]
    assert "/tmp/w/loc-0.3-py3-none-any.whl" in pip.packages[0].note
    assert "/home/u/tree" in pip.packages[1].note


def test_url_gets_the_recorded_hash() -> None:
    item = dist("web", "1.2", "url", url="https://h.example/web-1.2.tar.gz")
    item["hashes"] = {"sha256": "ab" * 32}
    pip = pip_requirements([record([item])])
    assert pip.requirements == [f"web @ https://h.example/web-1.2.tar.gz#sha256={'ab' * 32}"]


def test_strip_credentials() -> None:
    assert strip_credentials("https://u:p@h.example/simple") == ("https://h.example/simple", True)
    assert strip_credentials("https://tok@h.example/x") == ("https://h.example/x", True)
    assert strip_credentials("https://h.example/x") == ("https://h.example/x", False)
    assert strip_credentials("ssh://git@h.example/x") == ("ssh://git@h.example/x", False)
    assert strip_credentials("ssh://git:pw@h.example/x") == ("ssh://h.example/x", True)
    assert strip_credentials("/local/dir") == ("/local/dir", False)
    assert strip_credentials("https://h/x?access_token=1&a=b") == ("https://h/x?a=b", True)


# --- index options ------------------------------------------------------------------------


def test_index_options_from_the_records_of_listed_packages() -> None:
    private = {
        "index_url": "https://user:****@pypi.corp.example/simple",
        "extra_index_urls": ["https://extra.example/simple/"],
        "find_links": [],
        "no_index": False,
    }
    other = {"index_url": "https://gone.example/simple", "extra_index_urls": [], "no_index": False}
    pip = pip_requirements(
        [
            record([dist("corp", "1.0")], index=private),
            record([dist("gone", "1.0")], index=other),
            record(removed=[{"name": "gone", "version": "1.0"}]),
        ]
    )
    assert pip.options == (
        "--index-url https://pypi.corp.example/simple",
        "--extra-index-url https://extra.example/simple/",
    )
    assert all(conda_store_accepts_pip_item(line) for line in pip.lines)


def test_pypi_plus_a_private_index_keeps_pypi_primary() -> None:
    private = {"index_url": "https://pypi.corp.example/simple", "extra_index_urls": []}
    pip = pip_requirements([record([dist("a", "1.0")]), record([dist("b", "1.0")], index=private)])
    assert pip.options == ("--extra-index-url https://pypi.corp.example/simple",)


def test_default_index_needs_no_option_and_find_links_are_comments() -> None:
    links = {
        "index_url": None,
        "extra_index_urls": [],
        "find_links": ["/srv/wheelhouse"],
        "no_index": True,
    }
    pip = pip_requirements([record([dist("a", "1.0")], index=links)])
    assert pip.options == ()
    assert pip.requirements == ["a==1.0"]
    assert any("--find-links /srv/wheelhouse" in c for c in pip.comments)


# --- YAML ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("numpy", "numpy"),
        ("python=3.11", "python=3.11"),
        ("numpy>=1.2,<2", "numpy>=1.2,<2"),
        ("yes", '"yes"'),
        ("Off", '"Off"'),
        ("1.0", '"1.0"'),
        ("3env", '"3env"'),
        ("python 2.7*", '"python 2.7*"'),
        ("conda-forge::numpy[version='>=1']", "\"conda-forge::numpy[version='>=1']\""),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("line\nbreak", '"line\\x0abreak"'),
        ("--index-url https://h/simple", '"--index-url https://h/simple"'),
        ("a # b", '"a # b"'),
        ("x: y", '"x: y"'),
        ("", '""'),
    ],
)
def test_yaml_scalar(text: str, expected: str) -> None:
    assert yaml_scalar(text) == expected


def test_yaml_scalar_reads_back() -> None:
    samples = [
        "yes",
        "null",
        "~",
        "1e3",
        "0x1F",
        ".inf",
        "@at",
        "&anchor",
        "*alias",
        "!tag",
        "%dir",
        "`tick",
        "a: b",
        "a #b",
        "[x]",
        "{x}",
        "|",
        ">",
        "'q'",
        "tab\there",
        "ünï €",
        "emoji 😀",
        "line\nbreak",
        "nel\x85here",
        "ls\u2028here",
        "-",
        "? k",
    ]
    text = "items:\n" + "".join(f"  - {yaml_scalar(s)}\n" for s in samples)
    assert yaml_load(text) == {"items": samples}


def _sample_pip() -> PipSection:
    return pip_requirements(
        [
            record(
                [
                    dist("demo-a", "1.0"),
                    dist("loc", "0.3", "file", path="/w/loc-0.3-py3-none-any.whl"),
                    dist("mine", "0.1", "editable", path="/home/u/mine"),
                ]
            )
        ]
    )


def test_environment_yml_exact_text() -> None:
    pip = _sample_pip()
    deps = conda_dependencies(["python=3.11", "numpy 1.26*"], pip)
    text = environment_yml("proj", ["conda-forge"], deps, pip, header_comments=["a header"])
    assert text == (
        "# a header\n"
        "name: proj\n"
        "channels:\n"
        "  - conda-forge\n"
        "dependencies:\n"
        "  - python=3.11\n"
        '  - "numpy 1.26*"\n'
        "  - pip\n"
        "  - pip:\n"
        "      - demo-a==1.0\n"
        "      # loc 0.3 was installed from a local file, not an index: "
        "/w/loc-0.3-py3-none-any.whl\n"
        "      - loc==0.3\n"
        "      # editable (dev install, not rebuildable by conda-store): mine==0.1 from "
        "/home/u/mine\n"
    )
    assert yaml_load(text) == {
        "name": "proj",
        "channels": ["conda-forge"],
        "dependencies": [
            "python=3.11",
            "numpy 1.26*",
            "pip",
            {"pip": ["demo-a==1.0", "loc==0.3"]},
        ],
    }


def test_environment_yml_without_pip_or_channels() -> None:
    pip = pip_requirements([record([dist("mine", "0.1", "editable", path="/p")])])
    text = environment_yml("e", [], conda_dependencies(["python=3.12"], pip), pip)
    assert text == (
        "name: e\n"
        "dependencies:\n"
        "  - python=3.12\n"
        "  # editable (dev install, not rebuildable by conda-store): mine==0.1 from /p\n"
    )
    assert yaml_load(text) == {"name": "e", "dependencies": ["python=3.12"]}


def test_environment_yml_empty_has_a_list_not_null() -> None:
    pip = pip_requirements([])
    text = environment_yml("e", [], conda_dependencies([], pip), pip)
    assert text == "name: e\ndependencies: []\n"
    assert yaml_load(text) == {"name": "e", "dependencies": []}


def test_pip_is_added_once_and_python_when_asked() -> None:
    pip = _sample_pip()
    assert conda_dependencies(["conda-forge::pip>=23"], pip) == ["conda-forge::pip>=23"]
    assert conda_dependencies([], pip, python_version="3.11") == ["python=3.11", "pip"]
    assert conda_dependencies(["python 3.12*"], pip, python_version="3.11") == [
        "python 3.12*",
        "pip",
    ]
    assert conda_dependencies(["numpy"], pip_requirements([])) == ["numpy"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("proj", "proj"),
        ("my env", "my-env"),
        ("base", "base-copy"),
        ("/", "env"),
        ("a:b#c", "a-b-c"),
    ],
)
def test_environment_name(name: str, expected: str) -> None:
    assert environment_name(name) == expected
    assert CONDA_STORE_NAME.match(environment_name(name))


def test_requirements_txt_exact_text() -> None:
    text = requirements_txt(_sample_pip(), header_comments=["h"])
    assert text == (
        "# h\n"
        "demo-a==1.0\n"
        "# loc 0.3 was installed from a local file, not an index: /w/loc-0.3-py3-none-any.whl\n"
        "loc==0.3\n"
        "# editable (dev install, not rebuildable by conda-store): mine==0.1 from /home/u/mine\n"
    )


def test_comments_cannot_break_out_of_their_line() -> None:
    pip = pip_requirements(
        [record([dist("mine", "0.1", "editable", path="/x\nname: evil\r\n- y\x85z\u2028w")])]
    )
    text = environment_yml("e", [], ["python=3.11"], pip)
    assert yaml_load(text) == {"name": "e", "dependencies": ["python=3.11"]}


# --- the conda part, from real conda-meta files --------------------------------------------


@pytest.mark.parametrize("history_file", HISTORIES, ids=lambda p: p.name)
def test_real_histories_export_valid_yaml(history_file: Path) -> None:
    history = read_history(history_file)
    specs = history.export_specs(history.installed())
    pip = _sample_pip()
    deps = conda_dependencies(specs, pip)
    text = environment_yml("proj", history.channels(), deps, pip)
    data = yaml_load(text)
    assert data["name"] == "proj"
    assert data["dependencies"][: len(specs)] == specs
    assert data["dependencies"][-1] == {"pip": ["demo-a==1.0", "loc==0.3"]}
    if history.channels():
        assert data["channels"] == history.channels()
    else:
        assert "channels" not in data
    assert all(isinstance(d, str) for d in data["dependencies"][:-1])


def test_astromarb_base_from_history() -> None:
    history = read_history(FIXTURES / "astromarb__sci-cluster__miniconda3_conda-meta_history")
    specs = history.export_specs(history.installed())
    assert specs[:2] == ["python=3.12", "conda==25.3.1"]
    assert "conda-anaconda-tos[version='>=0.1.2']" in specs
    text = environment_yml("b", ["defaults"], conda_dependencies(specs, PipSection()), PipSection())
    assert "  - \"conda-anaconda-tos[version='>=0.1.2']\"\n" in text
    assert "  - pip\n" in text  # requested in the history, not added


# --- the command, on fake prefixes (no interpreter is run) ---------------------------------


def fake_env(prefix: Path, kind: EnvKind, name: str = "proj") -> Environment:
    site = prefix / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    return fake_environment(
        prefix,
        kind,
        name=name,
        user_base="/nonexistent",
        user_site="/nonexistent",
        user_site_enabled=False,
        pip_version="24.0",
    )


def install_dist_info(env: Environment, name: str, version: str, installer: str = "pip") -> None:
    info = Path(env.purelib) / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer + "\n")


def write_log(prefix: Path, lines: Sequence[str]) -> None:
    log = prefix / "var" / "log" / "safe-pip" / "audit.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(line + "\n" for line in lines))


def run_export(monkeypatch: pytest.MonkeyPatch, env: Environment, *argv: str) -> int:
    monkeypatch.setattr(export_command, "target_environment", lambda _python, _environ: env)
    monkeypatch.setattr(
        envspec, "read_records", lambda prefix: read_records(prefix, use_cache=False)
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--python")
    parser.add_argument("--format", default="environment.yml")
    parser.add_argument("--name")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(list(argv))
    return export_command.run(args, {"XDG_STATE_HOME": str(Path(env.prefix).parent / "state")})


@pytest.fixture
def conda_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "envs" / "proj"
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True)
    shutil.copy(
        FIXTURES / "conda__conda__tests_data_env_metadata_envpy313tosx_whl_conda-meta_history",
        meta / "history",
    )
    for record_file in (FIXTURES / "json").glob("conda__conda__tests_data_env_metadata_env*.json"):
        short = record_file.name.split("conda-meta_", 1)[1]
        shutil.copy(record_file, meta / short)
    return prefix


def test_command_exports_a_conda_env(
    monkeypatch: pytest.MonkeyPatch,
    conda_prefix: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = fake_env(conda_prefix, EnvKind.CONDA_ENV)
    install_dist_info(env, "demo-a", "2.0")
    install_dist_info(env, "stray", "1.0")
    write_log(
        conda_prefix,
        [
            json.dumps(record([dist("demo-a", "1.0")])),
            "{damaged",
            json.dumps(record([dist("demo-a", "2.0")])),
            json.dumps(record([dist("gone", "1.0")])),
        ],
    )
    out = tmp_path / "out" / "environment.yml"
    out.parent.mkdir()
    code = run_export(monkeypatch, env, "-o", str(out))
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "damaged lines skipped: 2" in captured.err
    assert "gone 1.0" in captured.err  # in the log, not installed
    assert "stray 1.0" in captured.err  # installed by pip, not in the log
    text = out.read_text()
    assert text.startswith("# written by safe-pip ")
    assert f"# from the env {conda_prefix} (conda-env" in text
    data = yaml_load(text)
    assert data["name"] == "proj"
    assert data["channels"] == ["conda-forge"]
    # python_abi and python have records; pip has one too
    # python_abi was asked for but has no record here: left out, as conda does
    # stray is really in the env: pinned as installed, never dropped (with a comment)
    assert data["dependencies"] == [
        "python=3.13",
        "pip",
        {"pip": ["demo-a==2.0", "gone==1.0", "stray==1.0"]},
    ]
    assert "# installed around safe-pip (not in its audit log); pinned as installed" in text
    assert CONDA_STORE_NAME.match(data["name"])
    pip_items = data["dependencies"][-1]["pip"]
    assert all(conda_store_accepts_pip_item(item) for item in pip_items)
    assert not list(out.parent.glob(".*.tmp"))


@pytest.mark.integration
def test_command_in_a_plain_prefix_writes_python_and_pip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "venv"
    env = fake_env(prefix, EnvKind.VENV, name="my venv")
    install_dist_info(env, "demo-a", "1.0")
    write_log(prefix, [json.dumps(record([dist("demo-a", "1.0")]))])
    code = run_export(monkeypatch, env)
    assert code == 0
    captured = capsys.readouterr()
    assert "written as 'my-venv'" in captured.err
    data = yaml_load(captured.out)
    assert data == {
        "name": "my-venv",
        "dependencies": ["python=3.11", "pip", {"pip": ["demo-a==1.0"]}],
    }
    assert "no conda-meta" in captured.out


def test_command_requirements_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = tmp_path / "p"
    env = fake_env(prefix, EnvKind.OTHER)
    install_dist_info(env, "demo-a", "1.0")
    write_log(prefix, [json.dumps(record([dist("demo-a", "1.0")]))])
    code = run_export(monkeypatch, env, "--format", "requirements")
    assert code == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if not line.startswith("#")] == ["demo-a==1.0"]


def test_requested_urls_lose_their_credentials(tmp_path: Path) -> None:
    # the spec offered for a refused install on a read-only env (nextstep) is a file in
    # the user's home: the tokens of the request stay out of it
    env = fake_env(tmp_path / "p", EnvKind.OTHER, name="p")
    text = envspec.render(
        env,
        {"XDG_STATE_HOME": str(tmp_path / "state")},
        extra_requirements=[
            "git+https://ghp_T0KEN@github.com/org/repo.git@v1#egg=repo",
            "tool @ https://user:pw%40x@files.example.org/tool-1.0.tar.gz?token=abc&v=1",
            "demo-a>=1; python_version >= '3'",
            "git+ssh://git@github.com/org/other.git",
        ],
    ).text
    for secret in ("ghp_T0KEN", "pw%40x", "token=abc"):
        assert secret not in text
    assert "git+https://github.com/org/repo.git@v1#egg=repo" in text
    assert "tool @ https://files.example.org/tool-1.0.tar.gz?v=1" in text
    assert "demo-a>=1; python_version >= '3'" in text
    assert "git+ssh://git@github.com/org/other.git" in text
    assert "credentials were removed from the requested URLs" in text


def test_command_rejects_an_invalid_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = fake_env(tmp_path / "p", EnvKind.OTHER)
    with pytest.raises(UsageError):
        run_export(monkeypatch, env, "--name", "has space")


@pytest.mark.integration
def test_command_without_log_or_conda_meta(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = fake_env(tmp_path / "p", EnvKind.OTHER, name="p")
    code = run_export(monkeypatch, env)
    assert code == 0
    assert yaml_load(capsys.readouterr().out) == {"name": "p", "dependencies": ["python=3.11"]}


def test_command_output_write_failure_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = fake_env(tmp_path / "p", EnvKind.OTHER, name="p")
    with pytest.raises(UsageError, match="cannot write"):
        run_export(monkeypatch, env, "-o", str(tmp_path / "missing-dir" / "env.yml"))


def test_canonical_channels() -> None:
    assert canonical_channels(
        [
            "https://conda.anaconda.org/conda-forge",
            "https://repo.anaconda.com/pkgs/main",
            "pkgs/r",
            "defaults",
            "https://mirror.example/conda-forge",
            "bioconda",
            "https://conda.anaconda.org/conda-forge/",
        ]
    ) == ["conda-forge", "defaults", "https://mirror.example/conda-forge", "bioconda"]


# --- reading only the records that matter --------------------------------------------------


def jsonl(records: Sequence[Any], *, compact: bool = True) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    return b"".join(json.dumps(r, separators=separators).encode() + b"\n" for r in records)


def replay_all(data: bytes) -> PipSection:
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return pip_requirements(records)


_NAMES = ["demo-a", "Demo_A", "demo.b", "six", "numpy", "tool"]
_event = st.one_of(
    st.builds(
        lambda names, version, kind, decision, outcome: record(
            [dist(n, version, kind, url="https://h.example/x", path="/p") for n in names],
            decision=decision,
            outcome=outcome,
            index={"index_url": f"https://{version}.example/simple"},
        ),
        st.lists(st.sampled_from(_NAMES), max_size=3),
        st.sampled_from(["1.0", "2.0", "3.0"]),
        st.sampled_from(["index", "editable", "url", "file"]),
        st.sampled_from(["allowed", "allowed", "denied"]),
        st.sampled_from(["ok", "failed", "interrupted", "denied", None]),
    ),
    st.builds(
        lambda names: record(removed=[{"name": n, "version": "1.0"} for n in names]),
        st.lists(st.sampled_from(_NAMES), max_size=2),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(_event, st.just("{torn"), st.just("")), max_size=30),
    st.booleans(),
    st.sampled_from([16, 200, 1 << 18]),
)
def test_deciding_records_replay_like_all_records(
    events: list[Any], compact: bool, chunk: int
) -> None:
    lines = [
        json.dumps(e, separators=(",", ":") if compact else (", ", ": ")).encode()
        if isinstance(e, dict)
        else e.encode()
        for e in events
    ]
    data = b"".join(line + b"\n" for line in lines)
    old = reader_module._DECIDING_CHUNK
    reader_module._DECIDING_CHUNK = chunk
    try:
        chosen, damaged = deciding_records(data)
    finally:
        reader_module._DECIDING_CHUNK = old
    assert pip_requirements(chosen) == replay_all(data)
    torn = [n for n, line in enumerate(lines, 1) if line == b"{torn"]
    assert damaged == torn


def test_deciding_records_parses_few_lines() -> None:
    many = [record([dist(f"p{n % 50}", f"1.{n}")]) for n in range(2000)]
    many += [record(decision="denied", outcome="denied") for _ in range(500)]
    chosen, damaged = deciding_records(jsonl(many))
    assert len(chosen) == 50
    assert damaged == []
    assert pip_requirements(chosen).requirements == pip_requirements(many).requirements


def test_deciding_records_ignores_an_unterminated_last_line() -> None:
    data = jsonl([record([dist("a", "1.0")])]) + b'{"schema":1,"decision":"allo'
    chosen, damaged = deciding_records(data)
    assert [r["changes"]["installed"][0]["name"] for r in chosen] == ["a"]
    assert damaged == []


def test_deciding_records_names_with_escapes_are_always_read() -> None:
    weird = dist('we"ird', "1.0")
    data = jsonl([record([weird]), record([dist("a", "1.0")]), record([dist("a", "2.0")])])
    chosen, _ = deciding_records(data)
    assert len(chosen) == 2  # the weird one and the newest "a"
    assert replay_all(data) == pip_requirements(chosen)


def test_deciding_records_blank_and_damaged_lines() -> None:
    data = b"\n" + jsonl([record([dist("a", "1.0")])]) + b"not json\n\n[1]\n"
    chosen, damaged = deciding_records(data)
    assert len(chosen) == 1
    assert damaged == [3, 5]


def test_command_merges_the_env_log_and_the_user_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safe_pip.audit.locations import user_log_path

    prefix = tmp_path / "p"
    env = fake_env(prefix, EnvKind.OTHER, name="p")
    early = {**record([dist("a", "1.0"), dist("b", "1.0")]), "time": "2026-01-01T00:00:00Z"}
    middle = {**record([dist("a", "2.0")]), "time": "2026-01-02T00:00:00Z"}
    late = {**record(removed=[{"name": "b", "version": "1.0"}]), "time": "2026-01-03T00:00:00Z"}
    write_log(prefix, [json.dumps(early), json.dumps(late)])
    user_log = user_log_path(env, {"XDG_STATE_HOME": str(tmp_path / "state")})
    assert user_log is not None
    Path(user_log).parent.mkdir(parents=True)
    Path(user_log).write_text(json.dumps(middle) + "\n")
    assert run_export(monkeypatch, env, "--format", "requirements") == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if not line.startswith("#")] == ["a==2.0"]


def test_find_links_comment_names_the_packages_it_served() -> None:
    links = {"index_url": None, "find_links": ["/srv/wheels/", "https://h.example/links.html"]}
    pip = pip_requirements(
        [
            record(
                [
                    dist("a", "1.0", "file", path="/srv/wheels/a-1.0-py3-none-any.whl"),
                    dist("b", "2.0", "file", path="/elsewhere/b-2.0-py3-none-any.whl"),
                ],
                index=links,
            )
        ]
    )
    assert [p.note for p in pip.packages] == [
        "",
        "b 2.0 was installed from a local file, not an index: /elsewhere/b-2.0-py3-none-any.whl",
    ]
    assert pip.comments[0].startswith("--find-links /srv/wheels/ served a 1.0: a local directory")
    assert pip.comments[1].startswith(
        "--find-links https://h.example/links.html was used: conda-store refuses --find-links"
    )


def test_lone_surrogates_become_replacement_characters() -> None:
    assert yaml_scalar("a\udc80b") == '"a\ufffdb"'
    pip = pip_requirements([record([dist("mine", "0.1", "editable", path="/p\udc80")])])
    requirements_txt(pip).encode("utf-8")  # does not raise
