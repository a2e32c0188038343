"""An Environment for tests that need no interpreter: the shape inspect_environment returns."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from safe_pip.environment import Environment, EnvKind


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
    return dataclasses.replace(env, **changes)
