class PrefixData:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("a stand-in for conda: no prefix data")


from .. import missing as __getattr__  # noqa: E402, F401
