"""In-memory and on-disk fakes for the unit tier: an Environment without an interpreter
(the shape inspect_environment returns), dist-infos and conda records laid as installers
leave them, and a pip that runs no process (``FakePip``)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from safe_pip.environment import Environment, EnvKind
from safe_pip.preflight import CheckedRun
from safe_pip.runner import PipRun
from safe_pip.values import replace


def fake_environment(
    prefix: str | os.PathLike[str], kind: EnvKind = EnvKind.CONDA_ENV, **changes: Any
) -> Environment:
    """A conda env at ``prefix`` (Python 3.11.7, writable, user alice); ``changes`` override."""
    root = os.fspath(prefix)
    site = f"{root}/lib/python3.11/site-packages"
    env = Environment(
        python=f"{root}/bin/python",
        how="test",
        prefix=root,
        base_prefix=root,
        kind=kind,
        name=os.path.basename(root) or root,
        version="3.11.7",
        stdlib=f"{root}/lib/python3.11",
        purelib=site,
        platlib=site,
        scripts=f"{root}/bin",
        data=root,
        user_base="/home/alice/.local",
        user_site="/home/alice/.local/lib/python3.11/site-packages",
        user_site_enabled=True,
        system_site_packages=False,
        writable=True,
        marker=None,
        stale_markers=(),
        frozen=False,
        pip_version="24.2",
    )
    return replace(env, **changes)


# --- an env on disk without an interpreter, and pip without a process ---------------------


def lay_dist_info(site: Path, name: str, version: str, installer: str = "pip") -> Path:
    """A dist-info (METADATA, INSTALLER, RECORD) and its module, as an installer leaves them."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer + "\n")
    module = f"{name.replace('-', '_')}.py"
    (site / module).write_text(f'__version__ = "{version}"\n')
    files = [module, f"{info.name}/METADATA", f"{info.name}/INSTALLER", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return info


def conda_package(env: Environment, name: str, version: str) -> Path:
    """A conda-installed distribution: its dist-info (INSTALLER conda) and the
    ``conda-meta`` record that lists it."""
    site = Path(env.purelib)
    info = lay_dist_info(site, name, version, installer="conda")
    rel = os.path.relpath(info, env.prefix).replace(os.sep, "/")
    record = {
        "name": name,
        "version": version,
        "build": "pyhd8ed1ab_0",
        "build_number": 0,
        "channel": "https://conda.anaconda.org/conda-forge/noarch",
        "subdir": "noarch",
        "depends": [],
        "files": [f"{rel}/METADATA", f"{rel}/RECORD", f"{rel}/INSTALLER"],
    }
    meta = Path(env.prefix, "conda-meta")
    meta.mkdir(exist_ok=True)
    (meta / f"{name}-{version}-pyhd8ed1ab_0.json").write_text(json.dumps(record))
    return info


def env_on_disk(root: Path, kind: EnvKind = EnvKind.CONDA_ENV, **changes: Any) -> Environment:
    """``fake_environment`` whose prefix, site-packages and (for conda kinds) conda-meta exist."""
    env = fake_environment(root, kind, **changes)
    Path(env.purelib).mkdir(parents=True, exist_ok=True)
    if env.is_conda:
        Path(env.prefix, "conda-meta").mkdir(exist_ok=True)
        Path(env.prefix, "conda-meta", "history").touch()
    return env


class PipCall(NamedTuple):
    python: str
    args: list[str]
    environ: dict[str, str]


@dataclass
class FakePip:
    """pip without a process: stands in for ``runner.run_pip`` and ``preflight.run_checked``.

    ``plan`` is what this pip "resolves" for an install: (name, version) pairs.
    An install asks ``check`` (as the real bootstrap does between resolution and
    installation) and, on "go", lays the plan's dist-infos into ``site`` (replacing
    older ones); an uninstall removes the dist-infos of the names it is given.
    ``calls`` keeps every run: the interpreter, pip's arguments and the environment.
    """

    site: Path
    plan: list[tuple[str, str]] = field(default_factory=list)
    exit_code: int = 0
    calls: list[PipCall] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """What pip's ``--report`` says it is about to install."""
        return {
            "version": "1",
            "install": [
                {"metadata": {"name": name, "version": version}, "requested": True}
                for name, version in self.plan
            ],
        }

    def _install(self) -> None:
        for name, version in self.plan:
            for old in self.site.glob(f"{name.replace('-', '_')}-*.dist-info"):
                shutil.rmtree(old)
            lay_dist_info(self.site, name, version)

    def _uninstall(self, names: list[str]) -> None:
        for name in names:
            for old in self.site.glob(f"{name.replace('-', '_')}-*.dist-info"):
                shutil.rmtree(old)

    @property
    def args(self) -> list[list[str]]:
        """pip's arguments of each run."""
        return [call.args for call in self.calls]

    def run_pip(self, python: str, pip_args: Sequence[str], environ: Mapping[str, str]) -> PipRun:
        self.calls.append(PipCall(python, list(pip_args), dict(environ)))
        if self.exit_code == 0 and pip_args and pip_args[0] == "uninstall":
            self._uninstall([a for a in pip_args[1:] if not a.startswith("-")])
        elif self.exit_code == 0 and pip_args and pip_args[0] == "install":
            self._install()
        return PipRun(self.exit_code, 0.01, False)

    def run_checked(
        self,
        python: str,
        pip_args: Sequence[str],
        report_path: str,
        environ: Mapping[str, str],
        check: Callable[[dict[str, Any] | None], tuple[bool, object]],
        command: str = "install",
    ) -> CheckedRun:
        self.calls.append(PipCall(python, list(pip_args), dict(environ)))
        if command == "uninstall":
            return self._checked_uninstall(pip_args, check)
        report = self.report()
        Path(report_path).write_text(json.dumps(report))  # where the bootstrap writes it
        go, verdict = check(report)
        if go and self.exit_code == 0:
            self._install()
        code = self.exit_code if go else 1
        return CheckedRun(PipRun(code, 0.01, False), report, verdict, asked=True)

    def _checked_uninstall(
        self, pip_args: Sequence[str], check: Callable[[dict[str, Any] | None], tuple[bool, object]]
    ) -> CheckedRun:
        """pip's uninstall plan: the installed distributions the arguments name."""
        names = [a for a in pip_args[1:] if not a.startswith("-")]
        items = []
        for name in names:
            for info in self.site.glob(f"{name.replace('-', '_')}-*.dist-info"):
                version = info.name[: -len(".dist-info")].rsplit("-", 1)[1]
                files = sorted(str(f) for f in info.iterdir())
                items.append({"name": name, "version": version, "path": str(info), "files": files})
        plan = {"version": "1", "uninstall": items, "safe_pip_complete": True}
        go, verdict = check(plan)
        if go and self.exit_code == 0:
            self._uninstall(names)
        code = self.exit_code if go else 1
        return CheckedRun(PipRun(code, 0.01, False), plan, verdict, asked=True)
