"""An env's baseline: its distributions as they were when the admin took it as it is.

``safe-pip protect`` records the inventory of the env's site-packages (name,
version, ``INSTALLER``) in ``<prefix>/etc/safe-pip/protect/baseline.json``;
``safe-pip status --accept-drift`` records it again.  Drift is measured from
it: a distribution installed at its baseline version is explained, like one
the audit log explains.  ``export`` and the read-only request pin the
baseline's pip packages.  ``unprotect`` removes it with protect's other state.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from safe_pip.environment import Environment
from safe_pip.values import field, frozen

BASELINE = os.path.join("etc", "safe-pip", "protect", "baseline.json")
SCHEMA = "safe-pip.baseline/1"
_LIMIT = 16 << 20


@frozen
class Baseline:
    #: normalised name -> version
    versions: Mapping[str, str] = field(default_factory=dict)
    #: normalised name -> INSTALLER ("" when none)
    installers: Mapping[str, str] = field(default_factory=dict)
    time: str | None = None
    by: str | None = None
    #: a problem reading it, for status
    problem: str | None = None

    def explains(self, key: str, version: str) -> bool:
        return self.versions.get(key) == version


def baseline_path(prefix: str) -> str:
    return os.path.join(prefix, BASELINE)


def read_baseline(prefix: str) -> Baseline:
    """The env's baseline; an empty one when there is none or it cannot be read."""
    from safe_pip.readfile import read_bytes

    path = baseline_path(prefix)
    try:
        data = json.loads(read_bytes(path, limit=_LIMIT))
    except FileNotFoundError:
        return Baseline()
    except (OSError, ValueError, RecursionError) as error:
        return Baseline(problem=f"{path}: cannot be read ({error}); no baseline used")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return Baseline(problem=f"{path}: not a {SCHEMA} document; no baseline used")
    versions: dict[str, str] = {}
    installers: dict[str, str] = {}
    for item in data.get("distributions") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            versions[item["key"]] = str(item.get("version", ""))
            installers[item["key"]] = str(item.get("installer", ""))
    return Baseline(versions, installers, str(data.get("time") or ""), str(data.get("by") or ""))


def write_baseline(env: Environment, environ: Mapping[str, str], reason: str) -> int:
    """Record the env's distributions now as its baseline; returns how many."""
    from safe_pip.atomicwrite import write_atomic
    from safe_pip.audit.record import login_name, utc_time
    from safe_pip.inventory import details, scan_all

    seen: set[str] = set()
    distributions = []
    for item in scan_all([env.purelib, env.platlib]):
        if item.key in seen:
            continue  # the copy Python imports is the first
        seen.add(item.key)
        distributions.append(
            {
                "key": item.key,
                "name": item.name,
                "version": item.version,
                "installer": details(item).installer,
            }
        )
    document = {
        "schema": SCHEMA,
        "time": utc_time(time.time()),
        "by": login_name(os.getuid(), environ),
        "reason": reason,
        "distributions": distributions,
    }
    write_atomic(
        baseline_path(env.prefix), json.dumps(document, indent=1) + "\n", mode=0o644, dir_mode=0o755
    )
    return len(distributions)
