"""``safe-pip export``: an environment.yml (or requirements file) that rebuilds the env.

The command: the env, the options, where the text goes.  ``envspec`` gathers
and renders the spec; its notes (problems in the files read, drift) go to
stderr, never a failure.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from safe_pip.atomicwrite import write_atomic
from safe_pip.commands import target_environment
from safe_pip.environment import Environment
from safe_pip.envspec import render
from safe_pip.errors import UsageError
from safe_pip.export import CONDA_RESERVED_NAMES, CONDA_STORE_NAME_RE, environment_name

PROG = "safe-pip"


def note(text: str) -> None:
    print(f"{PROG}: note: {text}", file=sys.stderr)


def _write_atomically(path: str, text: str) -> None:
    try:
        write_atomic(path, text, durable=True)
    except OSError as error:
        raise UsageError(
            f"cannot write {path}: {error.strerror or error}",
            hint="give -o a file in a directory you can write to, or leave it out for stdout",
        ) from error


def _env_name(requested: str | None, env: Environment) -> str:
    if requested is not None:
        if not CONDA_STORE_NAME_RE.match(requested):
            raise UsageError(
                f"--name {requested!r} is not a valid env name",
                hint="conda-store accepts letters, digits and - + _ @ $ & ? ^ ~ . =",
            )
        if requested in CONDA_RESERVED_NAMES:
            note(f"`conda env create` refuses the name {requested!r}; conda-store accepts it")
        return requested
    name = environment_name(env.name)
    if name != env.name:
        note(f"env name {env.name!r} written as {name!r} (pass --name to choose)")
    return name


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    env = target_environment(args.python, environ)
    name = _env_name(args.name, env) if args.format != "requirements" else env.name
    text, notes = render(env, environ, fmt=args.format, name=name)
    for text_note in notes:
        note(text_note)
    if args.output and args.output != "-":
        _write_atomically(args.output, text)
    else:
        # UTF-8 whatever the locale: conda and conda-store read the file as UTF-8
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8", "replace"))
        sys.stdout.buffer.flush()
    return 0
