"""Where ``--target``/``--prefix``/``--root`` lead, placed before the decision.

Two more kinds of location are placed with them, as *write locations* that are
not install destinations: ``--src`` (where pip checks out ``-e`` VCS
requirements) and every absolute or ``~`` path in an option that reaches the
build backend or distutils (``-C``/``--config-settings``, ``--global-option``,
``--build-option``, ``--install-option``): a path there can move built files
anywhere (``-C--build-option=build_py --build-lib ~/.local/...``).  They may
lie outside the env, but not in the user base nor in a protected env.  A
relative path in a build option is relative to the build directory (pip's
temporary copy of the source) and is not placed.

The shell places each destination with ``FILESYSTEM`` (the working directory
and symlinks resolved, the protected env it may lie in looked up on disk) and
hands the result to ``decide``, which then only compares facts.  With
``LEXICAL`` the same placement is pure (paths taken as written), which is what
``decide`` falls back to when it is given no placed destinations.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence

from safe_pip.environment import Environment, EnvKind
from safe_pip.pipcli import Operation, Setting
from safe_pip.values import frozen


@frozen
class Destination:
    """One location option and where it leads."""

    setting: Setting
    #: the directory pip would write to, absolute ("" for an empty value: a real, odd location)
    path: str
    #: pip would write into the target env itself (``--root /`` counts)
    in_env: bool
    #: inside the user's base (~/.local): a user install by another route
    in_user_base: bool
    #: inside a directory of ``install.allowed-destinations``
    listed: bool
    #: the protected env it lies in (a conda base, the system Python), if any
    foreign: EnvKind | None = None
    #: an install destination (--target/--prefix/--root); False for a write location
    #: that is not one (--src, a path in a build option)
    install: bool = True
    #: it lies in another env that is frozen (conda-meta/frozen)
    frozen: bool = False

    @property
    def elsewhere(self) -> bool:
        """Outside the env and not in a directory the policy lists."""
        return not self.in_env and not self.listed


#: options whose values reach the build backend or distutils (pipcli dests)
BUILD_OPTION_DESTS = ("config_settings", "global_options", "build_options", "install_options")


@frozen
class Resolver:
    """How paths are read: as written (pure) or on the filesystem (the shell's)."""

    #: an option value as the absolute path pip would use
    absolute: Callable[[str], str]
    #: a path with symlinks resolved, for comparing locations
    real: Callable[[str], str]
    #: the protected env kind a directory lies in
    env_kind: Callable[[str], EnvKind | None]
    #: the directory lies in a frozen conda env (conda-meta/frozen)
    frozen: Callable[[str], bool] = lambda _path: False


def _no_kind(_path: str) -> EnvKind | None:
    return None


LEXICAL = Resolver(absolute=posixpath.normpath, real=posixpath.normpath, env_kind=_no_kind)


def filesystem(environ: Mapping[str, str]) -> Resolver:
    """The shell's resolver: cwd and symlinks resolved, protected envs found on disk."""
    import os

    from safe_pip.environment import enclosing_env_kind

    def absolute(value: str) -> str:
        # no lexical normalisation: `link/..` is the link's parent, as the kernel has it
        return os.path.join(os.getcwd(), value)

    return Resolver(
        absolute=absolute,
        real=os.path.realpath,
        env_kind=lambda path: enclosing_env_kind(path, environ),
        frozen=in_frozen_env,
    )


def in_frozen_env(path: str) -> bool:
    """``path`` lies in a conda env that has ``conda-meta/frozen``."""
    import os

    probe = os.path.realpath(path)
    for _ in range(16):
        if os.path.isdir(os.path.join(probe, "conda-meta")):
            return os.path.exists(os.path.join(probe, "conda-meta", "frozen"))
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    return False


def under(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or lies below it (both already resolved)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def place_destinations(
    op: Operation, env: Environment, allowed: Sequence[str], resolver: Resolver
) -> tuple[Destination, ...]:
    """The --target, --prefix and --root of ``op``, in that order, placed."""
    placed: list[Destination] = []
    for setting, install in _locations(op):
        if setting is None or setting.value is None:
            continue
        # pip does not expand ~ in these values; an empty one is a real (odd) location
        path = resolver.absolute(str(setting.value)) if setting.value else ""
        if not path:
            placed.append(Destination(setting, "", False, False, False))
            continue
        real = resolver.real(path)
        # --root R writes R + <env path>; R = "/" lands in the env itself
        root = setting is op.root_path
        in_env = real == "/" if root else under(real, resolver.real(env.prefix))
        in_user_base = bool(env.user_base) and under(real, resolver.real(env.user_base))
        listed = any(under(real, resolver.real(a)) for a in allowed)
        outside = not in_env and not listed and not in_user_base
        foreign = resolver.env_kind(path) if outside else None
        frozen = not in_env and resolver.frozen(path)
        placed.append(
            Destination(setting, path, in_env, in_user_base, listed, foreign, install, frozen)
        )
    return tuple(placed)


def _locations(op: Operation) -> list[tuple[Setting | None, bool]]:
    """(setting, is an install destination) for every location option of ``op``."""
    found: list[tuple[Setting | None, bool]] = [
        (op.target_dir, True),
        (op.prefix_path, True),
        (op.root_path, True),
        (op.settings.get("src_dir"), False),
    ]
    for dest in BUILD_OPTION_DESTS:
        setting = op.settings.get(dest)
        if setting is None or not isinstance(setting.value, tuple):
            continue
        for value in setting.value:
            for path in build_option_paths(str(value)):
                found.append((Setting(path, f"{setting.source} ({path})"), False))
    return found


def build_option_paths(value: str) -> list[str]:
    """The absolute and ``~`` paths in one build option value (``~`` expanded as a
    shell or distutils would)."""
    import os
    import re

    paths = []
    for token in re.split(r"[\s=,:;\"']+", value):
        if token.startswith("~"):
            token = os.path.expanduser(token)
        if token.startswith("/"):
            paths.append(token)
    return paths


def writes_env(op: Operation, env: Environment, resolver: Resolver) -> bool:
    """True unless some --target/--prefix/--root points outside the env."""
    return all(d.in_env for d in place_destinations(op, env, (), resolver) if d.install)
