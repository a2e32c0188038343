"""The next step for a refused install on a read-only env: the env's spec with the
requested packages added, ready for conda-store, instead of a dead end."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping

from safe_pip.environment import Environment
from safe_pip.pipcli import Operation
from safe_pip.policy import Policy

SPEC_DIR = "safe-pip-requests"


def spec_path(env: Environment, home: str) -> str:
    safe_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in env.name) or "env"
    return os.path.join(home, SPEC_DIR, f"{safe_name}.environment.yml")


def _write(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".spec-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def spec_for_request(
    op: Operation, env: Environment, policy: Policy, environ: Mapping[str, str]
) -> list[str]:
    """Write the rebuilt spec to the user's home (or print it); return the hint lines."""
    from safe_pip.commands.export import render

    requested = [*op.args, *(f"# editable: {e}" for e in op.editables)]
    requirements = [r for r in requested if not r.startswith("#")]
    text = render(env, environ, extra_requirements=requirements, quiet=True)
    home = environ.get("HOME") or os.path.expanduser("~")
    path = spec_path(env, home)
    lines = ["", "next:    the env's spec with your packages added, ready for conda-store:"]
    try:
        _write(path, text)
        lines.append(f"           {path}")
    except OSError:
        lines.append("           (your home is not writable; here it is)")
        lines.extend(f"           {line}" for line in text.splitlines())
    url = policy.text("conda-store.url").rstrip("/")
    where = url or "conda-store"
    lines += [
        f"         submit it in {where}: open the env, edit its specification, paste the",
        "           file, save (a new build starts; the env switches when it succeeds),",
        "         or with conda-store's REST API:",
        f"           curl -X POST -H 'Authorization: Bearer <your token>' "
        f"{url or '<conda-store url>'}/api/v1/specification/ \\",
        "             -H 'Content-Type: application/json' \\",
        '             -d \'{"namespace": "<namespace>", '
        '"specification": <the file as a JSON string>}\'',
        "         to develop your own package against this env: safe-pip devenv <project dir>",
    ]
    if op.editables:
        lines.append(
            "         (editable installs cannot go into a spec: use `safe-pip devenv` for them)"
        )
    return lines
