"""verify.sanctioned: the places verify-after does not watch, because the decision let
pip write there (an allowed --target, the user base with user-site in warn mode); and
verify.unplanned_in_env: what appeared in the env that no planned wheel writes."""

from __future__ import annotations

import os
from pathlib import Path

from safe_pip.verify import sanctioned, snapshot, unplanned_in_env
from support.fakes import fake_environment


def test_a_place_in_a_root_or_holding_one_is_not_watched(tmp_path: Path) -> None:
    base = tmp_path / "home" / ".local"
    places = [
        (str(base / "lib"), "your user base"),
        (str(base / "lib" / "python3.11" / "site-packages"), "the user site of Python 3.11"),
        (str(tmp_path / "conda" / "lib" / "python3.11" / "site-packages"), "the conda base env"),
    ]
    assert sanctioned(places, [str(base)]) == places[2:]
    target = base / "lib" / "python3.11" / "site-packages" / "plugins"
    assert sanctioned(places, [str(target)]) == places[2:]
    assert sanctioned(places, [str(tmp_path / "elsewhere"), ""]) == places
    assert sanctioned(places, []) == places


def test_a_root_reached_through_a_symlink_is_the_same_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "lib").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    places = [(str(real / "lib"), "your user base")]
    assert sanctioned(places, [str(tmp_path / "link")]) == []


def test_what_the_installers_leave_in_site_packages_is_not_unplanned(tmp_path: Path) -> None:
    """Besides the planned wheels' files: pip's __pycache__ and uv's .lock (the lock it
    takes on a --target directory); anything else that appeared is reported."""
    env = fake_environment(tmp_path / "env")
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    before = snapshot([(str(site), "the env")], children=False)
    for name in ("demo_a", "demo_a-1.0.dist-info", "__pycache__", "evil"):
        (site / name).mkdir()
    (site / ".lock").write_text("")
    report = {
        "install": [
            {
                "metadata": {"name": "demo-a", "version": "1.0"},
                "safe_pip_files": {"wheel": ["demo_a/__init__.py"], "scripts": []},
            }
        ]
    }
    found = unplanned_in_env(env, before, report, ["demo-a"])
    assert [os.path.basename(e.path) for e in found] == ["evil"]
