"""conda-meta/*.json: real records, hand-made edge cases, the cache, properties."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safe_pip.conda_records as conda_records
from safe_pip.conda_records import CondaRecord, RecordSet, extract_record, read_records

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "conda-meta" / "json"
ASTROMARB = "astromarb__sci-cluster__miniconda3_conda-meta_"
PY313T = "conda__conda__tests_data_env_metadata_envpy313tosx_whl_conda-meta_"
SP312 = "lib/python3.12/site-packages"
SP313T = "lib/python3.13t/site-packages"
PKGS_MAIN = "https://repo.anaconda.com/pkgs/main"
CONDA_FORGE = "https://conda.anaconda.org/conda-forge"


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test writes to the real ~/.cache."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def make_prefix(root: Path, group: str) -> Path:
    """A prefix whose conda-meta holds the fixture records of one environment."""
    meta = root / "conda-meta"
    meta.mkdir(parents=True)
    for source in sorted(FIXTURES.glob(f"{group}*.json")):
        shutil.copyfile(source, meta / source.name[len(group) :])
    return root


def write_record(meta: Path, record: dict[str, Any], indent: int | None = 2) -> Path:
    meta.mkdir(parents=True, exist_ok=True)
    path = meta / f"{record['name']}-{record['version']}-{record['build']}.json"
    path.write_text(json.dumps(record, indent=indent, sort_keys=True), encoding="utf-8")
    return path


def record(name: str, files: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": name,
        "version": "1.0",
        "build": "py312_0",
        "build_number": 0,
        "channel": f"{CONDA_FORGE}/linux-64",
        "subdir": "linux-64",
        "depends": ["python >=3.12,<3.13.0a0"],
        "files": files or [],
        "paths_data": {"paths": [{"_path": f, "path_type": "hardlink"} for f in files or []]},
        "requested_spec": "None",
    }
    fields.update(extra)
    return fields


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Set safe-pip's clock ahead by some seconds: what was just written looks settled."""
    offset = [0]

    def clock() -> int:
        return time.time_ns() + offset[0]

    def advance(seconds: float) -> None:
        offset[0] = int(seconds * 1e9)

    monkeypatch.setattr(conda_records, "_clock_ns", clock)
    return advance


# --- the real records -----------------------------------------------------------------


def test_astromarb_records(tmp_path: Path) -> None:
    records = read_records(make_prefix(tmp_path, ASTROMARB))
    assert records.problems == ()
    meta = tmp_path / "conda-meta"
    assert records.records == (
        CondaRecord(
            name="anaconda-cli-base",
            version="0.5.2",
            build="py312h06a4308_0",
            channel=PKGS_MAIN,
            subdir="linux-64",
            requested_spec=None,  # the string "None" in the file
            dist_infos=(f"{SP312}/anaconda_cli_base-0.5.2.dist-info",),
            python_site_packages_path=None,
            file=str(meta / "anaconda-cli-base-0.5.2-py312h06a4308_0.json"),
        ),
        CondaRecord(
            name="anaconda-client",
            version="1.13.0",
            build="py312h06a4308_1",
            channel=PKGS_MAIN,
            subdir="linux-64",
            requested_spec="anaconda-client",
            dist_infos=(f"{SP312}/anaconda_client-1.13.0.dist-info",),
            python_site_packages_path=None,
            file=str(meta / "anaconda-client-1.13.0-py312h06a4308_1.json"),
            requested_specs=("anaconda-client",),
        ),
        CondaRecord(
            name="archspec",
            version="0.2.3",
            build="pyhd3eb1b0_0",
            channel=PKGS_MAIN,
            subdir="noarch",
            requested_spec=(
                "defaults/noarch::archspec==0.2.3=pyhd3eb1b0_0[md5=13d01ee2d343d8539bb47055a6c0b5b2]"
            ),
            dist_infos=(f"{SP312}/archspec-0.2.3.dist-info",),
            python_site_packages_path=None,
            file=str(meta / "archspec-0.2.3-pyhd3eb1b0_0.json"),
            requested_specs=(
                "defaults/noarch::archspec==0.2.3=pyhd3eb1b0_0[md5=13d01ee2d343d8539bb47055a6c0b5b2]",
            ),
        ),
        CondaRecord(
            name="requests",
            version="2.32.3",
            build="py312h06a4308_1",
            channel=PKGS_MAIN,
            subdir="linux-64",
            requested_spec=(
                "defaults/linux-64::requests==2.32.3=py312h06a4308_1"
                "[md5=8cc2fc3e2198c2efe6cd890a7684a16a]"
            ),
            dist_infos=(f"{SP312}/requests-2.32.3.dist-info",),
            python_site_packages_path=None,
            file=str(meta / "requests-2.32.3-py312h06a4308_1.json"),
            requested_specs=(
                "defaults/linux-64::requests==2.32.3=py312h06a4308_1"
                "[md5=8cc2fc3e2198c2efe6cd890a7684a16a]",
            ),
        ),
    )
    assert records.python_record() is None
    assert records.channels() == [PKGS_MAIN]
    assert sorted(records.by_name()) == [
        "anaconda-cli-base",
        "anaconda-client",
        "archspec",
        "requests",
    ]
    owner = records.owner_of(f"{SP312}/requests-2.32.3.dist-info")
    assert owner is not None and owner.name == "requests"


def test_free_threaded_python_site_packages(tmp_path: Path) -> None:
    records = read_records(make_prefix(tmp_path, PY313T))
    assert records.problems == ()
    python = records.python_record()
    assert python is not None
    assert (python.version, python.build, python.channel, python.subdir) == (
        "3.13.2",
        "hfd29fff_1_cp313t",
        CONDA_FORGE,
        "osx-arm64",
    )
    assert python.python_site_packages_path == SP313T
    assert python.requested_spec == "python=3.13"
    assert python.dist_infos == ()
    pip = records.by_name()["pip"]
    assert (pip.channel, pip.subdir, pip.requested_spec) == (CONDA_FORGE, "noarch", "pip")
    assert pip.dist_infos == (f"{SP313T}/pip-25.0.1.dist-info",)
    for spelling in (
        f"{SP313T}/pip-25.0.1.dist-info",
        f"{SP313T}/pip-25.0.1.dist-info/",
        f"./{SP313T}/pip-25.0.1.dist-info",
        f"{SP313T}/pip-25.0.1.dist-info".replace("/", "\\"),
        f"{SP313T}/PIP-25.0.1.dist-info",
    ):
        assert records.owner_of(spelling) is pip, spelling
    assert records.owner_of(f"{SP313T}/pip-24.0.dist-info") is None
    assert records.owner_of("lib/python3.13/site-packages/pip-25.0.1.dist-info") is None


@pytest.mark.parametrize("source", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_scan_agrees_with_full_parse(source: str) -> None:
    data = (FIXTURES / source).read_bytes()
    scanned = conda_records._scan_record(data)
    assert scanned is not None  # conda's own layout is always scanned
    assert scanned == conda_records._parse_record(data, source)
    compact = json.dumps(json.loads(data)).encode()
    assert conda_records._scan_record(compact) is None  # unsure: falls back
    assert extract_record(compact) == scanned


# --- which dist-infos a record owns ---------------------------------------------------


def test_dist_infos_follow_the_python_records_site_packages(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    write_record(meta, record("python", ["bin/python3.12"], version="3.12.9", build="h0"))
    write_record(
        meta,
        record(
            "setuptools",
            [
                f"{SP312}/setuptools-75.0.dist-info/RECORD",
                f"{SP312}/setuptools/_vendor/packaging-24.2.dist-info/RECORD",
                f"{SP312}/distutils-precedence.pth",
            ],
        ),
    )
    write_record(
        meta,
        record(
            "oldstyle",
            [
                f"{SP312}/oldstyle-1.0-py3.12.egg-info/PKG-INFO",
                f"{SP312}/oldstyle-1.0-py3.12.egg-info/SOURCES.txt",
                f"{SP312}/single-2.0-py3.12.egg-info",
                "lib/python3.11/site-packages/stale-1.0.dist-info/RECORD",
                f"{SP312}/.hidden.dist-info/RECORD",
            ],
        ),
    )
    records = read_records(tmp_path).by_name()
    assert records["setuptools"].dist_infos == (f"{SP312}/setuptools-75.0.dist-info",)
    assert records["oldstyle"].dist_infos == (
        f"{SP312}/oldstyle-1.0-py3.12.egg-info",
        f"{SP312}/single-2.0-py3.12.egg-info",
    )


def test_windows_site_packages(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    write_record(meta, record("python", ["python.exe"], version="3.11.7", subdir="win-64"))
    write_record(
        meta,
        record(
            "six",
            ["Lib/site-packages/six-1.16.0.dist-info/RECORD", "lib/site-packages/six.py"],
            subdir="noarch",
        ),
    )
    records = read_records(tmp_path)
    six = records.by_name()["six"]
    assert six.dist_infos == ("Lib/site-packages/six-1.16.0.dist-info",)
    assert records.owner_of("Lib\\site-packages\\six-1.16.0.dist-info") is six


def test_without_a_python_record_any_site_packages_counts(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    write_record(
        meta,
        record(
            "tool",
            [
                "lib/python3.10/site-packages/tool-1.0.dist-info/RECORD",
                "share/tool/other-1.0.dist-info/RECORD",
            ],
        ),
    )
    tool = read_records(tmp_path).by_name()["tool"]
    assert tool.dist_infos == ("lib/python3.10/site-packages/tool-1.0.dist-info",)


def test_channel_and_subdir_from_older_fields(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    old = record("old", channel=None, subdir=None)
    old["url"] = "https://repo.anaconda.com/pkgs/free/osx-64/old-1.0-py312_0.tar.bz2"
    write_record(meta, old)
    write_record(meta, record("unknown", channel="<unknown>", subdir=None))
    write_record(meta, record("named", channel="conda-forge", subdir="noarch"))
    by_name = read_records(tmp_path).by_name()
    assert (by_name["old"].channel, by_name["old"].subdir) == (
        "https://repo.anaconda.com/pkgs/free",
        "osx-64",
    )
    assert (by_name["unknown"].channel, by_name["unknown"].subdir) == ("", "")
    assert (by_name["named"].channel, by_name["named"].subdir) == ("conda-forge", "noarch")
    assert read_records(tmp_path).channels() == [
        "conda-forge",
        "https://repo.anaconda.com/pkgs/free",
    ]


# --- bad input ------------------------------------------------------------------------


def test_bad_records_are_problems_not_errors(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    write_record(meta, record("good"))
    (meta / "truncated-1-0.json").write_text('{\n  "name": "truncated",\n  "version": "1"')
    (meta / "list-1-0.json").write_text("[1, 2]")
    (meta / "empty-1-0.json").write_bytes(b"")
    (meta / "binary-1-0.json").write_bytes(b"\xff\xfe\x00garbage")
    (meta / "noname-1-0.json").write_text(json.dumps({"version": "1", "build": "0"}))
    (meta / "numbername-1-0.json").write_text(json.dumps({"name": 3, "version": "1", "build": "0"}))
    (meta / "adir.json").mkdir()
    (meta / "history").write_text("not a record")
    (meta / "notes.txt").write_text("ignored")
    records = read_records(tmp_path)
    assert [r.name for r in records.records] == ["good"]
    assert len(records.problems) == 6
    assert all(problem.startswith(str(meta)) for problem in records.problems)


def test_duplicate_names_are_reported(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    write_record(meta, record("dup", version="1.0"))
    write_record(meta, record("dup", version="2.0"))
    records = read_records(tmp_path)
    assert len(records.records) == 2
    assert records.by_name()["dup"].version == "2.0"
    assert len(records.problems) == 1 and "a second record for 'dup'" in records.problems[0]


def test_no_conda_meta(tmp_path: Path) -> None:
    assert read_records(tmp_path) == RecordSet()
    assert read_records(tmp_path / "missing") == RecordSet()
    (tmp_path / "conda-meta").write_text("a file")
    records = read_records(tmp_path)
    assert records.records == () and len(records.problems) == 1


def test_unreadable_record(tmp_path: Path) -> None:
    path = write_record(tmp_path / "conda-meta", record("secret"))
    if os.geteuid() == 0:  # root reads a mode-0 file: fail the read with a dangling link
        path.unlink()
        path.symlink_to(path.with_name("gone"))
        records = read_records(tmp_path)
    else:
        path.chmod(0)
        try:
            records = read_records(tmp_path)
        finally:
            path.chmod(0o644)
    assert records.records == () and "cannot read" in records.problems[0]


# --- the cache ------------------------------------------------------------------------


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("conda-records-*.json"))


@pytest.fixture
def no_record_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Count the record files read from disk."""
    reads: list[str] = []
    real = conda_records._read_file

    def counting(path: str) -> Any:
        reads.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(conda_records, "_read_file", counting)
    yield reads


def test_cache_is_used_and_follows_changes(
    tmp_path: Path,
    private_cache: Path,
    no_record_reads: list[str],
    later: Callable[[float], None],
) -> None:
    meta = tmp_path / "conda-meta"
    for name in ("a", "b", "c"):
        write_record(meta, record(name, [f"{SP312}/{name}-1.0.dist-info/RECORD"]))
    later(60)
    first = read_records(tmp_path)
    assert sorted(no_record_reads) == [
        "a-1.0-py312_0.json",
        "b-1.0-py312_0.json",
        "c-1.0-py312_0.json",
    ]
    [cache] = cache_files(private_cache / "safe-pip")

    no_record_reads.clear()
    assert read_records(tmp_path) == first
    assert no_record_reads == []

    # conda replaces a record: removes it, writes the new one
    later(0)
    (meta / "b-1.0-py312_0.json").unlink()
    write_record(meta, record("b", [f"{SP312}/b-2.0.dist-info/RECORD"], version="2.0"))
    (meta / "c-1.0-py312_0.json").unlink()
    changed = read_records(tmp_path)
    assert no_record_reads == ["b-2.0-py312_0.json"]
    assert [r.name for r in changed.records] == ["a", "b"]
    assert changed.records[1].dist_infos == (f"{SP312}/b-2.0.dist-info",)

    # records written in the last two seconds are not trusted: read again next time
    no_record_reads.clear()
    assert read_records(tmp_path) == changed
    assert "b-2.0-py312_0.json" in no_record_reads
    later(60)
    read_records(tmp_path)
    no_record_reads.clear()
    assert read_records(tmp_path) == changed
    assert no_record_reads == []
    assert cache_files(private_cache / "safe-pip") == [cache]


def test_damaged_cache_is_ignored_and_replaced(
    tmp_path: Path,
    private_cache: Path,
    no_record_reads: list[str],
    later: Callable[[float], None],
) -> None:
    write_record(tmp_path / "conda-meta", record("a", [f"{SP312}/a-1.0.dist-info/RECORD"]))
    later(60)
    expected = read_records(tmp_path)
    [cache] = cache_files(private_cache)
    document = json.loads(cache.read_text())
    for damage in (
        b"\x00not json",
        b"[]",
        json.dumps({**document, "version": -1}).encode(),
        json.dumps({**document, "reads": [[1, 2, 3, 4, 5, 6, 7, 8]]}).encode(),
        json.dumps({**document, "reads": [["a", "1", "b", "", "", None, None, [3]]]}).encode(),
        json.dumps({**document, "names": [7]}).encode(),
        json.dumps({**document, "conda_meta": "/elsewhere"}).encode(),
    ):
        cache.write_bytes(damage)
        no_record_reads.clear()
        assert read_records(tmp_path) == expected
        assert no_record_reads == ["a-1.0-py312_0.json"]
    no_record_reads.clear()
    assert read_records(tmp_path) == expected
    assert no_record_reads == []
    # damaged stamps matter only once the directory changed
    cache.write_bytes(json.dumps({**document, "stamps": [[1, 2]]}).encode())
    assert read_records(tmp_path) == expected
    write_record(tmp_path / "conda-meta", record("b"))
    no_record_reads.clear()
    assert [r.name for r in read_records(tmp_path).records] == ["a", "b"]
    assert sorted(no_record_reads) == ["a-1.0-py312_0.json", "b-1.0-py312_0.json"]


def test_a_dangling_record_link_is_a_problem_and_does_not_churn_the_cache(
    tmp_path: Path, private_cache: Path, later: Callable[[float], None]
) -> None:
    meta = tmp_path / "conda-meta"
    write_record(meta, record("a"))
    (meta / "gone-1.0-0.json").symlink_to(tmp_path / "nowhere.json")
    later(60)
    first = read_records(tmp_path)
    assert [r.name for r in first.records] == ["a"] and len(first.problems) == 1
    [cache] = cache_files(private_cache)
    written = cache.stat().st_mtime_ns
    assert read_records(tmp_path) == first
    assert cache.stat().st_mtime_ns == written


def test_cache_failures_are_silent(tmp_path: Path, private_cache: Path) -> None:
    write_record(tmp_path / "env" / "conda-meta", record("a"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    assert [r.name for r in read_records(tmp_path / "env", cache_dir=blocker).records] == ["a"]
    assert [r.name for r in read_records(tmp_path / "env", use_cache=False).records] == ["a"]
    assert cache_files(private_cache) == []


def test_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_record(tmp_path / "env" / "conda-meta", record("a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    read_records(tmp_path / "env")
    assert len(cache_files(tmp_path / "xdg" / "safe-pip")) == 1
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    read_records(tmp_path / "env")
    assert len(cache_files(tmp_path / "home" / ".cache" / "safe-pip")) == 1
    explicit = tmp_path / "explicit"
    read_records(tmp_path / "env", cache_dir=explicit)
    assert len(cache_files(explicit)) == 1


# --- properties -----------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_any_bytes_are_read_without_error(data: bytes) -> None:
    read = extract_record(data, "x.json")
    assert read == extract_record(data, "x.json")
    if isinstance(read, str):  # a problem: it names the file
        assert read.startswith("x.json")
        return
    assert isinstance(read, conda_records._Fields)
    assert all(isinstance(value, str) for value in read[:5])
    # only paths that look like a dist-info or egg-info of the record are kept
    assert all(".dist-info" in c or ".egg-info" in c for c in read.candidates)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
PATHS = st.lists(
    st.builds(
        lambda head, name, tail: head + name + tail,
        st.sampled_from(["", f"{SP312}/", f"{SP312}/pkg/_vendor/", "bin/", "Lib/site-packages/"]),
        TEXT,
        st.sampled_from(
            ["", ".dist-info/RECORD", ".dist-info/METADATA", ".egg-info", ".egg-info/PKG-INFO"]
        ),
    ),
    max_size=8,
)
SCALARS = st.none() | TEXT | st.integers() | st.sampled_from(["None", "", "linux-64", "noarch"])


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=TEXT,
    version=TEXT,
    build=TEXT,
    files=PATHS,
    others=st.dictionaries(
        st.sampled_from(
            [
                "channel",
                "subdir",
                "url",
                "requested_spec",
                "python_site_packages_path",
                "depends",
                "link",
                "fn",
            ]
        ),
        SCALARS | st.lists(TEXT, max_size=2) | st.dictionaries(TEXT, TEXT, max_size=2),
    ),
    indent=st.sampled_from([None, 1, 2, 4]),
    sort_keys=st.booleans(),
    ascii_only=st.booleans(),
)
def test_scan_agrees_with_full_parse_on_any_record(
    name: str,
    version: str,
    build: str,
    files: list[str],
    others: dict[str, Any],
    indent: int | None,
    sort_keys: bool,
    ascii_only: bool,
) -> None:
    document = {"name": name, "version": version, "build": build, "files": files, **others}
    data = json.dumps(document, indent=indent, sort_keys=sort_keys, ensure_ascii=ascii_only).encode(
        "utf-8"
    )
    parsed = conda_records._parse_record(data, "")
    scanned = conda_records._scan_record(data)
    if scanned is not None:
        assert scanned == parsed
    assert extract_record(data) == parsed


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_any_conda_meta_is_read_without_error(
    tmp_path_factory: pytest.TempPathFactory, files: list[bytes]
) -> None:
    prefix = tmp_path_factory.mktemp("prefix")
    meta = prefix / "conda-meta"
    meta.mkdir()
    for number, data in enumerate(files):
        (meta / f"p{number}-1-0.json").write_bytes(data)
    records = read_records(prefix)
    assert len(records.records) + len(records.problems) == len(files)
    assert read_records(prefix) == records  # and the same again from the cache
