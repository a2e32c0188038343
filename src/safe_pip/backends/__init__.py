"""Installer backends: how a plan is obtained and carried out, per installer.

safe-pip decides, checks and records the same way whichever installer runs;
only these steps differ, and each backend does them in its own module:

1. resolve the command to a *plan*: what would be installed and removed;
2. hand the plan to the caller's check (conda-owned packages, file-level
   checks), which says go or stop;
3. on go, install exactly the plan, and nothing else;
4. report the run (exit code, time) and the plan, for the record.

The plan is pip's installation report (the ``--report`` format: an
``install`` list of items with ``metadata.name``/``metadata.version``,
``requested`` and ``download_info``), so every check reads one format.  A
backend whose installer also removes distributions that are not replaced
(``uv pip sync``) lists them under ``changes.PLANNED_REMOVALS`` as ``{name, version}``
items.  Where the backend knows the wheel file of an item, its
``download_info.url`` is that file's ``file://`` URL.

``pip.py`` holds the pip backend (pip paused between resolution and
installation, see ``preflight``), ``uv.py`` the uv one (a ``--dry-run``
plan, then a pinned ``--no-deps`` install of exactly that plan).
"""

from __future__ import annotations

from safe_pip.errors import SafePipError, UsageError
from safe_pip.values import frozen

# typing only for the type checker: the uv path imports this module before it starts uv
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any, Optional, Protocol

    from safe_pip.decide import Decision
    from safe_pip.environment import Environment
    from safe_pip.policy import Policy
    from safe_pip.runner import PipRun

    #: ``check(plan) -> (go, verdict)``: between resolution and installation.
    Check = Callable[[Optional[Mapping[str, Any]]], tuple[bool, object]]

    class Backend(Protocol):
        """One installer."""

        name: str

        def version(self) -> str:
            """The installer's version ('' when unknown)."""
            ...

        def start(self, request: Request) -> None:
            """Begin resolving ``request`` early, if the installer can without changing
            anything (``install`` of the same request then takes that resolution)."""
            ...

        def install(self, request: Request, check: Check, *, files: bool = True) -> InstallRun:
            """Resolve, ``check`` the plan, install exactly the plan on go.  ``files``: the
            check reads the files each item writes (``safe_pip_files``); a backend for
            which finding them costs a run of its own skips it when False."""
            ...

        def close(self) -> None:
            """Stop what ``start`` began and no install took (nothing if none)."""
            ...

        def uninstall(self, request: Request, check: Check) -> InstallRun:
            """Resolve what the arguments name to a plan (``uninstall`` items: name, version,
            files where known), ``check`` it, remove exactly that on go."""
            ...


PIP = "pip"
UV = "uv"
INSTALLERS = (PIP, UV)


@frozen
class InstallRun:
    """An install as a backend carried it out."""

    run: PipRun
    #: the plan that was checked (None when the installer never got that far)
    plan: dict[str, Any] | None
    #: what the check returned, None if it was never asked
    verdict: object = None
    #: the backend has no point to check at: nothing ran
    no_check_point: bool = False


@frozen
class Request:
    """What to run: the target, the installer's own arguments, the user's environment."""

    python: str
    #: the arguments after ``pip`` (pip backend) or after ``uv pip`` (uv backend)
    args: tuple[str, ...]
    environ: Mapping[str, str]


#: safe-pip's own flag choosing the installer for one command; removed before pip runs
INSTALLER_FLAG = "--installer"


def split_installer_flag(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """(argv without ``--installer NAME`` / ``--installer=NAME``, NAME or None).

    pip has no option starting with ``--installer``, so the flag cannot be one of
    pip's (nor a unique prefix of one).
    """
    out: list[str] = []
    chosen: str | None = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            out.extend(argv[index:])
            break
        if arg == INSTALLER_FLAG or arg.startswith(INSTALLER_FLAG + "="):
            if "=" in arg:
                value = arg.partition("=")[2]
                index += 1
            elif index + 1 < len(argv):
                value = argv[index + 1]
                index += 2
            else:
                raise UsageError(f"{INSTALLER_FLAG} needs a value: {' or '.join(INSTALLERS)}")
            if value not in INSTALLERS:
                raise UsageError(
                    f"{INSTALLER_FLAG} {value!r}: safe-pip knows the installers "
                    f"{', '.join(INSTALLERS)}"
                )
            chosen = value
            continue
        out.append(arg)
        index += 1
    return out, chosen


def choose_installer(
    requested: str | None, env: Environment, policy: Policy
) -> tuple[str, Decision | None]:
    """(the installer for this command, a denial or None).  Pure.

    The policy names the default per env kind (``installer.<kind>``); a user
    may ask for the other one (``--installer``, or by typing ``uv pip``) where
    ``installer.user-choice`` allows it.
    """
    from safe_pip import rules
    from safe_pip.decide import Decision

    default = policy.text(f"installer.{env.kind.value}")
    if requested is None or requested == default:
        return default, None
    if policy.flag("installer.user-choice"):
        return requested, None
    return default, Decision(
        allowed=False,
        rule=rules.INSTALLER,
        reason=f"the policy installs with {default} in {env.kind} environments and does not "
        f"let users choose {requested} (installer.user-choice = false)",
        hint=f"run the same command with {default}"
        + (" (`pip install ...`)" if default == PIP else " (`safe-pip --installer uv ...`)"),
    )


def missing_installer_denial(
    policy: Policy, error: SafePipError, *, uv_door: bool
) -> Decision | None:
    """uv is chosen but not installed: None (install with pip) or the denial, per policy.

    A ``uv pip`` command line is uv's, not pip's, so it is never handed to pip.
    """
    from safe_pip import rules
    from safe_pip.decide import Decision

    if policy.text("installer.uv-missing") == PIP and not uv_door:
        return None
    return Decision(
        allowed=False,
        rule=rules.INSTALLER,
        reason=error.message,
        hint=error.hint
        + (
            "; or use pip for this command"
            if not uv_door
            else "; or run the same install with pip (`pip install ...`)"
        ),
    )


def backend(name: str, env: Environment | None = None) -> Backend:
    """The backend called ``name``; raises ``InstallerMissing`` when it cannot run here."""
    if name == UV:
        from safe_pip.backends.uv import UvBackend, find_uv

        return UvBackend(find_uv(env))
    from safe_pip.backends.pip import PipBackend

    return PipBackend(env)


def installer_fields(chosen: Backend) -> dict[str, str]:
    """The record's installer fields."""
    return {"installer": chosen.name, "installer_version": chosen.version()}


__all__ = [
    "INSTALLERS",
    "INSTALLER_FLAG",
    "PIP",
    "UV",
    "InstallRun",
    "Request",
    "backend",
    "choose_installer",
    "installer_fields",
    "missing_installer_denial",
    "split_installer_flag",
]
