import re


class MatchSpec:
    def __init__(self, spec: str) -> None:
        match = re.match(r"^\s*(?:[^:\s]+::)?([A-Za-z0-9_.-]+)", spec)
        if match is None:
            raise ValueError(f"not a conda match spec: {spec!r}")
        self.name = match[1].lower()
