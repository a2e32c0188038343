class Dist:
    pass


from conda import missing as __getattr__  # noqa: E402, F401
