"""pip's configuration files and ``PIP_*`` variables, read the way pip reads them.

pip builds the defaults of every option parser from two sources (pip's
``configuration.py`` and ``ConfigOptionParser`` in ``cli/parser.py``):

Files, in pip's override order (later wins):

1. global: ``<d>/pip/pip.conf`` for each ``d`` in ``$XDG_CONFIG_DIRS`` (split on
   ``:``, blank entries dropped; ``/etc/xdg`` when unset or blank), then
   ``/etc/pip.conf``;
2. user: ``~/.pip/pip.conf`` (legacy), then ``$XDG_CONFIG_HOME/pip/pip.conf``
   (``~/.config/pip/pip.conf`` when unset or blank).  Skipped entirely when
   ``PIP_CONFIG_FILE`` names an existing file, and skipped by an isolated
   parser (see below);
3. site: ``<sys.prefix>/pip.conf`` of the interpreter that runs pip.  After a
   ``--python`` re-exec that is the *target* interpreter, hence ``site_prefix``;
4. env: the file named by ``PIP_CONFIG_FILE``.  ``PIP_CONFIG_FILE=/dev/null``
   (exactly ``os.devnull``) disables *all* configuration files; the
   ``PIP_*`` variables still apply.  A name that does not exist is ignored.

When one path appears twice (``PIP_CONFIG_FILE=/etc/pip.conf``) it keeps the
position of its first appearance, because pip keys the loaded files by name.

Sections: a parser for command ``C`` reads ``[global]``, then ``[C]``, then the
``:env:`` layer, each later one overriding the earlier.  Within a section the
last file wins, and an empty value (``user =``) *removes* the key, so pip's
default applies again (pip >= 26.0 and pip < 25.2; pip 25.2 and 25.3 ignore the
empty value and keep the earlier file's).  ``[DEFAULT]`` keys show up in every
section a file has, as ``configparser`` does it.  Section names are
case-sensitive; keys are lower-cased, ``_`` becomes ``-`` and one leading
``--`` is dropped, so ``no_user``, ``NO-USER`` and ``--no-user`` are one key.

The ``:env:`` layer: every variable whose name starts with ``PIP_``
(case-sensitive) gives key ``name[4:]``, lower-cased and then normalised as
above; ``PIP_VERSION`` and ``PIP_HELP`` are skipped (but ``PIP___VERSION`` is
not, as in pip).  An isolated parser skips this layer and the user files.

Isolation, as verified with pip 23.2.1 and 26.3: pip's *main* parser (the one
that finds the command and ``--python``) is never isolated.  The command's
parser is isolated only when the literal string ``--isolated`` is one of the
arguments after the command name is taken out, wherever it stands (even after
``--`` or as another option's value).  ``--isol`` (a prefix), ``PIP_ISOLATED=1``
and ``isolated = true`` set the option but do *not* skip anything.

Malformed files: pip loads every file before it parses anything, for every
command, in the main parser that is never isolated, and stops with exit status
2 on a file ``configparser.RawConfigParser`` rejects (no section header, a
duplicate section or key, a line that is neither key nor continuation) or that
does not decode in the locale's encoding.  So does ``load_pip_config``: it
raises ``InputError`` with the path and line (and key or section where there is
one), even for a user file that ``--isolated`` would skip later.  A file that
exists but cannot be opened (a directory, no permission) is read as empty, as
``configparser`` does.  Which syntax ``configparser`` accepts depends a little
on the Python version; this module uses the one it runs on.

Only POSIX paths are modelled (``pip.conf``; not macOS' ``Application Support``
nor Windows' ``pip.ini``).
"""

from __future__ import annotations

import os

from safe_pip.errors import InputError
from safe_pip.readfile import FileTooLarge, NotRegularFile, read_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

CONFIG_BASENAME = "pip.conf"
#: The largest configuration file read; pip's options fit in a few KiB.
MAX_CONFIG_BYTES = 1 << 20

#: pip's names for where a file comes from, in pip's override order.
GLOBAL = "global"
USER = "user"
SITE = "site"
ENV = "env"

#: The section name pip gives the ``PIP_*`` variables.
ENV_SECTION = ":env:"

#: ``PIP_<NAME>`` variables pip never reads as options (compared before normalising).
_ENV_NAMES_IGNORED = ("version", "help")

_TRUE_WORDS = frozenset({"y", "yes", "t", "true", "on", "1"})
_FALSE_WORDS = frozenset({"n", "no", "f", "false", "off", "0"})


def strtobool(text: str) -> int:
    """pip's reading of a boolean word: 1 or 0, or ``ValueError``."""
    word = text.lower()
    if word in _TRUE_WORDS:
        return 1
    if word in _FALSE_WORDS:
        return 0
    raise ValueError(f"invalid truth value {text!r}")


def normalize_key(name: str) -> str:
    """A key as pip compares it: lower case, ``-`` for ``_``, one leading ``--`` dropped."""
    name = name.lower().replace("_", "-")
    return name[2:] if name.startswith("--") else name


class _Record:
    """A small read-only value type (plain classes: a dataclass costs ~1 ms to create)."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class ConfigValue(_Record):
    """One raw value from a configuration file or a ``PIP_*`` variable.

    ``source`` reads ``"/etc/pip.conf [install] user"`` or ``"PIP_USER=1"``;
    ``path`` is ``""`` for a variable; ``name`` is the key as written (a
    file's key lower-cased by configparser, or the variable's name).
    """

    __slots__ = ("line", "name", "path", "source", "value")

    def __init__(
        self, value: str, source: str, path: str = "", line: int | None = None, name: str = ""
    ) -> None:
        self.value = value
        self.source = source
        self.path = path
        self.line = line
        self.name = name


class ConfigFile(_Record):
    """A configuration file that exists and parsed: section -> normalised key -> value."""

    __slots__ = ("kind", "path", "sections")

    def __init__(
        self, path: str, kind: str, sections: Mapping[str, Mapping[str, ConfigValue]]
    ) -> None:
        self.path = path
        self.kind = kind
        self.sections = sections


class PipConfig(_Record):
    """The configuration files pip would load, in pip's override order.

    ``files`` holds only files that exist; user files are kept (marked
    ``kind == USER``) so a parser can drop them when it is isolated.  The
    ``PIP_*`` variables are not stored here: ``option_values`` takes them from
    the environment it is given.  ``disabled``: ``PIP_CONFIG_FILE`` was
    ``os.devnull`` and no file was loaded.  ``searched``: every (kind, path)
    pip would have tried, existing or not, for diagnostics.
    """

    __slots__ = ("disabled", "files", "searched")

    def __init__(
        self,
        files: tuple[ConfigFile, ...] = (),
        disabled: bool = False,
        searched: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.files = files
        self.disabled = disabled
        self.searched = searched

    def files_for(self, *, isolated: bool) -> Iterator[ConfigFile]:
        """The files a parser reads, deduplicated by path as pip does."""
        by_path: dict[str, ConfigFile] = {}
        for config_file in self.files:
            if isolated and config_file.kind == USER:
                continue
            by_path[config_file.path] = config_file
        return iter(by_path.values())


def environment_values(environ: Mapping[str, str]) -> dict[str, ConfigValue]:
    """The ``:env:`` layer: normalised key -> value, later variables winning."""
    values: dict[str, ConfigValue] = {}
    for variable, value in environ.items():
        if not variable.startswith("PIP_"):
            continue
        name = variable[4:].lower()
        if name in _ENV_NAMES_IGNORED:
            continue
        values[normalize_key(name)] = ConfigValue(value, f"{variable}={value}", name=variable)
    return values


def option_values(
    config: PipConfig | None,
    environ: Mapping[str, str],
    section: str,
    *,
    isolated: bool,
) -> list[tuple[str, ConfigValue]]:
    """The (key, value) pairs pip applies to the parser named ``section``, in order.

    ``section`` is ``"global"`` for pip's main parser and the command name for
    a command's parser.  Empty values are already dropped.
    """
    order = [GLOBAL] if section == GLOBAL else [GLOBAL, section]
    order.append(ENV_SECTION)
    pools: dict[str, dict[str, ConfigValue]] = {name: {} for name in order}
    if config is not None:
        for config_file in config.files_for(isolated=isolated):
            for name, values in config_file.sections.items():
                pool = pools.get(name)
                if pool is not None:
                    pool.update(values)
    if not isolated:
        pools[ENV_SECTION].update(environment_values(environ))
    return [(key, value) for name in order for key, value in pools[name].items() if value.value]


def config_file_paths(
    environ: Mapping[str, str],
    *,
    site_prefix: str | None,
    home: str | None = None,
    etc_dir: str = "/etc",
) -> list[tuple[str, str]]:
    """(kind, path) for every file pip would try, in pip's order, before existence checks.

    The user files are listed even when ``PIP_CONFIG_FILE`` suppresses them;
    ``load_pip_config`` applies that rule.  ``etc_dir`` exists for tests.
    """
    home_dir = _home_directory(environ) if home is None else home
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "").strip()
    global_dirs = [d for d in xdg_dirs.split(os.pathsep) if d.strip()]
    if not global_dirs:
        global_dirs = [os.path.join(etc_dir, "xdg")]
    paths = [(GLOBAL, os.path.join(d, "pip", CONFIG_BASENAME)) for d in global_dirs]
    paths.append((GLOBAL, os.path.join(etc_dir, CONFIG_BASENAME)))

    paths.append((USER, os.path.join(home_dir, ".pip", CONFIG_BASENAME)))
    xdg_home = environ.get("XDG_CONFIG_HOME", "").strip()
    user_dir = xdg_home or os.path.join(home_dir, ".config")
    paths.append((USER, os.path.join(user_dir, "pip", CONFIG_BASENAME)))

    if site_prefix is not None:
        paths.append((SITE, os.path.join(site_prefix, CONFIG_BASENAME)))
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file is not None:
        paths.append((ENV, env_file))
    return paths


def load_pip_config(
    environ: Mapping[str, str],
    *,
    site_prefix: str | None,
    home: str | None = None,
    etc_dir: str = "/etc",
) -> PipConfig:
    """Read pip's configuration files as pip would for an interpreter with ``site_prefix``.

    ``home`` defaults to ``$HOME`` from ``environ`` (then the password
    database), which is what ``~`` means to pip.  ``etc_dir`` replaces
    ``/etc`` (and ``/etc/xdg``), for tests.  Raises ``InputError`` for a file
    pip would refuse to load.
    """
    env_file = environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return PipConfig(disabled=True)
    skip_user = bool(env_file) and os.path.exists(env_file or "")
    searched = tuple(
        config_file_paths(environ, site_prefix=site_prefix, home=home, etc_dir=etc_dir)
    )
    files = []
    for kind, path in searched:
        if kind == USER and skip_user:
            continue
        config_file = read_config_file(path, kind)
        if config_file is not None:
            files.append(config_file)
    return PipConfig(files=tuple(files), searched=searched)


def read_config_file(path: str, kind: str) -> ConfigFile | None:
    """Parse one file as pip does; ``None`` if it does not exist."""
    if not path or not os.path.exists(path):
        return None
    text = _read_text(path)
    if text is None:
        return None
    return parse_config_text(text, path, kind)


def parse_config_text(text: str, path: str, kind: str) -> ConfigFile:
    """Parse configuration text as pip's parser (``RawConfigParser``) does."""
    parsed = plain_sections(text)
    if parsed is None:
        parsed = _configparser_sections(text, path)
    sections: dict[str, dict[str, ConfigValue]] = {}
    lines: dict[tuple[str, str], int] | None = None
    for section, items in parsed.items():
        values = sections.setdefault(section, {})
        for name, value in items.items():
            if lines is None:
                lines = _key_lines(text)
            line = lines.get((section, name)) or lines.get(("DEFAULT", name))
            values[normalize_key(name)] = ConfigValue(
                value, f"{path} [{section}] {name}", path=path, line=line, name=name
            )
    return ConfigFile(path=path, kind=kind, sections=sections)


def plain_sections(text: str) -> dict[str, dict[str, str]] | None:
    """The sections of a configuration written the plain way, read as ``RawConfigParser``
    reads them: {section: {lower-cased key: value}}, in the file's order; None for any
    other text, which ``configparser`` then reads (``configparser`` costs a few
    milliseconds to load, before a guarded install can start its installer).

    Plain: printable ASCII and tabs; every line blank, a comment (``#`` or ``;`` after
    white space), a ``[name]`` header (no brackets in the name, not ``DEFAULT``) or
    ``key = value`` / ``key: value`` starting in column 0 after a header; no key twice in
    a section, no section twice.  In such a file configparser sees no continuation lines,
    no defaults and no errors, so the two readings agree (a property test checks it).
    """
    if not text.isascii():
        return None
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.split("\n"):
        if not line.replace("\t", " ").isprintable():
            return None
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0] in " \t":
            return None  # a continuation line (or an indented key): configparser's way
        if stripped[0] == "[":
            name = stripped[1:-1]
            if stripped[-1] != "]" or not name or "[" in name or "]" in name:
                return None
            if name in sections or name == "DEFAULT":
                return None
            current = sections[name] = {}
            continue
        cut = min((i for i in (stripped.find("="), stripped.find(":")) if i >= 0), default=-1)
        key = stripped[:cut].rstrip().lower()
        if current is None or cut < 0 or not key or key in current:
            return None
        current[key] = stripped[cut + 1 :].strip()
    return sections


def _configparser_sections(text: str, path: str) -> dict[str, dict[str, str]]:
    """``text`` read by ``RawConfigParser`` (what ``plain_sections`` does not read)."""
    import configparser
    import re

    class _Parser(configparser.RawConfigParser):
        # configparser's OPTCRE, ``(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$``,
        # backtracks over the white space before the delimiter (a line of 40,000 spaces
        # took 11 s); this one captures the same groups in linear time
        OPTCRE = re.compile(r"(?P<option>[^=:]*[^=:\s]|)\s*(?P<vi>[=:])\s*(?P<value>.*)$")

    parser = _Parser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as error:
        raise _config_error(error, path) from None
    return {section: dict(parser.items(section)) for section in parser.sections()}


def _read_text(path: str) -> str | None:
    try:
        raw = read_bytes(path, limit=MAX_CONFIG_BYTES)
    except (NotRegularFile, FileTooLarge) as error:
        # pip would block on a FIFO or device, and read a huge file very slowly
        raise InputError(
            f"safe-pip does not read this configuration file: {error.strerror}",
            path=path,
            hint="pip.conf must be a regular file of a few KiB; fix or remove it",
        ) from None
    except OSError:
        # configparser skips files it cannot open, and so does pip
        return None
    if raw.isascii():
        # the same text in every locale encoding (all are ASCII-compatible here); the
        # locale module is loaded only for the others
        return raw.decode("ascii").replace("\r\n", "\n").replace("\r", "\n")
    import locale

    encoding = locale.getpreferredencoding(False)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(
            f"pip cannot read this configuration file: it is not valid {encoding}",
            path=path,
            line=raw.count(b"\n", 0, error.start) + 1,
        ) from None
    except LookupError:
        return None
    # universal newlines, as open() in text mode reads it for configparser
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _config_error(error: Exception, path: str) -> InputError:
    """An ``InputError`` for what ``configparser`` rejected, with line and key."""
    import configparser

    hint = "pip refuses to run with this file; fix or remove it"
    if isinstance(error, configparser.MissingSectionHeaderError):
        return InputError(
            "a key appears before any [section] header", path=path, line=error.lineno, hint=hint
        )
    if isinstance(error, configparser.DuplicateOptionError):
        return InputError(
            f"key repeated in section [{error.section}]",
            path=path,
            line=error.lineno,
            key=error.option,
            hint=hint,
        )
    if isinstance(error, configparser.DuplicateSectionError):
        return InputError(
            f"section [{error.section}] appears twice", path=path, line=error.lineno, hint=hint
        )
    if isinstance(error, configparser.ParsingError):
        errors: Iterable[tuple[int, str]] = getattr(error, "errors", ())
        first = next(iter(errors), None)
        return InputError(
            "a line is neither a [section], a key = value, nor a continuation",
            path=path,
            line=first[0] if first else None,
            hint=hint,
        )
    return InputError(f"cannot be parsed: {error}", path=path, hint=hint)


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """Best-effort line numbers of (section, lower-cased key), for messages only."""
    lines: dict[tuple[str, str], int] = {}
    section = ""
    after_key = False  # an indented line right after a key continues its value
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if line[0].isspace() and after_key:
            continue
        if stripped.startswith("[") and "]" in stripped:
            section = stripped[1 : stripped.index("]")]
            after_key = False
            continue
        for separator in "=:":
            stripped = stripped.split(separator, 1)[0]
        lines.setdefault((section, stripped.strip().lower()), number)
        after_key = True
    return lines


def _home_directory(environ: Mapping[str, str]) -> str:
    """What ``os.path.expanduser("~")`` gives pip when it runs with ``environ``."""
    if "HOME" in environ:
        home = environ["HOME"]
    else:
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            return os.path.expanduser("~")
    return home.rstrip("/") or "/"


def pinned_environ(
    environ: Mapping[str, str], config: PipConfig | None, command: str, *, isolated: bool
) -> dict[str, str]:
    """The environment that makes pip run with exactly the configuration already read.

    pip would read its config files again when it starts, after safe-pip decided:
    a file swapped in between (``PIP_CONFIG_FILE``, a user-writable pip.conf) would
    change what pip does.  So pip gets ``PIP_CONFIG_FILE=/dev/null`` (no file at
    all) and the values read from the files as ``PIP_*`` variables, below the
    user's own ``PIP_*`` variables, which win over files in pip too.  ``isolated``
    (a literal ``--isolated``, which the caller turns into ``--isolate``: the
    option stays set, but pip no longer skips variables): the user's own ``PIP_*``
    variables are dropped instead, and only the files an isolated parser reads
    are kept, as pip would have it.
    """
    env = dict(environ)
    if isolated:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    for key, item in option_values(config, {}, command, isolated=isolated):
        name = "PIP_" + key.upper().replace("-", "_")
        env.setdefault(name, item.value)
    env["PIP_CONFIG_FILE"] = os.devnull
    return env
