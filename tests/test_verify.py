"""verify.sanctioned: the places verify-after does not watch, because the decision let
pip write there (an allowed --target, the user base with user-site in warn mode)."""

from __future__ import annotations

from pathlib import Path

from safe_pip.verify import sanctioned


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
