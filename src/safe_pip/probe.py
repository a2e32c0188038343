"""Asking an interpreter for its paths (prefix, sysconfig paths, user site).

Lean on purpose: safe-pip starts the probe before it imports the decision core,
so that the interpreter answers while safe-pip loads (``environment`` reads the
answer).
"""

from __future__ import annotations

import json
import os
import sys

from safe_pip.child import Child, ChildTimeout
from safe_pip.errors import TargetError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_PROBE = r"""
import json, os, sys, sysconfig
import site
paths = sysconfig.get_paths()
user_base = site.getuserbase()
print(json.dumps({
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "version": "%d.%d.%d" % sys.version_info[:3],
    "stdlib": paths.get("stdlib", ""),
    "purelib": paths.get("purelib", ""),
    "platlib": paths.get("platlib", ""),
    "scripts": paths.get("scripts", ""),
    "data": paths.get("data", ""),
    "user_base": user_base,
    "user_site": site.getusersitepackages(),
}))
"""


class Probe:
    """The interpreter asked for its paths: started at once, answered by ``result()``
    (so that safe-pip can do other work meanwhile)."""

    def __init__(self, python: str, environ: Mapping[str, str]) -> None:
        self.python = python
        self._answer: dict[str, str] | None = None
        self._child: Child | None = None
        if (
            os.path.realpath(python) == os.path.realpath(sys.executable)
            and sys.prefix == sys.base_prefix
        ):
            exec_globals: dict[str, object] = {}
            import contextlib
            import io

            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(_PROBE, exec_globals)
            self._answer = dict(json.loads(buffer.getvalue()))
            return
        # without `site`, a venv reports its base interpreter's prefix: keep site for venvs
        here = os.path.dirname(os.path.abspath(python))
        in_venv = any(
            os.path.isfile(os.path.join(d, "pyvenv.cfg")) for d in (here, os.path.dirname(here))
        )
        flags = ["-I"] if in_venv else ["-I", "-S"]
        from safe_pip.passthrough import interpreter_environ

        try:
            # pip runs without these variables too (passthrough.pip_environ)
            self._child = Child(
                [python, *flags, "-c", _PROBE],
                interpreter_environ(environ),
                capture=True,
                stdin=False,
            )
        except OSError as error:
            raise TargetError(f"cannot run the interpreter {python}: {error.strerror}") from error

    def result(self) -> dict[str, str]:
        """The interpreter's answer; raises ``TargetError``."""
        if self._answer is not None:
            return self._answer
        child, python = self._child, self.python
        assert child is not None
        try:
            out, err = child.communicate(timeout=60)
        except ChildTimeout as error:
            child.discard()
            raise TargetError(f"the interpreter {python} did not answer within 60 s") from error
        if child.returncode != 0:
            detail = err.strip().splitlines()[-1:] or ["no output"]
            raise TargetError(f"cannot inspect the interpreter {python}: {detail[0]}")
        try:
            data = json.loads(out)
        except ValueError as error:
            raise TargetError(f"the interpreter {python} gave an unexpected answer") from error
        self._answer = {str(k): str(v) for k, v in data.items()}
        return self._answer


__all__ = ["Probe"]
