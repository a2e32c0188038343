"""Fixtures for integration tests: real prefixes, a wheelhouse, safe-pip, and `run`.

All of them are lazy (nothing is built unless a test asks) and need root: they
chown, switch uid with setpriv and copy the interpreter from /root/.pyenv.
Without root they skip. Set SAFE_PIP_KEEP_TMP=1 to keep the per-test
directories under /tmp/safe-pip-tests for inspection.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from support.prefixes import DEFAULT_NAMES, BasePython, Prefix, make_prefix
from support.prefixes import base_python as get_base_python
from support.run import Runner, safe_pip_cmd
from support.wheels import build_wheel

SHARED_TMP_ROOT = Path("/tmp/safe-pip-tests")


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration fixtures need root (chown, setpriv, /root/.pyenv)")


def _new_shared_dir(label: str) -> Path:
    """A fresh 0755 directory under /tmp/safe-pip-tests, reachable by every uid."""
    SHARED_TMP_ROOT.mkdir(mode=0o755, exist_ok=True)
    st = SHARED_TMP_ROOT.lstat()
    if st.st_uid != os.geteuid() or SHARED_TMP_ROOT.is_symlink():
        raise RuntimeError(f"{SHARED_TMP_ROOT} is not ours (uid {st.st_uid}); remove it")
    os.chmod(SHARED_TMP_ROOT, 0o755)
    safe_label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)[:60]
    path = Path(tempfile.mkdtemp(prefix=f"{safe_label}-", dir=SHARED_TMP_ROOT))
    os.chmod(path, 0o755)
    return path


def _remove_shared_dir(path: Path) -> None:
    if not os.environ.get("SAFE_PIP_KEEP_TMP"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_tmp(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory under /tmp/safe-pip-tests (0755, root-owned), removed afterwards."""
    _require_root()
    path = _new_shared_dir(request.node.name)
    yield path
    _remove_shared_dir(path)


@pytest.fixture(scope="session")
def shared_session_tmp() -> Iterator[Path]:
    """Like shared_tmp, once per session (for the wheelhouse and similar)."""
    _require_root()
    path = _new_shared_dir("session")
    yield path
    _remove_shared_dir(path)


@pytest.fixture(scope="session")
def base_python() -> BasePython:
    """The cached world-readable Python 3.11 copy (built on first use, ~2 s)."""
    _require_root()
    return get_base_python("3.11")


@pytest.fixture
def prefix_factory(shared_tmp: Path, base_python: BasePython) -> Callable[..., Prefix]:
    """`prefix_factory(kind="plain", name=None, root=shared_tmp, **make_prefix options)`.

    Default names are made unique within the test (python, python-2, ...).
    """

    def factory(kind: str = "plain", name: str | None = None, **options: Any) -> Prefix:
        root = Path(options.pop("root", shared_tmp))
        if name is None:
            name = DEFAULT_NAMES[kind]
            number = 1
            while (root / name).exists():
                number += 1
                name = f"{DEFAULT_NAMES[kind]}-{number}"
        return make_prefix(root, kind, name, **options)

    return factory


@pytest.fixture(scope="session")
def wheelhouse(shared_session_tmp: Path) -> Path:
    """A world-readable --find-links directory: demo-a 1.0 and 2.0, demo-b 1.0
    (requires demo-a), six 1.17.0 (a single-module distribution like the real one)."""
    house = shared_session_tmp / "wheelhouse"
    build_wheel(house, "demo-a", "1.0")
    build_wheel(house, "demo-a", "2.0")
    build_wheel(house, "demo-b", "1.0", requires=["demo-a"])
    build_wheel(house, "six", "1.17.0", files={"six.py": '__version__ = "1.17.0"\n'})
    os.chmod(house, 0o755)
    return house


@pytest.fixture(scope="session")
def safe_pip_bin() -> list[str]:
    """argv prefix running this checkout's safe-pip; works for uid 65534 too."""
    _require_root()
    return safe_pip_cmd()


@pytest.fixture
def run(shared_tmp: Path) -> Runner:
    """`run(argv, user=None|65534, env=..., cwd=..., system_policy=..., input=...)`:
    a clean-environment subprocess (see support.run.run_as), HOME under shared_tmp."""
    return Runner(shared_tmp)
