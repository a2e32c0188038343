"""Submitting an env's spec to conda-store: its REST API, a user's token, one POST.

``POST <url>/api/v1/specification/`` with ``Authorization: Bearer <token>`` and
the body ``{namespace, specification, environment_name,
environment_description}``; conda-store validates the YAML, the conda specs,
the pip requirements and the channels, stores the specification and queues a
build, answering ``{"status": "ok", "data": {"build_id": N}}``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping

from safe_pip.policy import Policy
from safe_pip.values import frozen

API_PATH = "/api/v1/specification/"
TIMEOUT_S = 30.0


class NotSent(Exception):
    """The request did not reach conda-store, or conda-store refused it."""


@frozen
class Submission:
    url: str
    namespace: str
    environment_name: str
    description: str
    specification: str

    def body(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "specification": self.specification,
            "environment_name": self.environment_name,
            "environment_description": self.description,
        }

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + API_PATH

    def watch_url(self, build_id: int) -> str:
        return f"{self.url.rstrip('/')}/api/v1/build/{build_id}/"


def user_token(policy: Policy, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(the token, where it came from) or (None, where it was looked for)."""
    variable = policy.text("conda-store.token-env")
    if variable and environ.get(variable):
        return environ[variable].strip(), f"${variable}"
    home = environ.get("HOME") or os.path.expanduser("~")
    path = policy.text("conda-store.token-file")
    if path.startswith("~"):
        path = home + path[1:]
    looked = f"${variable} or {path}" if variable else path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None, looked
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            raise NotSent(f"{path} is not a regular file you own: not used as your token")
        if info.st_mode & 0o077:
            raise NotSent(f"{path} may be read by others: make it yours only (chmod 600 {path})")
        token = handle.read(4096).decode("utf-8", "replace").strip()
    return (token or None), looked


def submit(submission: Submission, token: str, *, timeout: float = TIMEOUT_S) -> int:
    """POST the specification; returns conda-store's build id, or raises NotSent."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        submission.endpoint,
        data=json.dumps(submission.body()).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read(1 << 20) or b"{}")
    except urllib.error.HTTPError as error:
        raise NotSent(f"conda-store refused it (HTTP {error.code}): {_message(error)}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise NotSent(f"conda-store could not be reached at {submission.url}: {reason}") from None
    try:
        return int(answer["data"]["build_id"])
    except (KeyError, TypeError, ValueError):
        raise NotSent(f"conda-store answered without a build id: {answer!r:.200}") from None


def _message(error: object) -> str:
    try:
        raw = error.read(1 << 16)  # type: ignore[attr-defined]
        data = json.loads(raw)
    except Exception:
        return str(getattr(error, "reason", "") or "no details")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("detail") or data)
    return str(data)
