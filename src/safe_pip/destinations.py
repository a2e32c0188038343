"""Where ``--target``/``--prefix``/``--root`` lead, placed before the decision.

The shell places each destination with ``FILESYSTEM`` (the working directory
and symlinks resolved, the protected env it may lie in looked up on disk) and
hands the result to ``decide``, which then only compares facts.  With
``LEXICAL`` the same placement is pure (paths taken as written), which is what
``decide`` falls back to when it is given no placed destinations.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from safe_pip.environment import Environment, EnvKind
from safe_pip.pipcli import Operation, Setting


@dataclass(frozen=True)
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

    @property
    def elsewhere(self) -> bool:
        """Outside the env and not in a directory the policy lists."""
        return not self.in_env and not self.listed


@dataclass(frozen=True)
class Resolver:
    """How paths are read: as written (pure) or on the filesystem (the shell's)."""

    #: an option value as the absolute path pip would use
    absolute: Callable[[str], str]
    #: a path with symlinks resolved, for comparing locations
    real: Callable[[str], str]
    #: the protected env kind a directory lies in
    env_kind: Callable[[str], EnvKind | None]


def _no_kind(_path: str) -> EnvKind | None:
    return None


LEXICAL = Resolver(absolute=posixpath.normpath, real=posixpath.normpath, env_kind=_no_kind)


def filesystem(environ: Mapping[str, str]) -> Resolver:
    """The shell's resolver: cwd and symlinks resolved, protected envs found on disk."""
    import os

    from safe_pip.environment import enclosing_env_kind

    return Resolver(
        absolute=os.path.abspath,
        real=os.path.realpath,
        env_kind=lambda path: enclosing_env_kind(path, environ),
    )


def under(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or lies below it (both already resolved)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def place_destinations(
    op: Operation, env: Environment, allowed: Sequence[str], resolver: Resolver
) -> tuple[Destination, ...]:
    """The --target, --prefix and --root of ``op``, in that order, placed."""
    placed: list[Destination] = []
    for setting in (op.target_dir, op.prefix_path, op.root_path):
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
        placed.append(Destination(setting, path, in_env, in_user_base, listed, foreign))
    return tuple(placed)


def writes_env(op: Operation, env: Environment, resolver: Resolver) -> bool:
    """True unless some --target/--prefix/--root points outside the env."""
    return all(d.in_env for d in place_destinations(op, env, (), resolver))
