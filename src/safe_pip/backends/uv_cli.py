"""uv's pip interface, read as uv reads it: ``uv pip install|uninstall|sync``.

The result is the same ``Operation`` the pip command line gives (pip's option
names as keys), so the decision is the one pip commands get.  uv ignores
``PIP_*`` variables and pip's config files; it reads its own ``UV_*``
variables, which are mapped here where they matter to the decision.  uv's own
config files (``uv.toml``, ``[tool.uv.pip]``) are never read when safe-pip
runs uv: it passes ``--no-config``, so a ``target`` or ``prefix`` there cannot
move an install (docs/uv.md).

Options are clap's: long names in full (no abbreviations), ``--opt value``
or ``--opt=value``, short ones as ``-r value``, ``-rvalue`` or ``-r=value``,
and value-less short flags combined (``-qU``).  An option this table does not
know is refused (fail closed).
"""

from __future__ import annotations

from safe_pip.errors import UsageError
from safe_pip.pipcli import Operation, Setting
from safe_pip.values import frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: the ``uv pip`` commands that change an env
MUTATING = ("install", "uninstall", "sync")

FLAG = "flag"
VALUE = "value"

#: What to do with an option when installing exactly the plan (the second run).
#: "plan": it chose what to install (dropped, the plan says it);
#: "carry": how and where to install (kept); "target": the interpreter (safe-pip's own).
PLAN = "plan"
CARRY = "carry"
TARGET = "target"


@frozen
class UvOption:
    names: tuple[str, ...]
    kind: str
    #: pip's name for the same setting, when the decision or the record uses it
    dest: str = ""
    role: str = CARRY
    #: the value a flag gives ``dest``
    value: object = True


def _o(kind: str, *names: str, dest: str = "", role: str = CARRY, value: object = True) -> UvOption:
    return UvOption(names, kind, dest, role, value)


OPTIONS: tuple[UvOption, ...] = (
    # what to install: the plan says it
    _o(VALUE, "-r", "--requirements", "--requirement", dest="requirements", role=PLAN),
    _o(VALUE, "-e", "--editable", dest="editables", role=PLAN),
    _o(VALUE, "-c", "--constraints", "--constraint", dest="constraints", role=PLAN),
    _o(VALUE, "--overrides", "--override", role=PLAN),
    _o(VALUE, "--excludes", role=PLAN),
    _o(VALUE, "--extra", role=PLAN),
    _o(FLAG, "--all-extras", role=PLAN),
    _o(FLAG, "--no-all-extras", role=PLAN),
    _o(VALUE, "--group", role=PLAN),
    _o(FLAG, "--no-deps", dest="ignore_dependencies", role=PLAN),
    _o(FLAG, "--deps", role=PLAN),
    _o(FLAG, "-U", "--upgrade", dest="upgrade", role=PLAN),
    _o(FLAG, "--no-upgrade", role=PLAN),
    _o(VALUE, "-P", "--upgrade-package", role=PLAN),
    _o(VALUE, "--upgrade-group", role=PLAN),
    _o(FLAG, "--reinstall", "--force-reinstall", dest="force_reinstall", role=PLAN),
    _o(FLAG, "--no-reinstall", role=PLAN),
    _o(VALUE, "--reinstall-package", role=PLAN),
    _o(FLAG, "--exact", role=PLAN),
    _o(FLAG, "--inexact", role=PLAN),
    _o(FLAG, "--strict", role=PLAN),
    _o(FLAG, "--no-strict", role=PLAN),
    _o(VALUE, "--resolution", role=PLAN),
    _o(VALUE, "--prerelease", role=PLAN),
    _o(VALUE, "--prerelease-package", role=PLAN),
    _o(FLAG, "--pre", role=PLAN),
    _o(VALUE, "--fork-strategy", role=PLAN),
    _o(VALUE, "--exclude-newer", role=PLAN),
    _o(VALUE, "--exclude-newer-package", role=PLAN),
    _o(FLAG, "--no-sources", role=PLAN),
    _o(VALUE, "--no-sources-package", role=PLAN),
    _o(VALUE, "--torch-backend", role=PLAN),
    _o(VALUE, "--python-version", dest="python_version", role=PLAN),
    _o(VALUE, "--python-platform", role=PLAN),
    _o(FLAG, "--no-editable", role=PLAN),
    _o(VALUE, "--no-editable-package", role=PLAN),
    _o(FLAG, "--require-hashes", role=PLAN),
    _o(FLAG, "--no-require-hashes", role=PLAN),
    _o(FLAG, "--verify-hashes", role=PLAN),
    _o(FLAG, "--no-verify-hashes", role=PLAN),
    _o(FLAG, "--allow-empty-requirements", role=PLAN),
    _o(FLAG, "--no-allow-empty-requirements", role=PLAN),
    _o(FLAG, "--check", role=PLAN),
    _o(FLAG, "--dry-run", dest="dry_run", role=PLAN),
    _o(VALUE, "--output-format", role=PLAN),
    # where and how to install: carried to the pinned install
    _o(VALUE, "--index", dest="extra_index_urls"),
    _o(VALUE, "--default-index", dest="index_url"),
    _o(VALUE, "-i", "--index-url", dest="index_url"),
    _o(VALUE, "--extra-index-url", dest="extra_index_urls"),
    _o(VALUE, "-f", "--find-links", dest="find_links"),
    _o(FLAG, "--no-index", dest="no_index"),
    _o(VALUE, "--index-strategy"),
    _o(VALUE, "--keyring-provider"),
    _o(VALUE, "--cert"),
    _o(VALUE, "--allow-insecure-host", "--trusted-host"),
    _o(FLAG, "--offline"),
    _o(FLAG, "--no-offline"),
    _o(FLAG, "--system-certs"),
    _o(FLAG, "--native-tls"),
    _o(FLAG, "--no-native-tls"),
    _o(VALUE, "-b", "--build-constraints", "--build-constraint"),
    _o(FLAG, "--no-build"),
    _o(FLAG, "--build"),
    _o(VALUE, "--no-binary"),
    _o(VALUE, "--only-binary"),
    _o(FLAG, "--binary"),
    _o(VALUE, "-C", "--config-setting", "--config-settings"),
    _o(VALUE, "--config-settings-package"),
    _o(FLAG, "--no-build-isolation", dest="build_isolation", value=False),
    _o(FLAG, "--build-isolation", dest="build_isolation", value=True),
    _o(VALUE, "--no-build-isolation-package"),
    _o(FLAG, "--require-build-hashes"),
    _o(VALUE, "--link-mode"),
    _o(FLAG, "--compile-bytecode", "--compile"),
    _o(FLAG, "--no-compile-bytecode", "--no-compile"),
    _o(VALUE, "-t", "--target", dest="target_dir"),
    _o(VALUE, "--prefix", dest="prefix_path"),
    _o(FLAG, "--break-system-packages", dest="override_externally_managed"),
    _o(FLAG, "--no-break-system-packages", dest="override_externally_managed", value=False),
    _o(FLAG, "--user", dest="use_user_site"),
    _o(FLAG, "-n", "--no-cache"),
    _o(VALUE, "--cache-dir"),
    _o(FLAG, "--refresh"),
    _o(FLAG, "--no-refresh"),
    _o(VALUE, "--refresh-package"),
    _o(FLAG, "-q", "--quiet"),
    _o(FLAG, "-v", "--verbose"),
    _o(VALUE, "--color"),
    _o(FLAG, "--no-progress"),
    _o(FLAG, "--preview"),
    _o(FLAG, "--no-preview"),
    _o(VALUE, "--preview-features"),
    _o(FLAG, "--no-config"),
    _o(FLAG, "--managed-python"),
    _o(FLAG, "--no-managed-python"),
    _o(FLAG, "--no-python-downloads"),
    _o(VALUE, "--python-preference"),
    # the interpreter: safe-pip resolves it and passes its own --python
    _o(VALUE, "-p", "--python", dest="python", role=TARGET),
    _o(FLAG, "--system", dest="uv_system", role=TARGET),
    _o(FLAG, "--no-system", dest="uv_system", role=TARGET, value=False),
    _o(FLAG, "-y", "--yes", role=PLAN),
)

#: uv options that safe-pip refuses: they move where uv reads paths or config.
REFUSED = {
    "--directory": "it changes the directory relative paths are read from; cd there instead",
    "--project": "it changes the directory relative paths are read from; cd there instead",
    "--config-file": "safe-pip runs uv without its config files (settings there could move "
    "an install out of the env); give the settings as options or UV_* variables",
}

_LONG = {name: o for o in OPTIONS for name in o.names if name.startswith("--")}
_SHORT = {name: o for o in OPTIONS for name in o.names if not name.startswith("--")}

#: UV_* variables that matter to the decision or the record: (variable, dest, how).
#: "list" values are space-separated, except UV_FIND_LINKS (commas).
VARIABLES = (
    ("UV_PYTHON", "python", "str"),
    ("UV_SYSTEM_PYTHON", "uv_system", "bool"),
    ("UV_BREAK_SYSTEM_PACKAGES", "override_externally_managed", "bool"),
    ("UV_INDEX_URL", "index_url", "str"),
    ("UV_DEFAULT_INDEX", "index_url", "str"),
    ("UV_EXTRA_INDEX_URL", "extra_index_urls", "list"),
    ("UV_INDEX", "extra_index_urls", "list"),
    ("UV_FIND_LINKS", "find_links", "commas"),
    ("UV_CONSTRAINT", "constraints", "list"),
    ("UV_NO_BUILD_ISOLATION", "build_isolation", "not"),
)

#: variables safe-pip removes from uv's environment (it passes ``--no-config`` instead)
DROPPED_VARIABLES = ("UV_CONFIG_FILE", "UV_WORKING_DIR", "UV_PROJECT")

_TRUE_WORDS = ("1", "true", "yes", "on", "y", "t")
_REPEATED = frozenset(
    {"requirements", "editables", "constraints", "extra_index_urls", "find_links"}
)


@frozen
class UvCommand:
    """One ``uv pip`` command line: the operation to decide, and the options to run with."""

    command: str
    op: Operation
    #: positional arguments (requirements, names to uninstall, files to sync)
    positional: tuple[str, ...]
    #: each option as typed, with its role: (role, option name, the words typed)
    groups: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @property
    def plan_args(self) -> list[str]:
        """The options that choose what to install (for the plan run only)."""
        return [word for role, _, typed in self.groups if role == PLAN for word in typed]

    @property
    def carry_args(self) -> list[str]:
        """The options on how and where to install (for every run)."""
        return [word for role, _, typed in self.groups if role == CARRY for word in typed]

    def args_for_safe_pip_target(self) -> list[str]:
        """The command's arguments less the interpreter options (safe-pip passes its own)."""
        out = [word for role, _, typed in self.groups if role != TARGET for word in typed]
        return [*out, *(["--"] if self.positional else []), *self.positional]

    def carried(self, names: frozenset[str]) -> list[str]:
        """The carried options among ``names``, as typed."""
        return [
            word
            for role, name, typed in self.groups
            if role == CARRY and name in names
            for word in typed
        ]


def _env_bool(value: str) -> bool:
    return value.strip().lower() in _TRUE_WORDS


def _settings_from_environ(environ: Mapping[str, str]) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for variable, dest, how in VARIABLES:
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        source = f"{variable}={raw}"
        value: object
        if how == "bool":
            value = _env_bool(raw)
        elif how == "not":
            value = not _env_bool(raw)
        elif how == "list":
            value = tuple(raw.split())
        elif how == "commas":
            value = tuple(v.strip() for v in raw.split(",") if v.strip())
        else:
            value = raw
        if dest in settings and isinstance(value, tuple):
            old = settings[dest].value
            value = (*(old if isinstance(old, tuple) else ()), *value)
        settings[dest] = Setting(value, source)
    return settings


def _option_at(arg: str) -> tuple[UvOption, str, str | None]:
    """(the option ``arg`` starts with, its name, a value joined to it or None)."""
    if arg.startswith("--"):
        name, eq, inline = arg.partition("=")
        if name in REFUSED:
            raise UsageError(f"uv pip: safe-pip does not run {name}: {REFUSED[name]}")
        option = _LONG.get(name)
        joined = inline if eq else None
    else:
        name, rest = arg[:2], arg[2:]
        option = _SHORT.get(name)
        joined = (rest[1:] if rest.startswith("=") else rest) if rest else None
    if option is None:
        raise UsageError(
            f"uv pip: option {name} is not known to safe-pip",
            hint="safe-pip runs only the uv options it can judge; see docs/uv.md",
        )
    return option, name, joined


def _split(arg: str, args: Sequence[str], index: int) -> tuple[UvOption, str | None, int]:
    """(option, its value or None, the next index) for the option at ``args[index]``."""
    option, name, joined = _option_at(arg)
    if option.kind == FLAG:
        if joined is not None:
            raise UsageError(f"uv pip: {name} takes no value (in {arg})")
        return option, None, index + 1
    if joined is not None:
        return option, joined, index + 1
    if index + 1 >= len(args):
        raise UsageError(f"uv pip: {name} needs a value")
    return option, args[index + 1], index + 2


def _expand_short_flags(args: Sequence[str]) -> list[str]:
    """``-qU`` -> ``-q -U`` (value-less short flags only)."""
    out: list[str] = []
    for arg in args:
        if (
            len(arg) > 2
            and arg[0] == "-"
            and arg[1] != "-"
            and all(_SHORT.get("-" + c) is not None for c in arg[1:])
            and all(_SHORT["-" + c].kind == FLAG for c in arg[1:])
        ):
            out.extend("-" + c for c in arg[1:])
        else:
            out.append(arg)
    return out


def _python_on_path(environ: Mapping[str, str]) -> str | None:
    import shutil

    for name in ("python3", "python"):
        found = shutil.which(name, path=environ.get("PATH", ""))
        if found:
            return found
    return None


def _set(settings: dict[str, Setting], option: UvOption, value: str | None, source: str) -> None:
    """What one option typed on the command line sets (over ``UV_*`` variables)."""
    if not option.dest:
        return
    if value is None:
        settings[option.dest] = Setting(option.value, source)
    elif option.dest in _REPEATED:
        old = settings.get(option.dest)
        earlier = old.value if old is not None and not old.source.startswith("UV_") else ()
        assert isinstance(earlier, tuple)
        settings[option.dest] = Setting((*earlier, value), source)
    else:
        settings[option.dest] = Setting(value, source)


def _system_python(settings: dict[str, Setting], environ: Mapping[str, str]) -> None:
    """--system: uv installs into the first python on PATH, whatever env the shim is in."""
    system = settings.pop("uv_system", None)
    if system is not None and system.value and "python" not in settings:
        found = _python_on_path(environ)
        if found:
            settings["python"] = Setting(found, f"{system.source} (python on PATH)")


def parse_uv_pip(argv: Sequence[str], environ: Mapping[str, str]) -> UvCommand:
    """``argv`` after ``uv pip``: the command and its options.  Raises ``UsageError``."""
    if not argv or argv[0] not in MUTATING:
        raise UsageError("uv pip: expected install, uninstall or sync")
    command, args = argv[0], _expand_short_flags(argv[1:])
    settings = _settings_from_environ(environ)
    groups: list[tuple[str, str, tuple[str, ...]]] = []
    positional: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            positional.extend(args[index + 1 :])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            index += 1
            continue
        option, value, after = _split(arg, args, index)
        typed = tuple(args[index:after])
        index = after
        long_name = next((n for n in option.names if n.startswith("--")), option.names[0])
        groups.append((option.role, long_name, typed))
        _set(settings, option, value, " ".join(typed))
    if command == "sync":
        # the files to sync are requirement files; sync installs exactly them
        settings["requirements"] = Setting(tuple(positional), "uv pip sync")
    _system_python(settings, environ)
    op = Operation(
        command="install" if command == "sync" else command,
        argv=("pip", *argv),
        args=() if command == "sync" else tuple(positional),
        settings=settings,
        general_argv=("pip",),
        command_argv=tuple(argv),
        program="uv",
    )
    return UvCommand(command, op, tuple(positional), tuple(groups))


__all__ = ["MUTATING", "OPTIONS", "VARIABLES", "UvCommand", "parse_uv_pip"]


# --- pip's command line, run by uv (`--installer uv`) ----------------------------------

#: pip settings with no effect on what uv installs or where (left out)
_IGNORED = frozenset(
    {
        "python",
        "isolated_mode",
        "disable_pip_version_check",
        "no_color",
        "progress_bar",
        "root_user_action",
        "timeout",
        "retries",
        "no_input",
        "exists_action",
        "compile",
        "warn_script_location",
        "warn_about_conflicts",
        "no_clean",
        "yes",
        "upgrade_strategy",
        "version",
        "no_python_version_warning",
        "resume_retries",
        "require_venv",
    }
)


def uv_args_for(op: Operation) -> list[str]:
    """The ``uv pip`` arguments for a pip ``Operation`` (settings from argv, ``PIP_*``
    and pip's config files alike); raises ``UsageError`` for a setting uv cannot honour."""
    command = op.command or ""
    args: list[str] = [command]
    for dest, setting in op.settings.items():
        value = setting.value
        words = _uv_words(dest, value)
        if words is None:
            if dest in _IGNORED or (dest == "use_user_site" and value is False):
                continue
            raise UsageError(
                f"uv cannot do what pip's {setting.source} does, so this command cannot run "
                "with uv",
                hint="run it with pip: leave out --installer uv",
            )
        args.extend(words)
    if op.args:
        args.extend(["--", *op.args])
    return args


#: pip settings given to uv once per value, as ``option value``
_REPEATED_WORDS = {
    "requirements": "-r",
    "constraints": "-c",
    "editables": "-e",
    "extra_index_urls": "--extra-index-url",
    "find_links": "--find-links",
    "trusted_hosts": "--allow-insecure-host",
    "index_url": "--index-url",
    "target_dir": "--target",
    "prefix_path": "--prefix",
    "cert": "--cert",
    "keyring_provider": "--keyring-provider",
}
#: pip flags (true) that are a uv flag
_FLAG_WORDS = {
    "no_index": "--no-index",
    "ignore_dependencies": "--no-deps",
    "upgrade": "--upgrade",
    "force_reinstall": "--reinstall",
    "override_externally_managed": "--break-system-packages",
    "dry_run": "--dry-run",
    "require_hashes": "--require-hashes",
}


def _uv_words(dest: str, value: object) -> list[str] | None:
    """uv's options for one pip setting; None when there is no counterpart."""
    values = value if isinstance(value, tuple) else (value,)
    if dest in _REPEATED_WORDS:
        return [word for v in values for word in (_REPEATED_WORDS[dest], str(v))]
    if dest in _FLAG_WORDS:
        return [_FLAG_WORDS[dest]] if value else []
    special: dict[str, list[str]] = {
        "build_isolation": [] if value else ["--no-build-isolation"],
        "pre": ["--prerelease", "allow"] if value else [],
        "quiet": ["-q"] * (value if isinstance(value, int) else 0),
        "verbose": ["-v"] * (value if isinstance(value, int) else 0),
        "cache_dir": ["--no-cache"] if value is False else ["--cache-dir", str(value)],
    }
    if dest in special:
        return special[dest]
    if dest in ("config_settings", "format_control"):
        out: list[str] = []
        for item in values:
            option, _, rest = str(item).partition("=")
            out.extend([{"--config-settings": "-C"}.get(option, option), rest])
        return out
    return None
