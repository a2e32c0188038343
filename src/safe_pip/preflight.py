"""One pip run, checked between resolution and installation.

For an allowed install, safe-pip runs the real pip of the target interpreter
through a small bootstrap instead of ``-m pip``.  The bootstrap wraps the
``install_given_reqs`` that pip's install command calls once it has resolved,
downloaded and built everything: the wrapper writes pip's own installation
report (``InstallationReport``, the format of ``--report``) of exactly the
requirements it was handed to a file, asks safe-pip over a pipe, and installs
them only on "go".  What pip installs is therefore exactly what was checked:
there is no second resolution.  The user's arguments reach pip untouched, so
``--report``, ``--report -``, ``--dry-run`` (which never gets to the install
step), output and exit codes are pip's own.

The hook point is the same from pip 22.2 (the first with ``--report``) to
today: ``pip._internal.commands.install`` imports ``install_given_reqs`` and
calls it once with the requirements in installation order, after the report
and ``--dry-run`` have been handled.  A pip whose internals moved makes the
bootstrap say so before doing anything, and safe-pip fails closed.

Each install item also carries ``safe_pip_files``: the members of the wheel pip
is about to install (after building, every requirement is a wheel, editable
ones included) and the console scripts it will generate, so the check can look
at the files each planned wheel will write, not only at names.

Uninstall, likewise: pip's uninstall command reads the names, ``-r`` files
(nested, ``${VAR}``, continuations), ``PIP_REQUIREMENT``, wheel paths and URLs
with its own code into ``reqs_to_uninstall``, then calls
``protect_pip_from_modification_on_windows`` once, before removing anything
(pip 22.2 to today).  The bootstrap wraps that call: it reports, for every
distribution pip resolved, its name, version, location and the files pip's
``UninstallPathSet`` would remove, and lets pip go on only on "go".
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from safe_pip.changes import read_report
from safe_pip.errors import TargetError
from safe_pip.passthrough import pip_environ
from safe_pip.runner import PipRun, start_child, wait_for
from safe_pip.values import frozen

FDS_VAR = "SAFE_PIP_PREFLIGHT_FDS"
REPORT_VAR = "SAFE_PIP_PREFLIGHT_REPORT"
COMMAND_VAR = "SAFE_PIP_PREFLIGHT_COMMAND"

#: What the child says on the pipe.
ASK = b"check"
NO_HOOK = b"nohook"

BOOTSTRAP = r"""
import sys
# never import from the working directory (``-c`` puts it first on sys.path)
if sys.path and sys.path[0] == "":
    del sys.path[0]
import os, sysconfig, warnings
# pip's install scheme from sysconfig on every Python: on Python < 3.10 pip would use
# distutils, which reads ~/.pydistutils.cfg and ./setup.cfg (see buildconfig.py)
sysconfig._PIP_USE_SYSCONFIG = True

def _safe_pip_bootstrap():
    answer_fd, ask_fd = (int(x) for x in os.environ.pop("SAFE_PIP_PREFLIGHT_FDS").split(","))
    report_path = os.environ.pop("SAFE_PIP_PREFLIGHT_REPORT")
    command = os.environ.pop("SAFE_PIP_PREFLIGHT_COMMAND", "install")
    os.set_inheritable(answer_fd, False)
    os.set_inheritable(ask_fd, False)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=".*packaging\\.version")
    try:
        import pip
    except ImportError:
        os.close(ask_fd)
        sys.stderr.write("%s: No module named pip\n" % sys.executable)
        return 1
    import json
    try:
        from pip._internal.exceptions import InstallationError
        if command == "uninstall":
            from pip._internal.commands import uninstall as hooked
            from pip._internal.metadata import get_default_environment
            from pip._internal.req.req_uninstall import UninstallPathSet
            original = hooked.protect_pip_from_modification_on_windows
        else:
            from pip._internal.commands import install as hooked
            original = hooked.install_given_reqs
            report_class = hooked.InstallationReport
    except (ImportError, AttributeError):
        os.write(ask_fd, b"nohook\n")
        os.close(ask_fd)
        return 2

    def ask(report):
        try:
            with open(report_path, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2, ensure_ascii=False)
        except Exception as error:  # the check then sees no report and decides
            sys.stderr.write("safe-pip: could not write the plan: %r\n" % error)
        os.write(ask_fd, b"check\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = os.read(answer_fd, 64)
            if not chunk:
                break
            reply += chunk
        if reply.strip() != b"go":
            raise InstallationError("safe-pip refused this operation; nothing was changed")

    def wheel_files(ireq):
        # what the planned wheel will write: its members, and the scripts pip makes
        import configparser, zipfile
        path = getattr(ireq, "local_file_path", None) or ""
        if not path.endswith(".whl"):
            return None
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if not n.endswith("/")]
            scripts = []
            for name in names:
                top, _, rest = name.partition("/")
                if top.endswith(".dist-info") and rest == "entry_points.txt":
                    parser = configparser.RawConfigParser(delimiters=("=",))
                    parser.optionxform = str
                    parser.read_string(wheel.read(name).decode("utf-8", "replace"))
                    for section in ("console_scripts", "gui_scripts"):
                        if parser.has_section(section):
                            scripts.extend(k.strip() for k in parser.options(section))
        return {"wheel": names, "scripts": scripts}

    def one_item(ireq):
        # pip's own report item; where pip cannot make one, name and version suffice
        try:
            return report_class([ireq]).to_dict()["install"][0], True
        except Exception:
            pass
        try:
            metadata = ireq.metadata
            name, version = metadata.get("Name"), metadata.get("Version")
        except Exception:
            name, version = getattr(ireq, "name", None), None
        item = {"metadata": {"name": name, "version": version or ""},
                "requested": bool(getattr(ireq, "user_supplied", False))}
        return item, bool(name)

    def checked_install(*args, **kwargs):
        requirements = list(args[0] if args else kwargs.get("requirements") or [])
        try:
            report = report_class(requirements).to_dict()
        except Exception:
            report = {"version": "1", "install": [], "safe_pip_complete": True}
            for ireq in requirements:
                item, complete = one_item(ireq)
                report["install"].append(item)
                report["safe_pip_complete"] = report["safe_pip_complete"] and complete
        for item, ireq in zip(report.get("install", []), requirements):
            try:
                item["safe_pip_files"] = wheel_files(ireq)
            except Exception as error:
                item["safe_pip_files"] = None
                item["safe_pip_files_error"] = repr(error)
        ask(report)
        return original(*args, **kwargs)

    def checked_uninstall(*args, **kwargs):
        # called once, after pip has read every name, -r file and URL, before any removal
        reqs = sys._getframe(1).f_locals.get("reqs_to_uninstall")
        report = {"version": "1", "uninstall": [], "safe_pip_complete": isinstance(reqs, dict)}
        environment = get_default_environment()
        for key, ireq in (reqs or {}).items():
            name = ireq.req.name if getattr(ireq, "req", None) is not None else key
            dist = environment.get_distribution(name)
            if dist is None:
                continue
            item = {"name": dist.raw_name, "version": str(dist.version),
                    "path": getattr(dist, "info_location", None) or dist.location, "files": None}
            try:
                item["files"] = sorted(UninstallPathSet.from_dist(dist)._paths)
            except Exception as error:
                item["files_error"] = repr(error)
            report["uninstall"].append(item)
        ask(report)
        return original(*args, **kwargs)

    if command == "uninstall":
        hooked.protect_pip_from_modification_on_windows = checked_uninstall
    else:
        hooked.install_given_reqs = checked_install
    import runpy
    runpy.run_module("pip", run_name="__main__", alter_sys=True)
    return 0

sys.exit(_safe_pip_bootstrap())
"""


@frozen
class CheckedRun:
    run: PipRun
    #: the report of what pip was about to install (None if it never got there)
    report: dict[str, Any] | None
    #: the verdict the check gave, None if pip never asked
    verdict: object
    #: True when pip got to the install step and asked
    asked: bool = False
    hook_missing: bool = False


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data.strip()


def checked_command(python: str, pip_args: Sequence[str]) -> list[str]:
    """The argv that runs pip with the bootstrap (in place of ``python -m pip``)."""
    return [python, "-c", BOOTSTRAP, *pip_args]


def run_checked(
    python: str,
    pip_args: Sequence[str],
    report_path: str,
    environ: Mapping[str, str],
    check: Callable[[dict[str, Any] | None], tuple[bool, object]],
    command: str = "install",
) -> CheckedRun:
    """Run ``pip install`` (or ``uninstall``) with the bootstrap; ``check(report)``
    returns (go, verdict).

    ``report_path`` is where the bootstrap writes what pip is about to install
    (a scratch file of safe-pip's, not the user's ``--report``).
    """
    ask_read, ask_write = os.pipe()
    answer_read, answer_write = os.pipe()
    env = pip_environ(environ)
    env[FDS_VAR] = f"{answer_read},{ask_write}"
    env[REPORT_VAR] = report_path
    env[COMMAND_VAR] = command
    started = time.monotonic()
    try:
        child = start_child(
            checked_command(python, pip_args),
            env=env,
            pass_fds=(answer_read, ask_write),
        )
    except OSError as error:
        for fd in (ask_read, ask_write, answer_read, answer_write):
            os.close(fd)
        raise TargetError(f"cannot run {python}: {error.strerror}") from error
    os.close(ask_write)
    os.close(answer_read)
    report = None
    verdict: object = None
    asked = False
    hook_missing = False
    interrupted = False
    try:
        request = _read_line(ask_read)
        if request == ASK:
            asked = True
            report = read_report(report_path)
            go, verdict = check(report)
            with contextlib.suppress(BrokenPipeError):
                os.write(answer_write, b"go\n" if go else b"stop\n")
        elif request == NO_HOOK:
            hook_missing = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        os.close(ask_read)
        os.close(answer_write)
    code, interrupted = wait_for(child, interrupted)
    return CheckedRun(
        run=PipRun(code, time.monotonic() - started, interrupted),
        report=report,
        verdict=verdict,
        asked=asked,
        hook_missing=hook_missing,
    )
