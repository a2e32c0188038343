"""Which interpreter pip would act on: ``--python`` (or ``PIP_PYTHON``), a shim's
binding, or the ``python`` on PATH.  Lean on purpose: the pass-through path uses it."""

from __future__ import annotations

import os

from safe_pip.errors import TargetError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping

#: Set by a shim (``safe-pip protect --shim``) to bind safe-pip to its env.
BOUND_PYTHON_VAR = "SAFE_PIP_BOUND_PYTHON"

#: Set by the ``%pip`` magic (``safe_pip.ipython``) for the safe-pip it runs: the door.
DOOR_VAR = "SAFE_PIP_DOOR"
MAGIC = "%pip"

#: pip's own variable: when set, pip does not re-run itself under --python/PIP_PYTHON
PIP_SUBPROCESS_MARKER = "_PIP_RUNNING_IN_SUBPROCESS"


class Target:
    """The interpreter chosen, and how it was chosen (for ``status`` and messages)."""

    __slots__ = ("how", "python")

    def __init__(self, python: str, how: str) -> None:
        self.python = python
        self.how = how

    def __repr__(self) -> str:
        return f"Target({self.python!r}, {self.how!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and (self.python, self.how) == (other.python, other.how)

    def __hash__(self) -> int:
        return hash((self.python, self.how))


def which(name: str, path: str) -> str | None:
    """The first executable ``name`` on ``path`` (shutil.which without its import cost)."""
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def identify_interpreter(value: str, path: str | None = None) -> str | None:
    """Find an interpreter the way pip's ``--python`` does: a file, an env dir, or a name."""
    if os.path.isdir(value):
        for candidate in ("bin/python", "bin/python3"):
            found = os.path.join(value, candidate)
            if os.path.isfile(found) and os.access(found, os.X_OK):
                return found
        return None
    if os.path.isfile(value):
        return value
    if os.sep in value:
        return None
    return which(value, path if path is not None else os.environ.get("PATH", os.defpath))


def resolve_target(python_option: str | None, source: str, environ: Mapping[str, str]) -> Target:
    """Pick the interpreter pip would act on."""
    path_var = environ.get("PATH", os.defpath)
    if python_option:
        found = identify_interpreter(python_option, path_var)
        if found is None:
            raise TargetError(
                f"cannot find the Python interpreter {python_option!r} (from {source})",
                hint="give --python the path of an interpreter or of an environment directory",
            )
        return Target(os.path.abspath(found), f"pip option --python ({source})")
    bound = environ.get(BOUND_PYTHON_VAR)
    if bound:
        if not os.path.exists(bound):
            raise TargetError(
                f"the env this pip belongs to is gone: {bound} does not exist",
                hint="ask the admin to re-run `safe-pip protect --shim` for this env",
            )
        if environ.get(DOOR_VAR) == MAGIC:
            return Target(bound, "%pip in the notebook (the kernel's interpreter)")
        return Target(bound, f"the pip shim of this env ({BOUND_PYTHON_VAR})")
    for name in ("python", "python3"):
        found = which(name, path_var)
        if found:
            return Target(os.path.abspath(found), f"`{name}` on PATH")
    raise TargetError(
        "no `python` on PATH, so there is no environment to act on",
        hint="activate an environment or pass --python /path/to/env/bin/python",
    )
