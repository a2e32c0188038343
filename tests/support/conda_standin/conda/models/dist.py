class Dist:
    pass


from .. import missing as __getattr__  # noqa: E402, F401
