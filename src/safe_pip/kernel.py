"""Is safe-pip running inside a Jupyter kernel, and which interpreter runs it?

``!pip install x`` in a notebook runs the ``pip`` on the kernel's PATH, which
is often another env's (the server's base env) than the one the notebook
imports from.  Jupyter marks a kernel's environment (``JPY_PARENT_PID`` from
jupyter_client, ``JPY_SESSION_NAME`` from jupyter_server, ipykernel's inline
``MPLBACKEND``), and the command of
a ``!`` line is a child (through a shell) of the kernel process,
``<python> -m ipykernel_launcher -f ...``: safe-pip walks up its process
ancestry in ``/proc`` to that process and takes its interpreter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from safe_pip.readfile import read_head
from safe_pip.values import frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from safe_pip.environment import Environment

#: variables Jupyter sets for a kernel (and so for everything a cell starts)
KERNEL_VARS = ("JPY_PARENT_PID", "JPY_SESSION_NAME")
#: ipykernel sets this for its own process (and so for a cell's children), also
#: when it was started without jupyter_client's variables
INLINE_BACKEND = ("MPLBACKEND", "module://matplotlib_inline.backend_inline")
KERNEL_MODULES = ("ipykernel_launcher", "ipykernel")
#: how far up the ancestry to look (kernel -> shell -> shim -> safe-pip is 3)
MAX_DEPTH = 12


@frozen
class Kernel:
    pid: int
    #: the kernel's interpreter: its argv[0] when that is a path (a venv's
    #: bin/python stays a venv's), else what /proc/PID/exe points to
    python: str


def _read(path: str) -> bytes:
    try:
        return read_head(path, 65536)
    except OSError:
        return b""


def _cmdline(proc: str, pid: int) -> list[str]:
    raw = _read(os.path.join(proc, str(pid), "cmdline"))
    return [part.decode("utf-8", "surrogateescape") for part in raw.split(b"\0") if part]


def _parent(proc: str, pid: int) -> int:
    stat = _read(os.path.join(proc, str(pid), "stat"))
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return 0


def is_kernel_command(argv: Sequence[str]) -> bool:
    """``python -m ipykernel_launcher ...`` (or ``-m ipykernel``, or the launcher's path)."""
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, "") in KERNEL_MODULES
        if arg in ("-X", "-W"):
            next(args, "")  # the option's value
            continue
        if not arg.startswith("-"):
            return os.path.basename(arg) == "ipykernel_launcher.py"
    return False


def _interpreter(proc: str, pid: int, argv: Sequence[str]) -> str:
    if argv and os.path.isabs(argv[0]) and os.path.isfile(argv[0]):
        return argv[0]
    try:
        return os.readlink(os.path.join(proc, str(pid), "exe"))
    except OSError:
        return argv[0] if argv else ""


def find_kernel(
    environ: Mapping[str, str], *, proc: str = "/proc", start: int | None = None
) -> Kernel | None:
    """The Jupyter kernel this process runs under, or None (also off Linux)."""
    inline = environ.get(INLINE_BACKEND[0]) == INLINE_BACKEND[1]
    if not inline and not any(environ.get(name) for name in KERNEL_VARS):
        return None
    pid = os.getppid() if start is None else start
    for _ in range(MAX_DEPTH):
        if pid <= 1:
            return None
        argv = _cmdline(proc, pid)
        if is_kernel_command(argv):
            python = _interpreter(proc, pid, argv)
            return Kernel(pid, python) if python else None
        pid = _parent(proc, pid)
    return None


def kernel_environment(
    environ: Mapping[str, str], target: Environment | None = None
) -> Environment | None:
    """The env of the notebook kernel safe-pip runs under (``target`` when it is that)."""
    kernel = find_kernel(environ)
    if kernel is None:
        return None
    if target is not None and os.path.realpath(kernel.python) == os.path.realpath(target.python):
        return target
    from safe_pip.environment import inspect_environment
    from safe_pip.errors import SafePipError
    from safe_pip.target import Target

    try:
        return inspect_environment(Target(kernel.python, "the notebook's kernel"), environ)
    except SafePipError:
        return None


def notebook_environment(environ: Mapping[str, str], target: Environment) -> Environment | None:
    """The env of the notebook kernel safe-pip runs under, when it is not ``target``."""
    env = kernel_environment(environ, target)
    if env is None or os.path.realpath(env.prefix) == os.path.realpath(target.prefix):
        return None
    return env


def notebook_lines(notebook: Environment, target: Environment, magic_command: str) -> list[str]:
    """What a refusal or a warning adds when the notebook runs another env than pip's."""
    return [
        f"  notebook: this notebook runs {notebook.prefix} ({notebook.python}),",
        f"           but this pip acts on {target.prefix}, which the notebook does not import from",
        f"  in the notebook, for its own env: {magic_command}",
    ]
