"""``safe-pip --help`` and ``safe-pip --version``, when safe-pip runs under its own name.

Under the name ``pip`` (an env's shim) and as ``%pip``, ``--help`` and
``--version`` stay pip's own, untouched: scripts parse them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from safe_pip import __version__

HELP_WORDS = ("--help", "-h")
VERSION_WORDS = ("--version", "-V")


def own_commands() -> list[tuple[str, str]]:
    """(name, one-line help) of safe-pip's own commands, from their parser."""
    from safe_pip.commands import _parser

    found: list[tuple[str, str]] = []
    for action in _parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend((choice.dest, choice.help or "") for choice in action._choices_actions)
    return found


def help_text() -> str:
    commands = own_commands()
    width = max(len(name) for name, _ in commands)
    lines = [
        "usage: safe-pip <command> [options]      safe-pip's own commands",
        "       safe-pip <pip arguments>          pip, under the hub's policy",
        "",
        "safe-pip's own commands:",
        *(f"  {name:<{width}}  {text}" for name, text in commands),
        f"  {'uv':<{width}}  uv pip install/uninstall/sync under the same policy",
        "",
        "Every other argument goes to pip: `safe-pip install requests` is",
        "`pip install requests` for the env of --python (else the `python` on PATH),",
        "checked against the policy and recorded; read-only commands (list, show,",
        "freeze, ...) run pip directly.  pip's own help: `safe-pip help`.",
        "",
        "Through an env's pip (the shim `safe-pip protect --shim` writes) the same",
        "commands are `pip status`, `pip log`, `pip export`, ...; in a notebook",
        "`%pip status`.  `safe-pip <command> --help` shows a command's options.",
    ]
    return "\n".join(lines)


def show_help() -> int:
    print(help_text())
    return 0


def show_version(environ: Mapping[str, str]) -> int:
    """safe-pip's version, then the version line of the pip it would run."""
    from safe_pip.errors import SafePipError
    from safe_pip.passthrough import become_pip

    print(f"safe-pip {__version__} (safe-pip-policy)", flush=True)
    try:
        return become_pip(["--version"], environ)
    except SafePipError as error:
        print(f"pip: none to run here ({error.message})", file=sys.stderr)
        return 0
