"""Test tiers and the shared fixtures for integration tests.

Two tiers
---------
* **unit**: pure logic on in-memory fakes or files under `tmp_path`; no root, no
  subprocess, no real pip. The whole tier runs in well under a minute:
  `./scripts/test --fast` (ruff, mypy, then `pytest -m "not integration"`).
* **integration**: real pip on real prefixes, run as root and as uid 65534.
  `./scripts/test` (what CI runs) runs both tiers.

A test is in the integration tier when it is marked `integration`. You rarely
mark it yourself: every test that uses one of the fixtures in
`INTEGRATION_FIXTURES` below (directly or through another fixture) is marked
automatically at collection. Mark by hand (`@pytest.mark.integration`, or
`pytestmark = pytest.mark.integration` for a module) only a test that starts a
process or needs root without those fixtures. In the unit tier, starting a
subprocess fails the test with a message saying to mark it (see
`_no_subprocess_in_unit_tests`).

Sharing expensive set-ups
-------------------------
The suite has a time budget (README "Development"). Anything that costs more
than a second (a prefix with packages installed, a server, a kernel, a
conda channel) is built once per session and shared:

* a prefix that tests only read, or must leave untouched (refusals):
  `shared_prefix_factory("conda-base", writable_by=user)` builds it once per session;
* anything else: build it in a `scope="session"` fixture under `shared_session_tmp` (or under
  `support.prefixes.cache_dir()` with `cached_build` when it can outlive the
  session and be shared by concurrent runs; that is lock-safe);
* hand each test a fresh copy only when the test modifies it;
* a conda env: `conda_env_factory("six", "demo-rec")` makes one with py-rattler
  from the suite's local channel (built once per cache), ~0.3 s
  (`shared_conda_env_factory`: one per session, for reads and refusals); use it rather
  than writing `conda-meta/` by hand (`make_prefix("conda-env")` and
  `add_conda_package` remain for shapes rattler cannot make: old conda
  generations, conda-store builds, damaged records);
* a server or kernel started by a session fixture is stopped in its teardown
  by its own pid (never by name).

The whole suite runs on two pytest-xdist workers (`./scripts/test`): a session
fixture runs once per worker, so tests must not share fixed paths or ports
(use `shared_session_tmp` and port 0), and what should be built once per
machine goes through `cached_build`.

Fixtures are lazy (nothing is built unless a test asks) and need root: they
chown, switch uid with setpriv and copy the interpreter from /root/.pyenv.
Without root they skip. Set SAFE_PIP_KEEP_TMP=1 to keep the per-test
directories under /tmp/safe-pip-tests for inspection.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from support.conda_channel import rattler_env
from support.prefixes import DEFAULT_NAMES, BasePython, Prefix, make_prefix
from support.prefixes import base_python as get_base_python
from support.run import Runner, safe_pip_cmd
from support.wheels import build_wheel

SHARED_TMP_ROOT = Path("/tmp/safe-pip-tests")

# A test that uses any of these (directly or through another fixture) is in the
# integration tier. Add a fixture here when it builds prefixes, runs pip or
# starts processes.
INTEGRATION_FIXTURES = frozenset(
    {
        "shared_tmp",
        "shared_session_tmp",
        "base_python",
        "prefix_factory",
        "shared_prefix_factory",
        "conda_env_factory",
        "shared_conda_env_factory",
        "wheelhouse",
        "safe_pip_bin",
        "run",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses an integration fixture `integration`."""
    for item in items:
        if INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# The class itself and its method, taken before any test can replace them.
_REAL_POPEN = subprocess.Popen
_REAL_EXECUTE_CHILD = subprocess.Popen._execute_child  # type: ignore[attr-defined]


@contextlib.contextmanager
def _no_subprocess_in_unit_tests(item: pytest.Item) -> Iterator[None]:
    """Unit tests (and their fixtures) start no process: fail one that does, naming the fix."""
    # Whatever a test before did (replaced subprocess.Popen, or left early),
    # every test starts with the real class and its real method.
    popen = _REAL_POPEN
    original = _REAL_EXECUTE_CHILD
    popen._execute_child = original  # type: ignore[attr-defined]
    if item.get_closest_marker("integration") is not None:
        yield
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(
            f"{item.nodeid} starts a subprocess: it belongs in the integration tier; "
            "mark it @pytest.mark.integration (see tests/conftest.py)"
        )

    popen._execute_child = refuse  # type: ignore[attr-defined]
    try:
        yield
    finally:
        popen._execute_child = original  # type: ignore[attr-defined]


_SIGINT_HANDLER = pytest.StashKey[object]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_SIGINT_HANDLER] = signal.getsignal(signal.SIGINT)
    with _no_subprocess_in_unit_tests(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _no_subprocess_in_unit_tests(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Ctrl-C's handler is the worker's, after every test: safe-pip's code run in-process
    (``runner.wait_for`` ignores Ctrl-C once pip is done) must not leave the worker, and
    every process a later test starts, ignoring it."""
    yield
    before = item.stash.get(_SIGINT_HANDLER, None)
    if before is not None and signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)  # type: ignore[arg-type]
        raise AssertionError(f"{item.nodeid} left SIGINT's handler changed (restored now)")


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
def prefix_factory(
    shared_tmp: Path,
    base_python: BasePython,  # noqa: ARG001 - the interpreter is built (as root) first
) -> Callable[..., Prefix]:
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
def shared_prefix_factory(
    shared_session_tmp: Path, base_python: BasePython
) -> Callable[..., Prefix]:
    """`shared_prefix_factory(kind="plain", **make_prefix options)`: one prefix per distinct
    arguments for the whole session (per xdist worker), built on first use.

    For tests that only read the prefix, or whose refusal must leave it untouched (they
    then assert on it as usual: a wrong install still fails the test that made it). A test
    that changes the prefix takes its own from `prefix_factory`.
    """
    made: dict[str, Prefix] = {}

    def factory(kind: str = "plain", **options: Any) -> Prefix:
        key = repr((kind, sorted(options.items())))
        if key not in made:
            root = shared_session_tmp / "shared-prefixes" / str(len(made))
            made[key] = make_prefix(root, kind, python_version=base_python.version, **options)
        return made[key]

    return factory


@pytest.fixture
def conda_env_factory(shared_tmp: Path, base_python: BasePython) -> Callable[..., Prefix]:
    """`conda_env_factory(*packages, name="env", writable_by=None, root=shared_tmp)`:
    a conda env made by py-rattler (solve + install, offline) from the suite's local
    channel with python 3.11, pip and `packages` (specs: "six", "demo-rec",
    "demo-norec", "demo-dep"; see support.conda_channel). About 0.3 s each."""

    def factory(*packages: str, name: str = "env", **options: Any) -> Prefix:
        root = Path(options.pop("root", shared_tmp))
        specs = [f"python={base_python.version}", "pip", *packages]
        return rattler_env(root, name, specs, python_version=base_python.version, **options)

    return factory


@pytest.fixture(scope="session")
def shared_conda_env_factory(
    shared_session_tmp: Path, base_python: BasePython
) -> Callable[..., Prefix]:
    """`shared_conda_env_factory(*packages, writable_by=None)`: a `conda_env_factory` env, one
    per distinct arguments for the whole session (per xdist worker), for tests that only
    read it or whose refusal must leave it untouched (as `shared_prefix_factory`)."""
    made: dict[str, Prefix] = {}

    def factory(*packages: str, **options: Any) -> Prefix:
        key = repr((packages, sorted(options.items())))
        if key not in made:
            root = shared_session_tmp / "shared-conda-envs" / str(len(made))
            specs = [f"python={base_python.version}", "pip", *packages]
            made[key] = rattler_env(
                root, "env", specs, python_version=base_python.version, **options
            )
        return made[key]

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
