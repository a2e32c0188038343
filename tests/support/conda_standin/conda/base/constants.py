PACKAGE_CACHE_MAGIC_FILE = "urls.txt"


from .. import missing as __getattr__  # noqa: E402, F401
