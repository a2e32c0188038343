"""``values.frozen``: what the classes built before uv starts rely on."""

from __future__ import annotations

import sys

import pytest

from safe_pip.values import FrozenInstanceError, field, fields, frozen, replace


@frozen
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


def test_construction_defaults_and_fresh_factories() -> None:
    assert Point(1) == Point(x=1, y=0, tags=[])
    assert Point(1, 2).y == 2
    first, second = Point(1), Point(1)
    first.tags.append("a")
    assert second.tags == []  # a fresh list per instance
    with pytest.raises(TypeError, match="'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional arguments"):
        Point(1, 2, [], 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'z'"):
        Point(1, z=2)  # type: ignore[call-arg]


def test_equality_hash_repr_and_no_assignment() -> None:
    a, b = Point(1, 2, ["t"]), Point(1, 2, ["t"])
    assert a == b and a != Point(2, 2, ["t"])
    assert (a == (1, 2, ["t"])) is False  # type: ignore[comparison-overlap]
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    assert repr(a) == "Point(x=1, y=2, tags=['t'])"
    with pytest.raises(FrozenInstanceError):
        a.x = 3  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del a.y
    assert Point.__match_args__ == ("x", "y", "tags") == fields(Point)
    assert replace(a, y=5) == Point(1, 5, ["t"]) and a.y == 2


@pytest.mark.integration
def test_the_modules_uv_needs_first_import_neither_dataclasses_nor_typing() -> None:
    """What safe-pip imports before it starts uv on its plan stays lean."""
    import subprocess

    code = (
        "import sys; import safe_pip.guard, safe_pip.backends.uv; "
        "print(sorted({'dataclasses', 'typing', 'inspect'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}; {code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"
