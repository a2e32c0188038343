"""safe-pip: a policy-enforcing front door for pip on shared Python hubs."""

__version__ = "0.1.0"
