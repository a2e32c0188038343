"""The command line that runs safe-pip's own code with a given interpreter, fast.

A pip shim and the ``%pip`` magic both start safe-pip as
``<python> -I -S -c "<put safe-pip's import paths first>; entrypoint()"``:
``-I`` keeps the user's variables, user site and working directory out,
``-S`` skips ``site`` (and the tool venv's ``.pth`` files), which is most of
an interpreter's start-up.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

#: the first line of every shim ``protect --shim`` writes
SHIM_TAG = "# safe-pip shim"

#: safe-pip and its runtime dependencies: what the launched interpreter must find
MODULES = ("safe_pip", "packaging", "filelock", "tomli")


def tool_import_paths() -> list[str]:
    """Where this safe-pip and its dependencies import from (for a start that skips site)."""
    import importlib.util
    import os

    paths: list[str] = []
    for module in MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            parent = os.path.dirname(os.path.abspath(location))
            if parent not in paths:
                paths.append(parent)
    return paths


def launcher_code(paths: Sequence[str], entry: str = "entrypoint") -> str:
    """Python code for ``-c``: safe-pip's paths first, then its console entry point
    (``uv_entrypoint``: the uv door).

    No braces and no ``$``: IPython expands both in a shell command line.
    """
    return (
        f"import sys; sys.path[:0] = {list(paths)!r}; from safe_pip.cli import {entry}; {entry}()"
    )


def tool_command(
    python: str, paths: Sequence[str] | None = None, entry: str = "entrypoint"
) -> list[str]:
    """argv that runs safe-pip with ``python`` (the paths default to this safe-pip's);
    ``entry="uv_entrypoint"`` runs the uv door (``uv ...`` arguments)."""
    found = tool_import_paths() if paths is None else list(paths)
    return [python, "-I", "-S", "-c", launcher_code(found, entry)]


def is_shim(path: str) -> bool:
    """True for a launcher ``protect --shim`` wrote (so not a real pip or uv)."""
    from safe_pip.readfile import read_head

    try:
        head = read_head(path, 200)
    except OSError:
        return False
    return SHIM_TAG.encode() in head
