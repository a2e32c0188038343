import os


def expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(os.path.expandvars(path)))


def strip_pkg_extension(path: str) -> tuple[str, str]:
    for ext in (".tar.bz2", ".conda"):
        if path.endswith(ext):
            return path[: -len(ext)], ext
    return path, ""


from .. import missing as __getattr__  # noqa: E402, F401
