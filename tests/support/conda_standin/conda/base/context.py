import platform


class _Context:
    subdir = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}.get(platform.machine(), "linux-64")


context = _Context()
