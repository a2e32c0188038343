"""``values.frozen``: what the classes built before uv starts rely on."""

from __future__ import annotations

import os
import shutil
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
def test_what_runs_before_uv_starts_imports_only_the_interpreters_own_start() -> None:
    """What safe-pip imports before it starts uv on its plan stays lean: none of these
    standard modules (each a millisecond or more on every guarded command), so uv starts
    about 4 ms after the interpreter (``docs/performance.md``)."""
    import subprocess

    heavy = {
        "dataclasses", "typing", "inspect", "re", "enum", "subprocess", "signal",
        "threading", "selectors", "locale", "contextlib", "functools", "collections",
        "sysconfig", "json", "configparser",
    }  # fmt: skip
    # the first spawn of `--installer uv install NAME` (uv's dry run) reports what is
    # imported by then, and ends the process
    code = (
        "import os, sys\n"
        "def spawn(path, *args, **kwargs):\n"
        f"    print(os.path.basename(path), sorted({heavy!r} & set(sys.modules)), flush=True)\n"
        "    os._exit(0)\n"
        "os.posix_spawn = spawn\n"
        "from safe_pip.cli import main\n"
        f"main(['--python', {sys.executable!r}, '--installer', 'uv', 'install', 'demo'])\n"
    )
    if shutil.which("uv", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("uv is not installed in the test venv (pip install -e '.[test]')")
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = {sys.path!r}\n{code}"],
        capture_output=True,
        text=True,
        check=True,
        # no pip.conf (reading one costs configparser: docs/performance.md)
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    ).stdout
    assert out.strip() == "uv []"
