"""Running commands the way a hub user would: clean environment, maybe another uid,
maybe a system policy visible at /etc/safe-pip/policy.toml for that process only.

Nothing from the machine running the tests leaks in: the environment is built
from scratch (no PIP_*, PIP_CONFIG_FILE=/dev/null so no pip.conf is read, HOME
a per-test directory owned by the user). Tests pass `--no-index --find-links
DIR` to pip themselves.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

from support.prefixes import (
    BasePython,
    Prefix,
    base_python,
    cache_dir,
    cached_build,
)
from support.wheels import wheel_from_installed

UNPRIVILEGED_UID = 65534  # nobody; its gid 65534 is nogroup
SYSTEM_POLICY_DIR = Path("/etc/safe-pip")
SYSTEM_POLICY_NAME = "policy.toml"
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Runtime dependencies of safe-pip copied into the tool venv (the project's
# `dependencies`, for the test interpreter's Python version).
TOOL_DEPENDENCIES = ("packaging", "filelock", "tomli")
# The tool venv matches the test interpreter, whose dependency copies it uses.
TEST_PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def clean_env(home: Path, overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment every test process gets; `overrides` set (or, with None, drop) keys."""
    env = {
        "PATH": SAFE_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def user_home(home_base: Path, user: int | None) -> Path:
    """`<home_base>/home-<uid>`, created on first use and owned by that uid (0755)."""
    uid = os.geteuid() if user is None else user
    home = home_base / f"home-{uid}"
    if not home.is_dir():
        home.mkdir(mode=0o755)
        os.chmod(home, 0o755)
        os.chown(home, uid, uid)
    return home


def as_user_argv(argv: Sequence[str], user: int | None) -> list[str]:
    """argv, prefixed with setpriv to drop to `user` (uid = gid, no groups) if given."""
    if user is None:
        return list(argv)
    return [
        "setpriv",
        f"--reuid={user}",
        f"--regid={user}",
        "--clear-groups",
        "--",
        *argv,
    ]


# Global pip configuration files pip reads unless PIP_CONFIG_FILE is /dev/null.
HOST_PIP_CONFIGS = (Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"))
GLOBAL_PIP_CONF = Path("/etc/pip.conf")

# Runs in the new mount namespace: bind each SOURCE TARGET pair, then exec argv.
_BIND_THEN_EXEC = (
    'while [ "$1" != "--" ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; shift; exec "$@"'
)


def _write_world_readable(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def _private_binds(
    scratch: Path, env: Mapping[str, str], system_policy: str | None, pip_conf: str | None
) -> list[tuple[Path, Path]]:
    """(source, target) bind mounts this process needs; empty means no namespace.

    * /etc/safe-pip: a directory holding `system_policy` as policy.toml; also an
      empty one when the host's /etc/safe-pip has anything in it, so it cannot leak.
    * /etc/pip.conf: `pip_conf` text, for tests of pip's global configuration.
    * host pip.conf files pip would read (because the test set its own
      PIP_CONFIG_FILE) are hidden behind /dev/null.
    """
    binds: list[tuple[Path, Path]] = []
    host_has_policy = SYSTEM_POLICY_DIR.is_dir() and any(SYSTEM_POLICY_DIR.iterdir())
    if system_policy is not None or host_has_policy:
        directory = scratch / "etc-safe-pip"
        directory.mkdir(mode=0o755)
        os.chmod(directory, 0o755)
        if system_policy is not None:
            _write_world_readable(directory / SYSTEM_POLICY_NAME, system_policy)
        SYSTEM_POLICY_DIR.mkdir(mode=0o755, exist_ok=True)
        binds.append((directory, SYSTEM_POLICY_DIR))
    if pip_conf is not None:
        if not GLOBAL_PIP_CONF.exists():
            GLOBAL_PIP_CONF.touch(mode=0o644)  # a mount point; empty is pip's default
        binds.append((_write_world_readable(scratch / "pip.conf", pip_conf), GLOBAL_PIP_CONF))
    if env.get("PIP_CONFIG_FILE") != os.devnull:
        binds.extend(
            (Path(os.devnull), conf)
            for conf in HOST_PIP_CONFIGS
            if conf.is_file() and not (pip_conf is not None and conf == GLOBAL_PIP_CONF)
        )
    return binds


def run_as(
    argv: Sequence[str | os.PathLike[str]],
    *,
    home_base: Path,
    user: int | None = None,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    system_policy: str | None = None,
    pip_conf: str | None = None,
    input: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run argv with a clean environment and return the completed process (text output).

    `user`: a uid to run as (via setpriv), e.g. UNPRIVILEGED_UID; None runs as
    ourselves (root). HOME is `user_home(home_base, user)`, also the default cwd.
    `env`: overrides on top of `clean_env` (None values remove a key).
    `system_policy`: TOML text shown at /etc/safe-pip/policy.toml to this process
    only, through a bind mount in a private mount namespace (needs root).
    `pip_conf`: text shown at /etc/pip.conf (pip's global config) the same way;
    it only counts if `env` also replaces PIP_CONFIG_FILE=/dev/null, and then the
    host's own global pip.conf files are hidden.
    `input`: text fed to stdin (stdin is /dev/null otherwise). Never raises on a
    non-zero exit: assert on `returncode`.
    """
    home = user_home(home_base, user)
    full_env = clean_env(home, env)
    command = as_user_argv([os.fspath(arg) for arg in argv], user)
    scratch = Path(tempfile.mkdtemp(prefix=".run-", dir=home_base))
    try:
        os.chmod(scratch, 0o755)
        binds = _private_binds(scratch, full_env, system_policy, pip_conf)
        if binds:
            pairs = [str(path) for bind in binds for path in bind]
            command = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _BIND_THEN_EXEC,
                "sh",
                *pairs,
                "--",
                *command,
            ]
        return subprocess.run(
            command,
            env=full_env,
            cwd=cwd or home,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class Runner:
    """`run_as` bound to one test's shared directory (the `run` fixture)."""

    def __init__(self, home_base: Path) -> None:
        self.home_base = home_base

    def home(self, user: int | None = None) -> Path:
        return user_home(self.home_base, user)

    def __call__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        user: int | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        system_policy: str | None = None,
        pip_conf: str | None = None,
        input: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        return run_as(
            argv,
            home_base=self.home_base,
            user=user,
            env=env,
            cwd=cwd,
            system_policy=system_policy,
            pip_conf=pip_conf,
            input=input,
            timeout=timeout,
        )


def install_setuptools(prefix: Prefix) -> subprocess.CompletedProcess[str]:
    """Install setuptools and wheel into `prefix` with its own pip, offline, as its owner
    (also into an env with a PEP 668 marker).

    setuptools comes from ensurepip's bundle (65.5.0 for 3.11) or, where none is
    bundled (3.12+), is repacked from the test venv; wheel and packaging (which
    setuptools < 70.1 needs to build wheels, editable ones included) are repacked
    from the test venv. Raises if pip fails.
    """
    wheel_dir = tool_wheels(prefix.base)
    owner = prefix.owner
    user = None if owner == os.geteuid() else owner
    with tempfile.TemporaryDirectory(prefix="safe-pip-home-") as tmp:
        os.chmod(tmp, 0o755)
        done = run_as(
            # --no-compile: a third of the time; the first build writes the bytecode.
            prefix.pip(
                "install",
                "--no-compile",
                "--no-index",
                "--find-links",
                str(wheel_dir),
                "setuptools",
                "wheel",
            ),
            home_base=Path(tmp),
            user=user,
            # set-up, as conda would do it: a marked (PEP 668) env too; older pips ignore it
            env={"PIP_BREAK_SYSTEM_PACKAGES": "1"},
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"installing setuptools into {prefix.path} failed:\n{done.stdout}{done.stderr}"
        )
    return done


def tool_wheels(base: BasePython) -> Path:
    """A cached, world-readable directory of setuptools, wheel and packaging wheels."""
    names = ["wheel", "packaging"]
    bundled = sorted(base.bundled_wheels.glob("setuptools-*.whl"))
    if not bundled:
        names.append("setuptools")
    versions = ",".join(f"{n}={metadata.version(n)}" for n in names)
    key = hashlib.sha256(f"{base.root}:{versions}".encode()).hexdigest()[:12]

    def build(staging: Path) -> None:
        for wheel in bundled:
            shutil.copy2(wheel, staging / wheel.name)
        for name in names:
            wheel_from_installed(name, staging)

    return cached_build(cache_dir() / f"tool-wheels-{base.full_version}-{key}", build)


@cache
def safe_pip_cmd(python_version: str = TEST_PYTHON_VERSION) -> list[str]:
    """argv that runs this checkout's safe-pip, runnable by any uid.

    The test venv's python is a symlink into /root (unreadable for others), so
    safe-pip runs from a second venv made from the world-readable base copy
    (cached). It sees the live source through a .pth file pointing at
    `<project>/src` when the checkout is world-readable; otherwise (a clone in a
    0700 temp dir) it gets a copy of the source, keyed on its content. The
    runtime dependencies are copies taken from the test venv.
    """
    base = base_python(python_version)
    src = PROJECT_ROOT / "src"
    live = _world_readable(src / "safe_pip" / "__init__.py")
    source_key = str(src) if live else _tree_digest(src / "safe_pip")
    deps = [name for name in TOOL_DEPENDENCIES if _installed_version(name)]
    versions = ",".join(f"{name}={_installed_version(name)}" for name in deps)
    # uv's binary, as `safe-pip-policy[uv]` puts it next to safe-pip's interpreter
    uv = shutil.which("uv", path=os.path.dirname(sys.executable))
    versions += f",uv={_installed_version('uv')}" if uv else ""
    key = hashlib.sha256(f"{base.root}:{source_key}:{versions}".encode()).hexdigest()[:12]
    final = cache_dir() / f"tool-venv-{base.full_version}-{key}"

    def build(staging: Path) -> None:
        subprocess.run(
            [str(base.python), "-m", "venv", "--without-pip", str(staging)],
            check=True,
            capture_output=True,
            env={"PATH": SAFE_PATH, "LANG": "C.UTF-8"},
        )
        site = staging / "lib" / f"python{base.version}" / "site-packages"
        if live:
            (site / "safe_pip_source.pth").write_text(f"{src}\n")
        else:
            shutil.copytree(
                src / "safe_pip", site / "safe_pip", ignore=shutil.ignore_patterns("__pycache__")
            )
        for name in deps:
            _copy_distribution(name, site)
        script = staging / "bin" / "safe-pip"
        script.write_text(
            f"#!{final / 'bin' / 'python'}\n"
            "import sys\n"
            "from safe_pip.cli import entrypoint\n"
            "if __name__ == '__main__':\n"
            "    sys.exit(entrypoint())\n"
        )
        os.chmod(script, 0o755)
        if uv:
            shutil.copy2(uv, staging / "bin" / "uv")
        subprocess.run(
            [str(base.python), "-m", "compileall", "-q", str(site)],
            check=True,
            capture_output=True,
        )

    cached_build(final, build)
    return [str(final / "bin" / "safe-pip")]


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _copy_distribution(name: str, site: Path) -> None:
    """Copy an installed distribution's files (site-packages part) into `site`."""
    dist = metadata.distribution(name)
    for entry in dist.files or ():
        parts = entry.parts
        if parts[0] == ".." or "__pycache__" in parts:
            continue
        target = site.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(dist.locate_file(entry)), target)


def _world_readable(path: Path) -> bool:
    """True when any uid can read ``path`` (every parent directory searchable)."""
    for part in [path, *path.parents]:
        mode = part.stat().st_mode
        needed = 0o005 if part.is_dir() else 0o004
        if mode & needed != needed:
            return False
    return True


def _tree_digest(top: Path) -> str:
    """A digest of the source files under ``top`` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(top.rglob("*.py")) + sorted(top.rglob("py.typed")):
        digest.update(str(path.relative_to(top)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def pip_wheel_dir(version: str) -> Path:
    """A cached dir with one pip wheel: `version` from the registry, or "newest" (the test
    venv's own pip, repacked)."""
    if version == "newest":
        newest = metadata.version("pip")

        def repack(staging: Path) -> None:
            wheel_from_installed("pip", staging)

        return cached_build(cache_dir() / f"pip-wheel-{newest}", repack)

    def download(staging: Path) -> None:
        subprocess.run(
            [
                str(Path(os.__file__).parents[2] / "bin" / "python3"),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                f"pip=={version}",
                "-d",
                str(staging),
            ],
            check=True,
            env=clean_env(staging),
        )

    return cached_build(cache_dir() / f"pip-wheel-{version}", download)
