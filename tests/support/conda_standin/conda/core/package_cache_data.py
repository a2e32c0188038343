import os

getsize = os.path.getsize


class PackageRecord:
    pass


class PackageCacheRecord:
    pass


from .. import missing as __getattr__  # noqa: E402, F401
