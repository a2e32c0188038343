"""Running the same operation through each installer safe-pip carries out: pip, uv chosen
for one command (`--installer uv`), the uv door (`safe-pip uv pip ...`, what the `uv`
shim and `%uv` run), and uv as the policy's installer (`installer.conda-env = "uv"`), for
tests parametrised over them."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.prefixes import Prefix
from support.run import Runner

PIP, UV, DOOR, POLICY = "pip", "uv", "uv-door", "uv-policy"
#: the backends a pip command line runs with
BACKENDS = [PIP, UV]
#: and the uv door too, for tests whose command uv's own command line spells the same way
WITH_DOOR = [PIP, UV, DOOR]
#: and uv as the policy's installer for conda envs (a plain pip command line, no flag)
WITH_POLICY = [*WITH_DOOR, POLICY]
#: what the uv-policy backend adds to the system policy
UV_BY_POLICY = '\n[installer]\nconda-env = "uv"\n'


def safe_pip_argv(safe_pip: Sequence[str], backend: str, args: Sequence[str]) -> list[str]:
    """safe-pip running `args` with `backend` (for the uv door, `args` are uv's words; for
    uv-policy, the policy chooses uv: `GuardedEnv.pip`)."""
    if backend == UV:
        return [*safe_pip, "--installer", "uv", *args]
    if backend == DOOR:
        return [*safe_pip, "uv", "pip", *args]
    return [*safe_pip, *args]


def installer_for(backend: str) -> str:
    """What carries out an allowed install for `backend`: pip, or uv."""
    return PIP if backend == PIP else UV


def yes(backend: str) -> list[str]:
    """pip uninstall's `-y` (`uv pip uninstall` asks nothing and has no such option)."""
    return [] if backend == DOOR else ["-y"]


def installer_of(site: Path, name: str) -> str:
    """What the INSTALLER file of the installed distribution `name` says (pip or uv)."""
    (dist_info,) = site.glob(f"{name}-*.dist-info")
    return (dist_info / "INSTALLER").read_text().strip()


class GuardedEnv:
    """One env, one user and one backend: safe-pip run there as that user, offline
    (`--no-index` and the `links` as `--find-links` for an install)."""

    def __init__(
        self,
        run: Runner,
        safe_pip: Sequence[str],
        prefix: Prefix,
        links: Sequence[Path],
        user: int | None,
        backend: str = PIP,
    ) -> None:
        self.run = run
        self.safe_pip = list(safe_pip)
        self.prefix = prefix
        self.links = list(links)
        self.user = user
        self.backend = backend

    @property
    def home(self) -> Path:
        return self.run.home(self.user)

    @property
    def site(self) -> Path:
        return self.prefix.site_packages

    @property
    def installer(self) -> str:
        """What carries out an allowed install here."""
        return installer_for(self.backend)

    def env(self, **extra: str | None) -> dict[str, str | None]:
        """The env's bin first on PATH, and `extra` variables (None removes one)."""
        return {"PATH": f"{self.prefix.bin}:/usr/bin:/bin", **extra}

    def index_args(self) -> list[str]:
        args = ["--no-index"]
        for link in self.links:
            args += ["--find-links", str(link)]
        return args

    def pip(
        self, *args: str, env: Mapping[str, str | None] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """safe-pip running `args` with the backend (for the uv door, in uv's words)."""
        argv = safe_pip_argv(self.safe_pip, self.backend, args)
        if {"install", "sync"} & set(args[:3]):
            argv += self.index_args()
        if self.backend == POLICY:
            kw["system_policy"] = (kw.get("system_policy") or "version = 1\n") + UV_BY_POLICY
        return self.run(argv, user=self.user, env=env or self.env(), **kw)
