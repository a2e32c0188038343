"""pip's command line as pip itself reads it: argv, PIP_* variables and config files.

CONTRACT (filled in by the parser work): ``parse_pip_command_line`` returns an
``Operation``, the effective options pip would act on, with where each came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: pip commands that change an environment; every other command passes through.
MUTATING_COMMANDS = frozenset({"install", "uninstall"})


@dataclass(frozen=True)
class Setting:
    """One effective pip option: its value and a human-readable origin.

    ``source`` reads like ``"--user"``, ``"PIP_USER=1"`` or
    ``"/etc/pip.conf [install] user"`` so a denial can say where it came from.
    """

    value: object
    source: str


@dataclass(frozen=True)
class Operation:
    """What pip would do for one command line.

    ``settings`` maps pip's option *dest* names (``use_user_site``,
    ``target_dir``, ``prefix_path``, ``root_path``, ``editables``,
    ``requirements``, ``constraints``, ``build_isolation``,
    ``override_externally_managed``, ``python``, ``isolated_mode``,
    ``index_url``, ``extra_index_urls``, ``find_links``, ``no_index``,
    ``ignore_dependencies``, ``dry_run``, ``json_report_file``, ...) to the
    effective ``Setting`` after argv, ``PIP_*`` variables and config files are
    combined as pip combines them.  Options left at pip's default are absent.
    """

    command: str | None
    argv: tuple[str, ...]
    args: tuple[str, ...] = ()
    settings: Mapping[str, Setting] = field(default_factory=dict)
    #: argv split at the command: (general options before it, the command and the rest)
    general_argv: tuple[str, ...] = ()
    command_argv: tuple[str, ...] = ()

    @property
    def mutating(self) -> bool:
        return self.command in MUTATING_COMMANDS

    def get(self, dest: str, default: object = None) -> object:
        setting = self.settings.get(dest)
        return default if setting is None else setting.value

    def source(self, dest: str) -> str:
        setting = self.settings.get(dest)
        return "" if setting is None else setting.source
