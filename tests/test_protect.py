"""protect / --shim / unprotect on real prefixes, and the shim as users meet it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from support.prefixes import Prefix
from support.run import Runner

pytestmark = pytest.mark.integration

NOBODY = 65534


def snapshot(prefix: Prefix) -> dict[str, str]:
    """Every file under bin/ and the stdlib dir's own entries, with content hashes."""
    found = {}
    for directory in (prefix.bin, prefix.stdlib):
        for path in sorted(directory.iterdir()):
            if path.is_symlink():
                found[str(path)] = "->" + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_protect_shim_unprotect_round_trip(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env")
    before = snapshot(env)
    proc = run([*safe_pip_bin, "protect", "--shim", "--python", str(env.python)])
    assert proc.returncode == 0, proc.stderr
    marker = env.stdlib / "EXTERNALLY-MANAGED"
    assert marker.is_file() and "[externally-managed]" in marker.read_text()
    for name in ("pip", "pip3", "pip3.11"):
        assert "safe-pip shim" in (env.bin / name).read_text()
        assert os.access(env.bin / name, os.X_OK)

    # bare pip now refuses (PEP 668) ...
    bare = run(
        [
            str(env.python),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "demo-a",
        ]
    )
    assert bare.returncode != 0 and "externally-managed" in (bare.stdout + bare.stderr)
    assert not any(env.site_packages.glob("demo_a*"))
    # ... while the shim goes through safe-pip, bound to its env even with another python on PATH
    other = prefix_factory("plain")
    shim = run(
        [str(env.bin / "pip"), "install", "--no-index", "--find-links", str(wheelhouse), "demo-a"],
        env={"PATH": f"{other.bin}:/usr/bin:/bin"},
    )
    assert shim.returncode == 0, shim.stderr
    assert any(env.site_packages.glob("demo_a-1.0*.dist-info")) or any(
        env.site_packages.glob("demo_a-2.0*.dist-info")
    )
    assert not any(other.site_packages.glob("demo_a*"))
    refused = run(
        [str(env.bin / "pip"), "install", "--user", "demo-a"], env={"PATH": "/usr/bin:/bin"}
    )
    assert refused.returncode == 10 and "user-site" in refused.stderr

    # protect is idempotent
    again = run([*safe_pip_bin, "protect", "--shim", "--python", str(env.python)])
    assert again.returncode == 0 and "kept" in again.stdout

    proc = run([*safe_pip_bin, "unprotect", "--python", str(env.python)])
    assert proc.returncode == 0, proc.stderr
    after = snapshot(env)
    assert after == before
    assert not (env.path / "etc" / "safe-pip").exists()


def test_protect_message_comes_from_policy(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    env = prefix_factory("conda-env")
    policy = 'version = 1\n[marker]\nmessage = """Use pip, it is safe-pip.\nAsk #hub-help."""\n'
    assert (
        run(
            [*safe_pip_bin, "protect", "--python", str(env.python)], system_policy=policy
        ).returncode
        == 0
    )
    text = (env.stdlib / "EXTERNALLY-MANAGED").read_text()
    assert "Use pip, it is safe-pip." in text and "Ask #hub-help." in text
    bare = run([str(env.python), "-m", "pip", "install", "x"])
    assert "Use pip, it is safe-pip." in bare.stderr


def test_unprivileged_user_cannot_protect_a_root_env(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    env = prefix_factory("conda-env")
    proc = run([*safe_pip_bin, "protect", "--python", str(env.python)], user=NOBODY)
    assert proc.returncode == 13, proc.stderr
    assert not (env.stdlib / "EXTERNALLY-MANAGED").exists()


def test_stale_marker_after_python_upgrade_is_reported(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    env = prefix_factory("conda-env")
    old = env.path / "lib" / "python3.10"
    old.mkdir()
    (old / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=old\n")
    status = run([*safe_pip_bin, "status", "--json", "--python", str(env.python)])
    assert status.returncode == 0, status.stderr
    import json

    data = json.loads(status.stdout)
    assert data["env"]["stale_markers"] == [str(old / "EXTERNALLY-MANAGED")]
    assert data["env"]["marker"] is None
    text = run([*safe_pip_bin, "status", "--python", str(env.python)]).stdout
    assert "stale marker" in text


def test_status_reports_kind_and_policy(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    import json

    # writable by the hub user status answers for when run as root
    base = prefix_factory("conda-base", writable_by=NOBODY)
    env = prefix_factory("conda-env", writable_by=NOBODY)
    for prefix, kind, install_ok in ((base, "conda-base", False), (env, "conda-env", True)):
        proc = run([*safe_pip_bin, "status", "--json"], env={"PATH": f"{prefix.bin}:/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["schema"] == "safe-pip.status/1"
        assert data["env"]["kind"] == kind
        assert data["target"]["chosen_by"] == "`python` on PATH"
        install = next(a for a in data["allowed"] if a["operation"] == "install a package")
        assert install["allowed"] is install_ok
        user = next(a for a in data["allowed"] if a["operation"] == "user install")
        assert user["allowed"] is False and user["rule"] == "user-site"
    mismatch = run(
        [*safe_pip_bin, "status", "--python", str(env.python)],
        env={"PATH": f"{base.bin}:/usr/bin:/bin"},
    )
    assert "warning: the shell's `python`" in mismatch.stdout


def test_status_as_root_answers_for_a_hub_user(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    """A root-owned shared env: root may install there, every hub user is refused."""
    import json

    env = prefix_factory("conda-env")
    proc = run([*safe_pip_bin, "status", "--json", "--python", str(env.python)])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["for_user"].startswith("a hub user")
    assert data["env"]["writable"] is True and data["env"]["writable_for_user"] is False
    install = next(a for a in data["allowed"] if a["operation"] == "install a package")
    assert install["allowed"] is False and install["rule"] == "read-only-env"
    assert any(
        d.startswith("install a package: refused [read-only-env]") and d.endswith("for root")
        for d in data["differences"]
    )
    text = run([*safe_pip_bin, "status", "--python", str(env.python), "--as-user", "nobody"])
    assert "here (for nobody):" in text.stdout
    assert "treated differently here" in text.stdout
    # the same as the hub user sees it when running status themselves
    own = run([*safe_pip_bin, "status", "--json", "--python", str(env.python)], user=NOBODY)
    mine = json.loads(own.stdout)
    assert mine["for_user"] is None and mine["differences"] == []
    assert [a["allowed"] for a in mine["allowed"]] == [a["allowed"] for a in data["allowed"]]
    unknown = run([*safe_pip_bin, "status", "--python", str(env.python), "--as-user", "no-such"])
    assert unknown.returncode == 12
