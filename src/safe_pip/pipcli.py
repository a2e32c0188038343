"""pip's command line as pip itself reads it: argv, PIP_* variables and config files.

``parse_pip_command_line`` returns an ``Operation``: the command, its
positional arguments and the effective options pip would act on, each with
where it came from.  It is pure: the configuration files come in as a
``PipConfig`` (see ``pipconfig``), the environment as a mapping.

How pip reads a command line (pip 22.2 to 26.3, from its ``cli/`` sources,
checked against pip 23.2.1 and 26.3 where marked "verified"):

* Two optparse parsers.  The *main* parser knows the general options (and
  ``-V``) and stops at the first argument that is not an option: that is the
  command.  The *command* parser then parses the whole argv again, general
  options before the command included, minus the first argument equal to the
  command name (even when that one was an option's value:
  ``pip --log install -v install x`` logs to ``-v`` and installs ``install``
  and ``x``; verified).  The command parser takes options and arguments in
  any order; ``--`` ends the options.
* optparse rules: a long option may be shortened to any prefix that matches
  exactly one of the parser's long option *strings* (aliases count, so
  ``--lo`` is ambiguous between ``--log``, ``--log-file`` and
  ``--local-log``); ``--opt=value`` or ``--opt value``; the value is taken
  even when it starts with ``-`` (``--target --user`` targets ``--user``);
  short options cluster (``-qqq``, ``-Ur req.txt``) and take the rest of
  their cluster as value (``-tDIR``, ``-e=x`` gives ``=x``); a flag given
  ``=value`` is an error; ``-`` alone is an argument.
* Defaults come from the configuration and ``PIP_*`` variables first
  (``pipconfig.option_values``): a key applies only if ``--<key>`` is one of
  the parser's long option strings, exactly (no prefixes).  store_true and
  store_false options take ``strtobool(value)`` *as the value of their dest*,
  so ``PIP_NO_USER=1`` means ``use_user_site = 1``, a user install
  (verified), ``PIP_NO_USER=0`` an explicit non-user install, and
  ``PIP_NO_BUILD_ISOLATION=0`` or ``=false`` turns build isolation *off*
  while ``=1`` leaves it on (verified, both with a build backend that is not
  installed).  Counts take ``strtobool`` or a non-negative ``int``; append
  options take the whitespace-split list, which command-line values then
  extend (``PIP_FIND_LINKS=/a`` plus ``-f /b`` gives ``[/a, /b]``, verified).
  A value pip cannot read is an error (exit 2 in pip; here ``InputError`` for
  a file, ``UsageError`` for a variable).  Values of options that do not
  change where or what pip installs (``--timeout``, choices, ...) are not
  type-checked: pip reports those errors itself.
* ``--isolated``: see ``pipconfig``; only the literal ``--isolated`` after the
  command is removed skips the ``PIP_*`` variables and user files, and only
  for the command's parser (verified: ``PIP_USER=1 pip install --isol`` is a
  user install, ``PIP_ISOLATED=1`` isolates nothing).
* ``--python`` (pip >= 22.3): the main parser's value, from argv *before* the
  command, ``PIP_PYTHON`` or ``python =`` in ``[global]`` (even with
  ``--isolated``), makes pip re-run itself under that interpreter (verified
  with ``pip debug``).  Given after the command, or through ``[install]
  python =``, pip stops with "The --python option must be placed before the
  pip subcommand name" (exit 1, verified): that raises ``UsageError`` here.
  pip marks its child with ``_PIP_RUNNING_IN_SUBPROCESS``; with that variable
  set pip ignores ``--python`` wherever it is, and so does this parser
  (``python`` is then absent from the settings).  ``--python=`` (empty)
  re-runs nothing.  safe-pip runs ``<target python> -m pip`` itself, with
  ``Operation.argv_without_python()`` as argv and ``PIP_SUBPROCESS_MARKER``
  set, as pip's own parent would.  A faithful two-step use: parse once with
  the config of the interpreter safe-pip would start from, and when
  ``op.python`` is set, load the target's config and parse again with the
  marker in ``environ``.
* Empty values on the command line are kept: ``--target=``, ``--prefix=`` and
  ``--root=`` are not ``None`` to pip, so they skip its EXTERNALLY-MANAGED
  check (verified with ``--dry-run`` on an externally managed Python), and
  then ``--target=`` installs into the normal site-packages, ``--prefix=``
  under ``/`` (``/lib/python3.12/site-packages``) and ``--root=`` under the
  current directory (``./<prefix>/lib/...``), all verified.  Their
  ``Setting`` is present with value ``""``; policy code must not read it as
  "no target".
* ``-h``/``--help`` stops parsing and prints help: such a line becomes
  ``command == "help"`` with the command it was for as argument.
  ``--version`` before the command (or ``version = true`` in ``[global]``)
  prints the version and runs nothing: ``command is None``.  ``pip`` alone
  prints help: ``command is None``.
* For commands other than install and uninstall only the main parser is
  modelled; ``args`` is then the raw rest of argv.  install and uninstall
  know every option of pip 22.2 to 26.3 (a union: an option some version
  lacks is accepted, a prefix ambiguous in any version is refused); an
  unknown or ambiguous option is a ``UsageError``, so safe-pip fails closed.
"""

from __future__ import annotations

from safe_pip.errors import InputError, UsageError
from safe_pip.pipconfig import ConfigValue, PipConfig, option_values, strtobool
from safe_pip.target import PIP_SUBPROCESS_MARKER
from safe_pip.values import field, frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: safe-pip's own flag: replace conda-owned packages where the policy lets users; removed
#: before pip runs
REPLACE_CONDA_FLAG = "--replace-conda-packages"

#: The largest ``-r``/``-c`` file read (a fully hashed lock of 500 packages is about 1 MiB).
MAX_REQUIREMENT_FILE_BYTES = 16 << 20

#: pip commands that change an environment; every other command passes through.
MUTATING_COMMANDS = frozenset({"install", "uninstall"})

#: Every pip command from pip 22.2 to 26.3 (``lock`` since 25.1).
PIP_COMMANDS = frozenset(
    {
        "install",
        "lock",
        "download",
        "uninstall",
        "freeze",
        "inspect",
        "list",
        "show",
        "check",
        "config",
        "search",
        "cache",
        "index",
        "wheel",
        "hash",
        "completion",
        "debug",
        "help",
    }
)

#: The variable pip sets in the interpreter it re-runs itself in for ``--python``.


@frozen
class Setting:
    """One effective pip option: its value and a human-readable origin.

    ``source`` reads like ``"--user"``, ``"PIP_USER=1"`` or
    ``"/etc/pip.conf [install] user"`` so a denial can say where it came from.
    """

    value: object
    source: str


@frozen
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

    Values: ``bool`` for flags (``use_user_site`` may be ``False``: an
    explicit non-user install), ``int`` for counts, ``str`` for single
    values, ``tuple[str, ...]`` for repeatable options.  Options pip handles
    with a callback that accumulates (``--no-binary``, ``--only-binary``,
    ``-C``, ``--group``, ...) keep ``"--option=value"`` strings in order.
    """

    command: str | None
    argv: tuple[str, ...]
    args: tuple[str, ...] = ()
    settings: Mapping[str, Setting] = field(default_factory=dict)
    #: argv split at the command: (general options before it, the command and the rest)
    general_argv: tuple[str, ...] = ()
    command_argv: tuple[str, ...] = ()
    #: (start, stop) index ranges of ``--python`` options in ``argv``
    python_spans: tuple[tuple[int, int], ...] = ()
    #: the command's parser skipped ``PIP_*`` variables and user config (literal ``--isolated``)
    config_isolated: bool = False
    #: the program the user typed, for messages (``uv`` for ``uv pip ...``, see backends.uv_cli)
    program: str = "pip"
    #: safe-pip's own options the user typed after the command (``--installer uv``): in
    #: messages, so that a suggested command runs the same way; never given to pip
    own_options: tuple[str, ...] = ()

    @property
    def mutating(self) -> bool:
        return self.command in MUTATING_COMMANDS

    def get(self, dest: str, default: object = None) -> object:
        setting = self.settings.get(dest)
        return default if setting is None else setting.value

    def source(self, dest: str) -> str:
        setting = self.settings.get(dest)
        return "" if setting is None else setting.source

    def _true(self, dest: str) -> Setting | None:
        setting = self.settings.get(dest)
        return setting if setting is not None and setting.value else None

    def _strings(self, dest: str) -> tuple[str, ...]:
        value = self.get(dest, ())
        return value if isinstance(value, tuple) else ()

    @property
    def user_site(self) -> Setting | None:
        """An explicit user install (also ``PIP_USER=1`` or ``PIP_NO_USER=1``).

        ``None`` does not rule one out: with ``use_user_site`` absent (not
        ``False``) pip itself picks a user install when site-packages is not
        writable and user site-packages are enabled, unless ``--target`` or
        ``--prefix`` is given (``decide_user_install`` in pip's install.py).
        """
        return self._true("use_user_site")

    @property
    def target_dir(self) -> Setting | None:
        return self.settings.get("target_dir")

    @property
    def prefix_path(self) -> Setting | None:
        return self.settings.get("prefix_path")

    @property
    def root_path(self) -> Setting | None:
        return self.settings.get("root_path")

    @property
    def python(self) -> Setting | None:
        """The interpreter pip would re-run itself under, if any."""
        return self.settings.get("python")

    @property
    def break_system_packages(self) -> Setting | None:
        return self._true("override_externally_managed")

    @property
    def build_isolation(self) -> bool:
        return bool(self.get("build_isolation", True))

    @property
    def editables(self) -> tuple[str, ...]:
        return self._strings("editables")

    @property
    def requirement_files(self) -> tuple[str, ...]:
        return self._strings("requirements")

    @property
    def constraint_files(self) -> tuple[str, ...]:
        return self._strings("constraints")

    @property
    def isolated(self) -> bool:
        return bool(self.get("isolated_mode", False))

    @property
    def dry_run(self) -> bool:
        return bool(self.get("dry_run", False))

    @property
    def report_file(self) -> str | None:
        value = self.get("json_report_file")
        return value if isinstance(value, str) else None

    @property
    def index_url(self) -> str | None:
        value = self.get("index_url")
        return value if isinstance(value, str) else None

    @property
    def extra_index_urls(self) -> tuple[str, ...]:
        return self._strings("extra_index_urls")

    @property
    def find_links(self) -> tuple[str, ...]:
        return self._strings("find_links")

    @property
    def no_index(self) -> bool:
        return bool(self.get("no_index", False))

    def argv_without_python(self) -> list[str]:
        """``argv`` without the ``--python X`` / ``--python=X`` / ``--pyth X`` before the command.

        For running ``<target python> -m pip`` directly: pip 22.2 has no
        ``--python`` and the target must not re-run itself.  Only the general
        options are touched, so ``command_argv`` stays the tail of the result.
        The result parses to the same operation.  Raises ``UsageError`` in the
        two cases where dropping the option would change that: its value is
        the literal ``--isolated``, or it is the first argument equal to the
        command name (pip's command parser drops that one, not the command).
        """
        end = len(self.general_argv)
        drop = {i for start, stop in self.python_spans if stop <= end for i in range(start, stop)}
        if not drop:
            return list(self.argv)
        command = self.command_argv[0] if self.command_argv else None
        if command is not None and self.argv.index(command) in drop:
            raise UsageError(
                f"the value of --python is also the command name {command!r}; safe-pip "
                "cannot remove --python without changing what pip would do"
            )
        if any(self.argv[i] == "--isolated" for i in drop):
            raise UsageError("safe-pip cannot remove a --python whose value is --isolated")
        return [arg for i, arg in enumerate(self.argv) if i not in drop]


def argv_without_python(op: Operation) -> list[str]:
    """``op.argv`` without its ``--python`` options; see ``Operation.argv_without_python``."""
    return op.argv_without_python()


# --- option tables ------------------------------------------------------------
#
# Kinds of option, named after what pip does with them.
_TRUE = "store_true"
_FALSE = "store_false"
_COUNT = "count"
_STORE = "store"
_APPEND = "append"
#: a callback that adds its raw value to what is there (--no-binary, -C, --group, ...)
_ACCUMULATE = "accumulate"
#: --no-cache-dir: sets cache_dir to False; a config value must be a boolean word
_NO_CACHE = "no-cache-dir"
#: --no-use-pep517 (pip <= 25.2): pip refuses any value from config or environment
_NO_USE_PEP517 = "no-use-pep517"
_HELP = "help"
#: -V/--version after the command (pip <= 26.2.1): a boolean that does nothing
_IGNORED_FLAG = "ignored-flag"

_TAKES_VALUE = frozenset({_STORE, _APPEND, _ACCUMULATE})


class _Option:
    __slots__ = ("dest", "kind", "names", "takes_value")

    def __init__(self, kind: str, dest: str, *names: str) -> None:
        self.kind = kind
        self.dest = dest
        self.names = names
        self.takes_value = kind in _TAKES_VALUE


class _OptionTable:
    def __init__(self, name: str, options: Iterable[_Option]) -> None:
        self.name = name
        self.long: dict[str, _Option] = {}
        self.short: dict[str, _Option] = {}
        for option in options:
            for option_name in option.names:
                table = self.long if option_name.startswith("--") else self.short
                table[option_name] = option

    def match_long(self, typed: str) -> tuple[str, _Option]:
        """The long option ``typed`` names (exactly or as a unique prefix), and its option."""
        option = self.long.get(typed)
        if option is not None:
            return typed, option
        candidates = sorted(name for name in self.long if name.startswith(typed))
        if len(candidates) == 1:
            return candidates[0], self.long[candidates[0]]
        where = f"pip {self.name}" if self.name != "global" else "pip (before the command)"
        if not candidates:
            raise UsageError(
                f"{where}: no such option: {typed}",
                hint="safe-pip runs only command lines that pip would accept",
            )
        raise UsageError(
            f"{where}: ambiguous option {typed} (could be {', '.join(candidates)})",
            hint="spell the option out in full",
        )


_GENERAL_OPTIONS = (
    _Option(_HELP, "help", "-h", "--help"),
    _Option(_TRUE, "debug_mode", "--debug"),
    _Option(_TRUE, "isolated_mode", "--isolated"),
    _Option(_TRUE, "require_venv", "--require-virtualenv", "--require-venv"),
    _Option(_STORE, "python", "--python"),  # pip >= 22.3
    _Option(_COUNT, "verbose", "-v", "--verbose"),
    _Option(_COUNT, "quiet", "-q", "--quiet"),
    _Option(_STORE, "log", "--log", "--log-file", "--local-log"),
    _Option(_TRUE, "no_input", "--no-input"),
    _Option(_STORE, "keyring_provider", "--keyring-provider"),  # pip >= 23.1
    _Option(_STORE, "proxy", "--proxy"),
    _Option(_TRUE, "no_proxy_env", "--no-proxy-env"),  # pip >= 26.2
    _Option(_STORE, "retries", "--retries"),
    _Option(_STORE, "timeout", "--timeout", "--default-timeout"),
    _Option(_APPEND, "exists_action", "--exists-action"),
    _Option(_APPEND, "trusted_hosts", "--trusted-host"),
    _Option(_STORE, "cert", "--cert"),
    _Option(_STORE, "client_cert", "--client-cert"),
    _Option(_STORE, "cache_dir", "--cache-dir"),
    _Option(_NO_CACHE, "cache_dir", "--no-cache-dir"),
    _Option(_TRUE, "disable_pip_version_check", "--disable-pip-version-check"),
    _Option(_TRUE, "no_color", "--no-color"),
    _Option(_TRUE, "no_python_version_warning", "--no-python-version-warning"),
    _Option(_APPEND, "features_enabled", "--use-feature"),
    _Option(_APPEND, "deprecated_features_enabled", "--use-deprecated"),
    _Option(_STORE, "resume_retries", "--resume-retries"),  # pip >= 25.1
)

#: -V/--version: the main parser's; command parsers had it as a no-op until pip 26.2.1.
_MAIN_VERSION = _Option(_TRUE, "version", "-V", "--version")
_COMMAND_VERSION = _Option(_IGNORED_FLAG, "version", "-V", "--version")

_INDEX_OPTIONS = (
    _Option(_STORE, "index_url", "-i", "--index-url", "--pypi-url"),
    _Option(_APPEND, "extra_index_urls", "--extra-index-url"),
    _Option(_TRUE, "no_index", "--no-index"),
    _Option(_ACCUMULATE, "refresh_package", "--refresh-package"),  # pip >= 26.2
    _Option(_APPEND, "find_links", "-f", "--find-links"),
    _Option(_STORE, "uploaded_prior_to", "--uploaded-prior-to"),  # pip >= 26.0
)

_SELECTION_OPTIONS = (
    _Option(_TRUE, "pre", "--pre"),
    _Option(_ACCUMULATE, "release_control", "--all-releases"),  # pip >= 26.0
    _Option(_ACCUMULATE, "release_control", "--only-final"),  # pip >= 26.0
    _Option(_ACCUMULATE, "format_control", "--no-binary"),
    _Option(_ACCUMULATE, "format_control", "--only-binary"),
    _Option(_TRUE, "prefer_binary", "--prefer-binary"),
)

_INSTALL_OPTIONS = (
    _Option(_APPEND, "requirements", "-r", "--requirement"),
    _Option(_APPEND, "constraints", "-c", "--constraint"),
    _Option(_APPEND, "build_constraints", "--build-constraint"),  # pip >= 25.3
    _Option(_APPEND, "requirements_from_scripts", "--requirements-from-script"),  # pip >= 26.0
    _Option(_TRUE, "ignore_dependencies", "--no-deps", "--no-dependencies"),
    _Option(_TRUE, "only_dependencies", "--only-deps", "--only-dependencies"),  # pip >= 26.2
    _Option(_ACCUMULATE, "dependency_groups", "--group"),  # pip >= 25.1
    _Option(_APPEND, "editables", "-e", "--editable"),
    _Option(_TRUE, "dry_run", "--dry-run"),
    _Option(_STORE, "target_dir", "-t", "--target"),
    _Option(_APPEND, "platforms", "--platform"),
    _Option(_STORE, "python_version", "--python-version"),
    _Option(_STORE, "implementation", "--implementation"),
    _Option(_APPEND, "abis", "--abi"),
    _Option(_TRUE, "use_user_site", "--user"),
    _Option(_FALSE, "use_user_site", "--no-user"),
    _Option(_STORE, "root_path", "--root"),
    _Option(_STORE, "prefix_path", "--prefix"),
    _Option(_STORE, "src_dir", "--src", "--source", "--source-dir", "--source-directory"),
    _Option(_TRUE, "upgrade", "-U", "--upgrade"),
    _Option(_STORE, "upgrade_strategy", "--upgrade-strategy"),
    _Option(_TRUE, "force_reinstall", "--force-reinstall"),
    _Option(_TRUE, "ignore_installed", "-I", "--ignore-installed"),
    _Option(_TRUE, "ignore_requires_python", "--ignore-requires-python"),
    _Option(_FALSE, "build_isolation", "--no-build-isolation"),
    _Option(_TRUE, "use_pep517", "--use-pep517"),
    _Option(_NO_USE_PEP517, "use_pep517", "--no-use-pep517"),  # pip <= 25.2
    _Option(_TRUE, "check_build_deps", "--check-build-dependencies"),
    _Option(_TRUE, "override_externally_managed", "--break-system-packages"),  # pip >= 23.0.1
    _Option(_ACCUMULATE, "config_settings", "-C", "--config-settings"),  # -C: pip >= 23.1
    _Option(_APPEND, "install_options", "--install-option"),  # pip <= 23.0.1
    _Option(_APPEND, "global_options", "--global-option"),  # pip <= 25.2
    _Option(_TRUE, "compile", "--compile"),
    _Option(_FALSE, "compile", "--no-compile"),
    _Option(_FALSE, "warn_script_location", "--no-warn-script-location"),
    _Option(_FALSE, "warn_about_conflicts", "--no-warn-conflicts"),
    _Option(_TRUE, "require_hashes", "--require-hashes"),
    _Option(_TRUE, "no_require_hashes", "--no-require-hashes"),  # pip >= 26.2
    _Option(_STORE, "progress_bar", "--progress-bar"),
    _Option(_STORE, "root_user_action", "--root-user-action"),
    _Option(_STORE, "json_report_file", "--report"),
    _Option(_TRUE, "no_clean", "--no-clean"),
)

_UNINSTALL_OPTIONS = (
    _Option(_APPEND, "requirements", "-r", "--requirement"),
    _Option(_TRUE, "yes", "-y", "--yes"),
    _Option(_STORE, "root_user_action", "--root-user-action"),
    _Option(_TRUE, "override_externally_managed", "--break-system-packages"),  # pip >= 23.0.1
)

_MAIN_TABLE = _OptionTable("global", (_MAIN_VERSION, *_GENERAL_OPTIONS))
_COMMAND_TABLES = {
    "install": _OptionTable(
        "install",
        (
            *_INSTALL_OPTIONS,
            *_SELECTION_OPTIONS,
            *_INDEX_OPTIONS,
            *_GENERAL_OPTIONS,
            _COMMAND_VERSION,
        ),
    ),
    "uninstall": _OptionTable(
        "uninstall", (*_UNINSTALL_OPTIONS, *_GENERAL_OPTIONS, _COMMAND_VERSION)
    ),
}


# --- parsing --------------------------------------------------------------------


class _Parse:
    """One optparse-like pass: defaults from config, then argv tokens."""

    def __init__(self, table: _OptionTable) -> None:
        self.table = table
        self.settings: dict[str, Setting] = {}
        self.positional: list[tuple[int, str]] = []
        self.python_spans: list[tuple[int, int]] = []
        self.help_requested = False

    # config and PIP_* variables ------------------------------------------------

    def apply_config(self, items: Iterable[tuple[str, ConfigValue]]) -> None:
        for key, value in items:
            option = self.table.long.get("--" + key)
            if option is not None:
                self._apply_config_value(option, key, value)

    def _apply_config_value(  # noqa: C901 - one branch per optparse action, as pip reads config
        self, option: _Option, key: str, item: ConfigValue
    ) -> None:
        kind = option.kind
        raw = item.value
        if kind in (_TRUE, _FALSE, _IGNORED_FLAG, _NO_CACHE):
            try:
                flag = strtobool(raw)
            except ValueError:
                raise _value_error(
                    item, key, "is not a boolean (use yes/no, true/false, on/off or 1/0)"
                ) from None
            if kind == _NO_CACHE:
                # pip disables the cache for any boolean, "false" included
                self.settings[option.dest] = Setting(False, item.source)
            elif kind != _IGNORED_FLAG:
                # the value goes to the dest as it is: PIP_NO_USER=1 sets use_user_site
                self.settings[option.dest] = Setting(bool(flag), item.source)
        elif kind == _COUNT:
            count = _config_count(raw)
            if count is None:
                raise _value_error(item, key, "is not a non-negative integer or a boolean")
            self.settings[option.dest] = Setting(count, item.source)
        elif kind == _APPEND:
            self.settings[option.dest] = Setting(tuple(raw.split()), item.source)
        elif kind == _ACCUMULATE:
            self._accumulate(option.dest, f"{option.names[-1]}={raw}", item.source)
        elif kind == _STORE:
            self.settings[option.dest] = Setting(raw, item.source)
        elif kind == _NO_USE_PEP517:
            raise _value_error(
                item, key, "cannot be set from configuration (pip refuses it; use use-pep517)"
            )
        # _HELP: pip stores the text and never looks at it

    # argv ------------------------------------------------------------------------

    def parse_argv(self, tokens: Sequence[tuple[int, str]], *, interspersed: bool) -> int:
        """Consume options; return where the arguments left to the caller start.

        With ``interspersed`` (a command's parser) arguments are collected in
        ``positional`` and everything is consumed; without (the main parser)
        parsing stops at the first argument or after ``--``.
        """
        position = 0
        total = len(tokens)
        while position < total:
            index, arg = tokens[position]
            if arg == "--":
                if not interspersed:
                    return position + 1
                self.positional.extend(tokens[position + 1 :])
                return total
            if arg.startswith("--"):
                position = self._long_option(tokens, position)
            elif arg.startswith("-") and len(arg) > 1:
                position = self._short_options(tokens, position)
            elif interspersed:
                self.positional.append((index, arg))
                position += 1
            else:
                return position
            if self.help_requested:
                return total
        return total

    def _long_option(self, tokens: Sequence[tuple[int, str]], position: int) -> int:
        index, arg = tokens[position]
        typed, equals, explicit = arg.partition("=")
        name, option = self.table.match_long(typed)
        position += 1
        if option.takes_value:
            if equals:
                value = explicit
                source = f"{name}={value}"
                stop = index + 1
            else:
                if position >= len(tokens):
                    raise UsageError(f"pip {self.table.name}: option {name} requires a value")
                value = tokens[position][1]
                source = f"{name} {value}"
                stop = tokens[position][0] + 1
                position += 1
            self._take(option, value, source, (index, stop))
        elif equals:
            raise UsageError(f"pip {self.table.name}: option {name} does not take a value")
        else:
            self._take(option, None, name, (index, index + 1))
        return position

    def _short_options(self, tokens: Sequence[tuple[int, str]], position: int) -> int:
        index, arg = tokens[position]
        position += 1
        for offset in range(1, len(arg)):
            letter = "-" + arg[offset]
            option = self.table.short.get(letter)
            if option is None:
                raise UsageError(
                    f"pip {self.table.name}: no such option: {letter}",
                    hint="safe-pip runs only command lines that pip would accept",
                )
            if not option.takes_value:
                self._take(option, None, letter, (index, index + 1))
                if self.help_requested:
                    break
                continue
            rest = arg[offset + 1 :]
            if rest:
                self._take(option, rest, letter + rest, (index, index + 1))
            else:
                if position >= len(tokens):
                    raise UsageError(f"pip {self.table.name}: option {letter} requires a value")
                value = tokens[position][1]
                self._take(option, value, f"{letter} {value}", (index, tokens[position][0] + 1))
                position += 1
            break
        return position

    def _take(  # noqa: C901 - one branch per optparse action, as pip applies options
        self, option: _Option, value: str | None, source: str, span: tuple[int, int]
    ) -> None:
        kind = option.kind
        dest = option.dest
        if kind == _HELP:
            self.help_requested = True
        elif kind == _TRUE:
            self.settings[dest] = Setting(True, source)
        elif kind in (_FALSE, _NO_USE_PEP517, _NO_CACHE):
            self.settings[dest] = Setting(False, source)
        elif kind == _COUNT:
            previous = self.settings.get(dest)
            if previous is None:
                self.settings[dest] = Setting(1, source)
            else:
                count = previous.value if isinstance(previous.value, int) else 0
                self.settings[dest] = Setting(count + 1, f"{previous.source} + {source}")
        elif kind == _STORE:
            assert value is not None
            self.settings[dest] = Setting(value, source)
            if dest == "python":
                self.python_spans.append(span)
        elif kind == _APPEND:
            assert value is not None
            previous = self.settings.get(dest)
            if previous is None or not isinstance(previous.value, tuple):
                self.settings[dest] = Setting((value,), source)
            else:
                self.settings[dest] = Setting(
                    (*previous.value, value), f"{previous.source} + {source}"
                )
        elif kind == _ACCUMULATE:
            assert value is not None
            self._accumulate(dest, f"{option.names[-1]}={value}", source)
        # _IGNORED_FLAG: accepted and without effect

    def _accumulate(self, dest: str, value: str, source: str) -> None:
        previous = self.settings.get(dest)
        if previous is None or not isinstance(previous.value, tuple):
            self.settings[dest] = Setting((value,), source)
        else:
            self.settings[dest] = Setting((*previous.value, value), f"{previous.source} + {source}")


def _config_count(raw: str) -> int | None:
    """pip's reading of a count from config: a boolean word or an int, not negative."""
    try:
        return strtobool(raw)
    except ValueError:
        pass
    try:
        count = int(raw)
    except ValueError:
        return None
    return count if count >= 0 else None


def _value_error(item: ConfigValue, key: str, problem: str) -> InputError | UsageError:
    message = f"{item.value!r} for {key} {problem}"
    hint = "pip refuses to run with this value"
    if item.path:
        return InputError(message, path=item.path, line=item.line, key=item.name, hint=hint)
    return UsageError(f"{item.source}: {message}", hint=hint)


def parse_pip_command_line(
    argv: Sequence[str],
    environ: Mapping[str, str],
    config: PipConfig | None = None,
) -> Operation:
    """What pip would do for ``pip <argv>`` with ``environ`` and ``config``.

    ``argv`` excludes the program name.  ``config`` is what
    ``pipconfig.load_pip_config`` read; ``None`` means no configuration files
    (the ``PIP_*`` variables in ``environ`` still apply).  Raises
    ``UsageError`` for a command line pip would refuse or that safe-pip does
    not understand, and ``InputError`` for a bad value in a config file.
    """
    argv = tuple(argv)
    tokens = list(enumerate(argv))

    main = _Parse(_MAIN_TABLE)
    main.apply_config(option_values(config, environ, "global", isolated=False))
    used = main.parse_argv(tokens, interspersed=False)
    rest = tokens[used:]

    reexec = PIP_SUBPROCESS_MARKER not in environ
    python = main.settings.get("python")
    if python is not None and not (python.value and reexec):
        python = None
    python_spans = tuple(main.python_spans)

    if main.help_requested:
        # optparse prints the help while parsing, before pip could re-run itself
        return Operation(
            command="help",
            argv=argv,
            settings=_with_python(main.settings, None),
            general_argv=argv,
            python_spans=python_spans,
        )
    if main.settings.get("version", Setting(False, "")).value or not rest:
        return Operation(
            command=None,
            argv=argv,
            settings=_with_python(main.settings, python),
            general_argv=argv,
            python_spans=python_spans,
        )

    command_index, command = rest[0]
    general_argv = argv[:command_index]
    command_argv = argv[command_index:]
    if command not in PIP_COMMANDS:
        raise UsageError(
            f"unknown pip command {command!r}",
            hint="run 'pip help' for the list of commands",
        )
    table = _COMMAND_TABLES.get(command)
    if table is None:
        return Operation(
            command=command,
            argv=argv,
            args=command_argv[1:],
            settings=_with_python(main.settings, python),
            general_argv=general_argv,
            command_argv=command_argv,
            python_spans=python_spans,
        )

    # pip hands the command parser argv minus the first argument equal to the command
    first = argv.index(command)
    command_tokens = tokens[:first] + tokens[first + 1 :]
    isolated = any(arg == "--isolated" for _, arg in command_tokens)

    parse = _Parse(table)
    parse.apply_config(option_values(config, environ, command, isolated=isolated))
    parse.parse_argv(command_tokens, interspersed=True)

    if parse.help_requested:
        return Operation(
            command="help",
            argv=argv,
            args=(command,),
            settings=_with_python(parse.settings, python),
            general_argv=general_argv,
            command_argv=command_argv,
            python_spans=python_spans,
            config_isolated=isolated,
        )
    late_python = parse.settings.get("python")
    if late_python is not None and late_python.value and reexec and python is None:
        raise UsageError(
            f"pip refuses --python after the command ({late_python.source})",
            hint="put --python before the command name: pip --python PATH install ...",
        )
    spans = sorted(set(python_spans) | set(parse.python_spans))
    return Operation(
        command=command,
        argv=argv,
        args=tuple(arg for _, arg in parse.positional),
        settings=_with_python(parse.settings, python),
        general_argv=general_argv,
        command_argv=command_argv,
        python_spans=tuple(spans),
        config_isolated=isolated,
    )


def _with_python(settings: Mapping[str, Setting], python: Setting | None) -> dict[str, Setting]:
    """``settings`` with ``python`` set to what pip acts on (absent when it re-runs nothing)."""
    result = {dest: value for dest, value in settings.items() if dest != "python"}
    if python is not None:
        result["python"] = python
    return result


def requirement_file_requirements(op: Operation) -> list[str]:
    """The requirement lines of the ``-r`` files an operation names.

    Comments (``#`` at the start or after white space, as pip reads them), blank
    lines and option lines are left out; unreadable files give nothing (pip
    itself will report them).
    """
    found: list[str] = []
    for path in op.requirement_files:
        text = read_requirement_file(path)
        if text is None:
            continue
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                continue
            for marker in (" #", "\t#"):
                line = line.split(marker, 1)[0]
            line = line.strip()
            if line and not line.startswith("-"):
                found.append(line)
    return found


def read_requirement_file(path: str) -> str | None:
    """The text of a requirements file, or None when reading it could change it or
    block: only a regular file is read (``/dev/stdin``, a pipe or a FIFO would be
    consumed, and then pip would see nothing), of at most
    ``MAX_REQUIREMENT_FILE_BYTES``.  Those stay pip's to read; safe-pip then
    judges what pip resolved (preflight).
    """
    from safe_pip.readfile import read_text

    try:
        return read_text(path, limit=MAX_REQUIREMENT_FILE_BYTES, errors="replace")
    except (OSError, ValueError):
        return None
