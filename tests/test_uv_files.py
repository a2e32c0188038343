"""The uv backend's own plan checked file by file: what a distribution uv fetches from an
index writes (uv installs it into a scratch prefix first, and its RECORD says), and what
`uv pip uninstall -r FILE` removes (uv's own dry run).

Unit tests read scratch prefixes and uv's output laid out under `tmp_path`; the end-to-end
tests run the real safe-pip and the real uv against a PEP 503 index served on loopback and a
conda env made by py-rattler (whose six 1.16.0 ships `six.py`), as root and as uid 65534,
and assert what is on disk.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from safe_pip.backends.uv import (
    Pins,
    UvPlanError,
    dist_infos,
    installed_files,
    planned,
    read_uninstall_plan,
    scratch_dir,
    uv_cache_dir,
)
from safe_pip.backends.uv_cli import parse_uv_pip
from safe_pip.plan import wheel_destinations
from support.auditlog import operations_in
from support.fakes import fake_environment
from support.index import serve, simple_index, stop
from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel

NOBODY = 65534
DENIED = 10

# --- unit: a scratch prefix's RECORD, as the plan's files ----------------------------------


def scratch_prefix(root: Path, record: str) -> Path:
    """`root` laid out as uv's `--prefix` install of six-fork 1.0 leaves it (RECORD given)."""
    info = root / "lib" / "python3.11" / "site-packages" / "six_fork-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text(record)
    return info.parent


def test_a_scratch_record_gives_the_files_the_checks_place_in_the_env(tmp_path: Path) -> None:
    site = scratch_prefix(
        tmp_path,
        "six.py,sha256=abc,12\n"
        "six_fork-1.0.dist-info/RECORD,,\n"
        "../../../bin/six-fork-cli,sha256=def,300\n"
        "../../../share/six-fork/notes.txt,sha256=ghi,4\n",
    )
    files = installed_files(str(tmp_path), str(site), "six_fork-1.0.dist-info")
    assert files == {
        "wheel": [
            "six.py",
            "six_fork-1.0.dist-info/RECORD",
            "six_fork-1.0.data/data/share/six-fork/notes.txt",
        ],
        "scripts": ["six-fork-cli"],
    }
    env = fake_environment("/opt/conda/envs/a")
    assert wheel_destinations(env, "six-fork", files) == [
        "/opt/conda/envs/a/lib/python3.11/site-packages/six.py",
        "/opt/conda/envs/a/share/six-fork/notes.txt",
        "/opt/conda/envs/a/bin/six-fork-cli",
    ]
    assert dist_infos(str(tmp_path)) == {"six-fork": [(str(site), "six_fork-1.0.dist-info")]}


@pytest.mark.parametrize(
    "record",
    [None, b"../../../../../etc/passwd,,\n", b"\xffsix.py,,\n"],
    ids=["none", "outside", "not-utf-8"],
)
def test_a_scratch_record_that_cannot_be_read_fails(tmp_path: Path, record: bytes | None) -> None:
    site = scratch_prefix(tmp_path, "")
    if record is None:
        (site / "six_fork-1.0.dist-info" / "RECORD").unlink()
    else:
        (site / "six_fork-1.0.dist-info" / "RECORD").write_bytes(record)
    with pytest.raises(UvPlanError):
        installed_files(str(tmp_path), str(site), "six_fork-1.0.dist-info")


def test_only_items_without_a_local_wheel_need_the_scratch_install(tmp_path: Path) -> None:
    house = tmp_path / "house"
    build_wheel(house, "demo-a", "1.0")
    plan = json.dumps(
        {
            "changes": [
                {"name": "demo-a", "version": "1.0", "action": "installed"},
                {"name": "six-fork", "version": "1.0", "action": "installed"},
            ]
        }
    )
    cmd = parse_uv_pip(["install", "--find-links", str(house), "demo-a", "six-fork"], {})
    result = planned(plan, Pins(cmd))
    local, fetched = result.plan["install"]
    assert local["safe_pip_files"]["wheel"][0] == "demo_a/__init__.py"
    assert [(entry["metadata"]["name"], pin) for entry, pin in result.unread] == [
        ("six-fork", ["six-fork==1.0"])
    ]
    assert fetched is result.unread[0][0]
    only_local = json.dumps({"changes": [json.loads(plan)["changes"][0]]})
    assert planned(only_local, Pins(cmd)).unread == []  # the fast path pays nothing


# --- unit: uv's uninstall dry run ------------------------------------------------------------


def test_uvs_uninstall_dry_run_is_read() -> None:
    output = (
        "Using Python 3.11.7 environment at: /opt/conda/envs/a\n"
        "Would uninstall 2 packages\n"
        " - demo-a==1.0\n"
        " - six-fork==1.0 (from file:///srv/six_fork-1.0-py3-none-any.whl)\n"
    )
    assert read_uninstall_plan(output) == [
        {"name": "demo-a", "version": "1.0"},
        {"name": "six-fork", "version": "1.0"},
    ]
    assert (
        read_uninstall_plan("Using Python 3.11.7 environment at: x\nWould make no changes\n") == []
    )
    assert read_uninstall_plan("Would uninstall 1 package\n - six==1.16.0\n") == [
        {"name": "six", "version": "1.16.0"}
    ]


@pytest.mark.parametrize(
    "output",
    [
        "",
        "Would uninstall 2 packages\n - demo-a==1.0\n",
        "Would uninstall 1 package\n - demo-a 1.0\n",
        "\x1b[2mWould uninstall \x1b[1m1 package\x1b[0m\n - \x1b[1msix\x1b[0m==1.16.0\n",
        "Would uninstall 1 package\n - six==1.16.0\nWould uninstall 1 package\n - six==1.16.0\n",
    ],
    ids=["empty", "short", "unknown-line", "coloured", "twice"],
)
def test_a_dry_run_safe_pip_cannot_read_is_not_an_empty_plan(output: str) -> None:
    with pytest.raises(UvPlanError):
        read_uninstall_plan(output)


# --- end to end: an index on loopback, a conda env, real uv ----------------------------------


def damaged_wheel(directory: Path) -> Path:
    """damaged 1.0: its metadata first and intact, its module stored with a bad CRC, so uv's
    plan reads it and extracting it fails."""
    wheel = directory / "damaged-1.0-py3-none-any.whl"
    info = "damaged-1.0.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: damaged\nVersion: 1.0\n")
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
        archive.writestr("damaged/__init__.py", "GOOD = 1\n")
    wheel.write_bytes(wheel.read_bytes().replace(b"GOOD = 1", b"EVIL = 2"))
    return wheel


@pytest.fixture(scope="session")
def index_url(shared_session_tmp: Path) -> Iterator[str]:
    """A served index: six-fork 1.0 (ships `six.py`, like conda's six, and a console
    script), innocent 1.0 (its own module and script), damaged 1.0 (its metadata reads,
    its module does not extract)."""
    root = shared_session_tmp / "uv-files-index"
    files = root / "files"
    wheels = [
        build_wheel(
            files,
            "six-fork",
            "1.0",
            files={"six.py": "FORK = True\n"},
            entry_points={"six-fork-cli": "six:main"},
        ),
        build_wheel(files, "innocent", "1.0", entry_points={"innocent-cli": "innocent:main"}),
        damaged_wheel(files),
    ]
    simple_index(root, wheels)
    proc, url = serve(root)
    try:
        yield url + "/simple"
    finally:
        stop(proc)


class Env:
    """A py-rattler conda env with conda's six, and safe-pip run as `user` with uv."""

    def __init__(self, run: Runner, safe_pip: list[str], prefix: Prefix, user: int | None):
        self.run, self.safe_pip, self.prefix, self.user = run, safe_pip, prefix, user
        # safe-pip's (and uv's) temporary files, to see the scratch prefix is gone
        self.tmp = prefix.path.parent / f"tmp-{user}"
        self.tmp.mkdir(mode=0o700)
        if user is not None:
            os.chown(self.tmp, user, user)

    @property
    def site(self) -> Path:
        return self.prefix.site_packages

    def scratch_left(self) -> list[Path]:
        """Scratch prefixes left behind: in uv's cache (where they are made) or in TMPDIR."""
        cache = self.run.home(self.user) / ".cache" / "uv"
        assert cache.is_dir()
        return [*cache.glob(".safe-pip-scratch-*"), *self.tmp.glob("safe-pip-*")]

    def safe_pip_uv(self, *args: str, **kw: Any) -> Any:
        env = {"PATH": f"{self.prefix.bin}:/usr/bin:/bin", "TMPDIR": str(self.tmp)}
        return self.run([*self.safe_pip, *args], user=self.user, env=env, **kw)

    def install(self, url: str, *names: str) -> Any:
        python = str(self.prefix.python)
        return self.safe_pip_uv("--python", python, "--installer", "uv", "install",
                                "--index-url", url, *names)  # fmt: skip

    def record(self) -> dict[str, Any]:
        return operations_in(self.prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")[-1]

    def six_is_condas(self) -> bool:
        return (self.site / "six.py").read_text() == '__version__ = "1.16.0"\n' and sorted(
            p.name for p in self.site.glob("six*.dist-info")
        ) == ["six-1.16.0.dist-info"]


@pytest.fixture
def make_env(
    run: Runner, safe_pip_bin: list[str], conda_env_factory: Callable[..., Prefix]
) -> Callable[[int | None], Env]:
    def make(user: int | None) -> Env:
        return Env(run, safe_pip_bin, conda_env_factory("six", writable_by=user), user)

    return make


@pytest.mark.parametrize("user", [None, NOBODY], ids=["root", "nobody"])
def test_an_index_wheel_is_checked_on_the_files_it_writes(
    make_env: Callable[[int | None], Env], index_url: str, user: int | None
) -> None:
    env = make_env(user)
    proc = env.install(index_url, "six-fork")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    conda-owned" in proc.stderr
    # both owners: conda's six and the fork that would overwrite its module
    assert "six.py of six 1.16.0 (conda" in proc.stderr, proc.stderr
    assert "overwritten by six-fork 1.0" in proc.stderr
    assert env.six_is_condas()
    assert not list(env.site.glob("six_fork-*")) and not (env.prefix.bin / "six-fork-cli").exists()
    assert (env.record()["rule"], env.record()["installer"]) == ("conda-owned", "uv")
    assert env.scratch_left() == []  # the scratch prefix is removed
    # the same wheel as a direct reference to its URL
    proc = env.install(index_url, f"six-fork @ {index_url}/../files/six_fork-1.0-py3-none-any.whl")
    assert proc.returncode == DENIED, proc.stderr
    assert "six.py of six 1.16.0 (conda" in proc.stderr and "by six-fork 1.0" in proc.stderr
    assert env.six_is_condas() and not list(env.site.glob("six_fork-*"))

    # an innocent package from the same index installs, with uv, files and script
    proc = env.install(index_url, "innocent")
    assert proc.returncode == 0, proc.stderr
    info = env.site / "innocent-1.0.dist-info"
    assert (info / "INSTALLER").read_text().strip() == "uv"
    assert (env.site / "innocent" / "__init__.py").is_file()
    assert (env.prefix.bin / "innocent-cli").is_file()
    assert env.six_is_condas()
    assert env.record()["decision"] == "allowed" and env.record()["outcome"] == "ok"
    assert env.scratch_left() == []

    # uv's plan reads, its scratch install fails: uv could not install it into the env
    # either; uv's own error and exit code, nothing installed, the failure recorded
    proc = env.install(index_url, "damaged")
    assert proc.returncode not in (0, DENIED), proc.stderr
    assert "uv could not install its plan into a scratch prefix" in proc.stderr
    assert "nothing was installed" in proc.stderr and "rule:" not in proc.stderr
    assert not list(env.site.glob("damaged*"))
    assert env.scratch_left() == []
    assert env.record()["outcome"] == "failed"
    assert env.record()["exit_code"] == proc.returncode


def test_uninstall_r_is_planned_by_uv_and_checked(
    make_env: Callable[[int | None], Env], index_url: str
) -> None:
    env = make_env(NOBODY)
    assert env.install(index_url, "innocent").returncode == 0
    work = env.prefix.path.parent / "reqs"
    work.mkdir()
    (work / "outer.txt").write_text("-r sub/inner.txt\n# pip-installed only\n")
    (work / "sub").mkdir()
    inner = work / "sub" / "inner.txt"
    # uv reads -r files, nested ones and scripts' inline metadata as uv does
    (work / "tool.py").write_text('# /// script\n# dependencies = ["six"]\n# ///\n')
    for path in work.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)

    def uninstall(*args: str) -> Any:
        python = str(env.prefix.python)
        return env.safe_pip_uv("uv", "pip", "uninstall", "--python", python, *args, cwd=work)

    for conda_owned in (["-r", "outer.txt"], ["-r", "tool.py"]):
        inner.write_text("innocent\nsix  # conda's\n")
        proc = uninstall(*conda_owned)
        assert proc.returncode == DENIED, (conda_owned, proc.stderr)
        assert "rule:    conda-owned" in proc.stderr and "six 1.16.0 (conda" in proc.stderr
        assert env.six_is_condas()
        assert (env.site / "innocent-1.0.dist-info").is_dir()
    # pip's command line with uv as the installer: the same plan, the same refusal
    python = str(env.prefix.python)
    proc = env.safe_pip_uv("--python", python, "--installer", "uv", "uninstall", "-y", "-r",
                           "outer.txt", cwd=work)  # fmt: skip
    assert proc.returncode == DENIED and "rule:    conda-owned" in proc.stderr, proc.stderr
    assert env.six_is_condas() and env.record()["installer"] == "uv"
    inner.write_text("innocent\n")
    proc = uninstall("--dry-run", "-r", "outer.txt")  # uv's own dry run, shown as uv prints it
    assert proc.returncode == 0 and "Would uninstall 1 package" in proc.stderr, proc.stderr
    assert (env.site / "innocent-1.0.dist-info").is_dir()
    proc = uninstall("-r", "outer.txt")
    assert proc.returncode == 0, proc.stderr
    assert not list(env.site.glob("innocent*")) and not (env.prefix.bin / "innocent-cli").exists()
    assert env.six_is_condas()
    record = env.record()
    assert (record["command"], record["decision"], record["installer"]) == (
        "uninstall",
        "allowed",
        "uv",
    )
    assert [i["name"] for i in record["changes"]["removed"]] == ["innocent"]
    log = env.prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    plans = [r for r in map(json.loads, log.read_text().splitlines()) if r.get("kind") == "plan"]
    assert plans[-1]["plan"] == {"install": [], "remove": ["innocent==1.0"]}  # as pip's


# --- unit: where the scratch prefix goes ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "environ", "expected"),
    [
        ([], {"HOME": "/home/a"}, "/home/a/.cache/uv"),
        ([], {"HOME": "/home/a", "XDG_CACHE_HOME": "/xdg"}, "/xdg/uv"),
        ([], {"HOME": "/home/a", "XDG_CACHE_HOME": "relative"}, "/home/a/.cache/uv"),
        ([], {"HOME": "/home/a", "UV_CACHE_DIR": "/c"}, "/c"),
        (["--cache-dir", "/d"], {"UV_CACHE_DIR": "/c"}, "/d"),
        (["--cache-dir=/e"], {}, "/e"),
        (["--no-cache"], {"UV_CACHE_DIR": "/c"}, None),
        (["--cache-dir", "/d"], {"UV_NO_CACHE": "1"}, None),
        ([], {}, None),
    ],
)
def test_uvs_cache_directory_is_found_as_uv_finds_it(
    args: list[str], environ: dict[str, str], expected: str | None
) -> None:
    assert uv_cache_dir(parse_uv_pip(["install", *args, "x"], environ), environ) == expected


def test_the_scratch_prefix_is_made_in_uvs_cache_where_it_exists(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cmd = parse_uv_pip(["install", "--cache-dir", str(cache), "x"], {})
    elsewhere = Path(scratch_dir(cmd, {}))  # no cache yet: a temporary directory
    assert elsewhere.parent != cache
    elsewhere.rmdir()
    cache.mkdir()
    inside = Path(scratch_dir(cmd, {}))
    assert inside.parent == cache and inside.name.startswith(".safe-pip-scratch-")
    assert inside.stat().st_mode & 0o777 == 0o700
