"""Which door the user came through, so that messages name commands that work there.

safe-pip is reached as the ``safe-pip`` command, as an env's ``pip`` (a shim
written by ``safe-pip protect --shim``, which binds it to its env), or as
``%pip`` in a notebook (the IPython extension, ``safe_pip.ipython``).  Through
the shim and ``%pip``, safe-pip's own commands are ``pip status``, ``pip log``,
``pip export`` (``%pip status`` ...): a hint names them that way, because
``safe-pip`` itself is often not on the user's PATH.  Lean: the pass-through
path imports it.
"""

from __future__ import annotations

from safe_pip.target import BOUND_PYTHON_VAR, DOOR_VAR, MAGIC

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping

SAFE_PIP = "safe-pip"
SHIM = "pip"


def door(environ: Mapping[str, str]) -> str:
    """``%pip``, ``pip`` (an env's shim) or ``safe-pip``: the command the user typed."""
    if environ.get(DOOR_VAR) == MAGIC:
        return MAGIC
    if environ.get(BOUND_PYTHON_VAR):
        return SHIM
    return SAFE_PIP


def own_command(environ: Mapping[str, str], words: str) -> str:
    """How the user runs safe-pip's own command ``words`` (e.g. ``status``) from here."""
    return f"{door(environ)} {words}"
