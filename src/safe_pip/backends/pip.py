"""The pip backend: the env's own pip, paused between resolution and installation.

pip resolves, downloads and builds; the bootstrap of ``preflight`` hands safe-pip
pip's report of exactly what it is about to install, and pip installs that list
on go.  One resolution: the plan checked is the plan carried out.
"""

from __future__ import annotations

import os
import tempfile

from safe_pip.backends import PIP, InstallRun, Request
from safe_pip.environment import Environment
from safe_pip.runner import PipRun

TYPE_CHECKING = False
if TYPE_CHECKING:
    from safe_pip.backends import Check


class PipBackend:
    name = PIP

    def __init__(self, env: Environment | None = None) -> None:
        self.pip_version = (env.pip_version if env is not None else None) or ""

    def version(self) -> str:
        return self.pip_version

    def start(self, request: Request) -> None:
        """Nothing to start early: pip resolves in the checked run itself."""

    def close(self) -> None:
        """Nothing started early, nothing to stop."""

    def install(
        self,
        request: Request,
        check: Check,
        *,
        files: bool = True,  # noqa: ARG002 - pip's pause point reports every item's files
    ) -> InstallRun:
        from safe_pip.preflight import run_checked

        with tempfile.TemporaryDirectory(prefix="safe-pip-") as scratch:
            report_path = os.path.join(scratch, "install-report.json")
            checked = run_checked(request.python, request.args, report_path, request.environ, check)
        return InstallRun(
            run=checked.run,
            plan=checked.report,
            verdict=checked.verdict,
            no_check_point=checked.hook_missing,
        )

    def unchecked_install(self, request: Request) -> PipRun:
        """pip install with no point to check at (nothing to check)."""
        from safe_pip.runner import run_pip

        return run_pip(request.python, request.args, request.environ)

    def uninstall(self, request: Request, check: Check) -> InstallRun:
        """pip resolves what it would remove (its own reading of names, -r files,
        variables and URLs) and pauses before removing anything."""
        from safe_pip.preflight import run_checked

        with tempfile.TemporaryDirectory(prefix="safe-pip-") as scratch:
            plan_path = os.path.join(scratch, "uninstall-plan.json")
            checked = run_checked(
                request.python, request.args, plan_path, request.environ, check, "uninstall"
            )
        return InstallRun(
            run=checked.run,
            plan=checked.report,
            verdict=checked.verdict,
            no_check_point=checked.hook_missing,
        )
