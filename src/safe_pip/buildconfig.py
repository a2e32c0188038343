"""distutils/setuptools configuration that moves installed or built files.

Three places can redirect where pip or a build writes:

* pip's own install scheme on Python < 3.10 is computed with distutils, which
  reads ``~/.pydistutils.cfg`` and ``setup.cfg`` in the working directory
  (``[install] user = 1``, ``prefix = ...``, ``install_lib = ...``).  This is
  *neutralised*: safe-pip's bootstrap makes pip use ``sysconfig`` (which reads
  no config file) on every Python, as pip does by default from Python 3.10.
* ``DIST_EXTRA_CONFIG`` names one more config file for setuptools builds: it is
  *removed* from pip's environment (``passthrough.pip_environ``).
* ``~/.pydistutils.cfg`` is also read by every setuptools build pip runs (the
  build runs in pip's temporary copy of the source, but ``~`` is still the
  user's home): ``[build] build_lib``, ``[build_py] build_lib``, ``[install]``
  keys and the like move files.  These are *checked*: an install is refused
  while the file sets a location key (``user-site`` for ``user = 1``, else
  ``outside-env``), naming the file, section and key.

A project's own ``setup.cfg`` is its build code, like ``setup.py``: what it does
is caught afterwards by the verify-after check (``verify.py``), not before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: sections of distutils commands that write files
_SECTIONS = frozenset(
    {
        "install",
        "install_lib",
        "install_scripts",
        "install_data",
        "install_headers",
        "install_egg_info",
        "build",
        "build_py",
        "build_ext",
        "build_scripts",
        "build_clib",
        "bdist",
        "bdist_wheel",
        "bdist_egg",
        "easy_install",
        "develop",
        "egg_info",
        "global",
    }
)
#: key words that name a location or a scheme
_LOCATION_WORDS = ("user", "prefix", "home", "root", "lib", "dir", "base", "scripts", "data",
                   "headers", "path", "site")  # fmt: skip


def user_config_path(environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".pydistutils.cfg")


def location_keys(path: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of the location keys in a distutils config file."""
    import configparser

    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            parser.read_string(handle.read(1 << 20), source=path)
    except (OSError, configparser.Error):
        return []
    found = []
    for section in parser.sections():
        if section.replace("-", "_").lower() not in _SECTIONS:
            continue
        for key, value in parser.items(section):
            name = key.replace("-", "_").lower()
            if any(word in name for word in _LOCATION_WORDS):
                found.append((section, key, value))
    return found


def moving_config(environ: Mapping[str, str]) -> tuple[str, str, str, str] | None:
    """(file, section, key, value) of the first location key in the user's distutils
    config, or None."""
    path = user_config_path(environ)
    if not os.path.isfile(path):
        return None
    keys = location_keys(path)
    if not keys:
        return None
    users = [k for k in keys if k[1].lower() == "user"]
    section, key, value = (users or keys)[0]
    return path, section, key, value
