"""The one error family of safe-pip, and the one place that maps it to exit codes.

pip's own exit codes (0 success, 1 error, 2 unknown error, 3 virtualenv not
found, 4 previous build dir, 23 no matches found) pass through untouched when
safe-pip runs pip.  safe-pip's own outcomes use codes that pip never returns.
"""

from __future__ import annotations


class ExitCode:
    """safe-pip's own exit codes (plain ints: no enum import on the start-up path)."""

    OK = 0
    DENIED = 10
    POLICY_ERROR = 11
    USAGE_ERROR = 12
    TARGET_ERROR = 13
    AUDIT_ERROR = 14
    SUBMIT_ERROR = 15
    INTERRUPTED = 130
    INTERNAL_ERROR = 70


class SafePipError(Exception):
    """Root of all exceptions raised from safe-pip's own code."""

    exit_code: int = ExitCode.INTERNAL_ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InputError(SafePipError):
    """A file safe-pip reads is malformed: carries the file, line and key."""

    exit_code = ExitCode.POLICY_ERROR

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        key: str = "",
        hint: str = "",
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
        if key:
            where += f" (key {key!r})" if where else f"key {key!r}"
        super().__init__(f"{where}: {message}" if where else message, hint)
        self.path = path
        self.line = line
        self.key = key


class PolicyError(InputError):
    """The policy file cannot be read or is invalid; mutating commands fail closed."""

    exit_code = ExitCode.POLICY_ERROR


class UsageError(SafePipError):
    """The command line cannot be understood."""

    exit_code = ExitCode.USAGE_ERROR


class TargetError(SafePipError):
    """The target interpreter or environment cannot be found or inspected."""

    exit_code = ExitCode.TARGET_ERROR


class InstallerMissing(TargetError):
    """The installer chosen for this command (uv) is not installed for safe-pip."""


class AuditError(SafePipError):
    """The audit log cannot be written or read."""

    exit_code = ExitCode.AUDIT_ERROR


def exit_code_for_denial(rule: str) -> int:
    """The exit status of a refusal: 11 when the policy cannot be used, else 10.

    A refusal is a ``Decision`` (rule id, reason, hint) that the guard records
    and prints itself; it is an outcome, not an exception.
    """
    from safe_pip.rules import POLICY_INVALID

    return int(ExitCode.POLICY_ERROR if rule == POLICY_INVALID else ExitCode.DENIED)


class SubmitError(SafePipError):
    """A request could not be submitted to conda-store; the file is left for the user."""

    exit_code = ExitCode.SUBMIT_ERROR


def exit_code_for(error: BaseException) -> int:
    """The one mapping from an exception to safe-pip's exit status."""
    if isinstance(error, SafePipError):
        return int(error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.INTERNAL_ERROR)
