"""The rule ids: the shared vocabulary of the code, the messages, docs/rules.md and the log.

Adding a rule means adding it here (id and one-line summary), one function and
its entry in ``decide.RULES``, and its row in ``docs/rules.md``.
"""

from __future__ import annotations

#: Allowed outcomes.
ALLOWED = "allowed"
DEV_INSTALL = "dev-install"
READ_ONLY_COMMAND = "read-only-command"

#: Denials.
USER_SITE = "user-site"
READ_ONLY_ENV = "read-only-env"
BASE_ENV = "base-env"
SYSTEM_PYTHON = "system-python"
OUTSIDE_ENV = "outside-env"
FROZEN_ENV = "frozen-env"
DEV_ONLY = "dev-only"
ENV_DENIED = "env-denied"
BUILD_ISOLATION = "build-isolation"
CONDA_OWNED = "conda-owned"
AUDIT_REQUIRED = "audit-required"
POLICY_INVALID = "policy-invalid"
UNKNOWN_OPTION = "unknown-option"
ESCAPED_WRITE = "escaped-write"
INDEX_NOT_ALLOWED = "index-not-allowed"
PACKAGE_DENIED = "package-denied"
VERSION_FLOOR = "version-floor"
NOTEBOOK_ENV = "notebook-env"
INSTALLER = "installer"
UV_PROJECT_ENV = "uv-project-env"

SUMMARY: dict[str, str] = {
    ALLOWED: "the policy allows this operation in this environment",
    DEV_INSTALL: "a developer install of a local source tree, allowed by the policy",
    READ_ONLY_COMMAND: "a pip command that does not change any environment",
    USER_SITE: "no install into the per-user site-packages (~/.local), by any route",
    READ_ONLY_ENV: "the environment is not writable by you; pip would fall back to ~/.local",
    BASE_ENV: "no write into a conda base environment",
    SYSTEM_PYTHON: "no write into the system (distribution) Python",
    OUTSIDE_ENV: "no --target/--prefix/--root outside the target environment unless listed",
    FROZEN_ENV: "no install or uninstall in a frozen environment (conda-meta/frozen)",
    DEV_ONLY: "this environment accepts developer installs only",
    ENV_DENIED: "the policy allows no pip installs in this kind of environment",
    BUILD_ISOLATION: "a conda env builds local source trees with --no-build-isolation",
    CONDA_OWNED: "pip may not replace or remove a package that conda installed",
    AUDIT_REQUIRED: "the operation cannot be recorded in the audit log",
    POLICY_INVALID: "the policy file cannot be read or is invalid",
    UNKNOWN_OPTION: "the pip command line cannot be understood",
    ESCAPED_WRITE: "pip (or a build it ran) changed a place outside what the policy allowed",
    INDEX_NOT_ALLOWED: "pip may use only the package indexes and find-links the policy lists",
    PACKAGE_DENIED: "the policy denies this project (by name or pattern), also as a dependency",
    VERSION_FLOOR: "the policy sets a minimum version for this project, also as a dependency",
    NOTEBOOK_ENV: "from a notebook, pip changes only the env the notebook runs (where the "
    "policy says refuse)",
    INSTALLER: "the installer asked for (uv or pip) is not the policy's, or is not installed",
    UV_PROJECT_ENV: "uv's project commands may not sync a protected env to a project",
}

#: the rules ``enforcement`` may set to ``warn`` (the others always hold)
CONFIGURABLE = (
    USER_SITE,
    READ_ONLY_ENV,
    BASE_ENV,
    SYSTEM_PYTHON,
    OUTSIDE_ENV,
    FROZEN_ENV,
    DEV_ONLY,
    ENV_DENIED,
    BUILD_ISOLATION,
    CONDA_OWNED,
    INDEX_NOT_ALLOWED,
    PACKAGE_DENIED,
    VERSION_FLOOR,
    NOTEBOOK_ENV,
)
#: rules that protect environments other users rely on: enforced even in warn
#: mode, unless ``enforcement.rules`` names them
PROTECTED = (BASE_ENV, SYSTEM_PYTHON, READ_ONLY_ENV, FROZEN_ENV)
