"""The env's own config files that ``protect`` adds a block to, and ``unprotect`` takes back.

* ``<prefix>/pip.conf``: pip reads it as the site config of the env's
  interpreter.  ``user = false`` under ``[install]`` stops bare pip (``python
  -m pip install --break-system-packages``) from falling back to ``~/.local``
  when the env is not writable: it fails with "Permission denied" instead.
* ``<prefix>/etc/ipython/ipython_config.py`` and ``ipython_kernel_config.py``:
  IPython reads ``<sys.prefix>/etc/ipython`` for that interpreter (the kernel
  reads both files, the terminal the first).  The block loads the
  ``safe_pip.ipython`` extension, so that ``%pip`` in that env goes through
  safe-pip.  A user's own profile can undo it: a convenience, not a boundary.

Each addition sits between two comment lines, so that it can be found and
removed again while the admin's own content stays as it is.  The text work
here is pure; ``marker.protect``/``unprotect`` do the file I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

BEGIN = "# >>> safe-pip protect"
END = "# <<< safe-pip protect"
#: an admin's own ``user =`` line in ``[install]``, set aside while protected
SET_ASIDE = "# safe-pip protect set aside: "

PIP_CONF = "pip.conf"
IPYTHON_DIR = os.path.join("etc", "ipython")
IPYTHON_FILES = ("ipython_config.py", "ipython_kernel_config.py")

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_USER_KEY = re.compile(r"^\s*user\s*[=:]", re.IGNORECASE)


def has_block(text: str) -> bool:
    return any(line.startswith(BEGIN) for line in text.splitlines())


def _newline_terminated(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


def with_pip_conf_block(text: str) -> str:
    """``text`` (a pip.conf) with ``user = false`` in its ``[install]`` section.

    pip reads the file with a strict parser: a second ``[install]`` section or a
    second ``user`` key would be an error, so the line goes into the existing
    section and an existing ``user`` line is set aside (commented out).
    """
    block = [
        f"{BEGIN}: no fallback to ~/.local (`safe-pip unprotect` removes this)",
        "user = false",
        END,
    ]
    lines = _newline_terminated(text).splitlines(keepends=True)
    section = None
    header_at = None
    out: list[str] = []
    for line in lines:
        match = _SECTION.match(line)
        if match:
            section = match.group(1).strip()  # pip matches section names exactly
            out.append(line)
            if section == "install" and header_at is None:
                header_at = len(out)
            continue
        if section == "install" and _USER_KEY.match(line):
            out.append(SET_ASIDE + line)
            continue
        out.append(line)
    if header_at is None:
        return "".join(out) + "\n".join([block[0], "[install]", *block[1:]]) + "\n"
    out[header_at:header_at] = [f"{line}\n" for line in block]
    return "".join(out)


def ipython_block(command: Sequence[str], package_dir: str) -> str:
    """Config code that loads ``safe_pip.ipython`` from ``package_dir`` and tells it
    to run safe-pip as ``command`` (plus pip's arguments)."""
    init = os.path.join(package_dir, "__init__.py")
    return "\n".join(
        [
            f"{BEGIN}: %pip in this env goes through safe-pip (`safe-pip unprotect` removes this)",
            "def _safe_pip_door(config):",
            "    import importlib.util",
            "    import sys",
            "",
            '    if "safe_pip" not in sys.modules:',
            "        spec = importlib.util.spec_from_file_location(",
            f'            "safe_pip", {init!r}, submodule_search_locations=[{package_dir!r}]',
            "        )",
            "        if spec is None or spec.loader is None:",
            "            return",
            "        module = importlib.util.module_from_spec(spec)",
            '        sys.modules["safe_pip"] = module',
            "        spec.loader.exec_module(module)",
            f"    config.SafePip.command = {list(command)!r}",
            '    config.InteractiveShellApp.extensions.append("safe_pip.ipython")',
            "",
            "",
            "try:",
            "    _safe_pip_door(get_config())  # noqa: F821 (IPython's config namespace)",
            "except Exception as _error:  # never stop IPython from starting",
            '    print(f"safe-pip: %pip is not guarded here: {_error}")',
            "del _safe_pip_door",
            END,
            "",
        ]
    )


def with_ipython_block(text: str, block: str) -> str:
    """``text`` (an IPython config file) with ``block`` appended."""
    if not text:
        return block
    return _newline_terminated(text) + "\n" + block


def without_blocks(text: str) -> str:
    """``text`` less every block protect added, with set-aside lines restored."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if line.startswith(BEGIN):
            inside = True
            if out and out[-1].strip() == "" and not line.startswith(f"{BEGIN}: no fallback"):
                out.pop()  # the blank line with_ipython_block put before the block
            continue
        if inside:
            if line.startswith(END):
                inside = False
            continue
        if line.startswith(SET_ASIDE):
            out.append(line[len(SET_ASIDE) :])
            continue
        out.append(line)
    return "".join(out)
