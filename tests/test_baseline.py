"""The baseline and the complete request, end to end.

A shared conda env had pip packages before it was protected (the common case:
ipykernel and friends). `protect` records them as the env's baseline, so they
are not drift; the read-only request lists them all, pinned, and says what a
spec cannot hold; `status --accept-drift` (the admin) moves the baseline.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel

NOBODY = 65534
DENIED = 10


def unexplained(run: Runner, safe_pip_bin: list[str], env: Prefix) -> list[str]:
    proc = run([*safe_pip_bin, "status", "--json", "--python", str(env.python)])
    assert proc.returncode == 0, proc.stderr
    names = [item["name"] for item in json.loads(proc.stdout)["drift"]["unexplained"]]
    return [name.replace("_", "-") for name in names]


def test_pre_protect_packages_are_the_baseline_and_the_request_keeps_them_all(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
) -> None:
    env = prefix_factory("conda-env")
    history = env.conda_meta / "history"
    history.write_text(
        history.read_text().rstrip("\n") + "\n# update specs: ['python=3.11', 'pip']\n"
    )

    def bare_pip(*args: str) -> subprocess.CompletedProcess[str]:
        proc = run([str(env.python), "-m", "pip", *args, "--no-index", "-f", str(wheelhouse)])
        assert proc.returncode == 0, proc.stderr
        return proc

    # before safe-pip: pip packages, and one from a local wheel file
    bare_pip("install", "demo-b")
    local = build_wheel(shared_tmp / "local", "localtool", "0.3")
    bare_pip("install", str(local))
    assert {"demo-a", "demo-b", "localtool"} <= set(unexplained(run, safe_pip_bin, env))

    protected = run([*safe_pip_bin, "protect", "--python", str(env.python)])
    assert protected.returncode == 0, protected.stderr
    assert "baseline" in protected.stdout
    baseline = env.path / "etc" / "safe-pip" / "protect" / "baseline.json"
    recorded = {d["key"]: d["version"] for d in json.loads(baseline.read_text())["distributions"]}
    assert recorded["demo-a"] == "2.0" and recorded["demo-b"] == "1.0"
    assert unexplained(run, safe_pip_bin, env) == []
    again = run([*safe_pip_bin, "protect", "--python", str(env.python)])
    assert "kept" in again.stdout  # a second protect does not move it

    # around safe-pip after protect: drift again, until the admin accepts it
    bare_pip("install", "--break-system-packages", "six")
    assert unexplained(run, safe_pip_bin, env) == ["six"]
    refused = run(
        [*safe_pip_bin, "status", "--accept-drift", "--python", str(env.python)], user=NOBODY
    )
    assert refused.returncode == 13, refused.stderr
    accepted = run([*safe_pip_bin, "status", "--accept-drift", "--python", str(env.python)])
    assert accepted.returncode == 0, accepted.stderr
    assert "accepted: six 1.17.0" in accepted.stdout
    assert unexplained(run, safe_pip_bin, env) == []

    # a hub user's request: everything the env really has, pinned, plus the request
    proc = run(
        [*safe_pip_bin, "install", "demo-a==1.0", "--no-index", "-f", str(wheelhouse)],
        user=NOBODY,
        env={"PATH": f"{env.bin}:/usr/bin:/bin"},
    )
    assert proc.returncode == DENIED, proc.stderr
    assert "read-only-env" in proc.stderr
    spec = run.home(NOBODY) / "safe-pip-requests" / f"{env.path.name}.environment.yml"
    text = spec.read_text()
    assert "- demo-b==1.0" in text and "- six==1.17.0" in text  # pinned, by project name
    assert "- demo-a==1.0" in text  # the request replaces the installed 2.0
    assert "demo-a==2.0" not in text
    # the local wheel cannot be rebuilt from a spec: a comment, and said on the terminal
    assert "# not in this spec: localtool 0.3 was installed from the local file://" in text
    assert "not expressible in a spec" in proc.stderr and "localtool 0.3" in proc.stderr
    assert "pinned from the env's baseline" in proc.stderr

    # export says the same
    export = run([*safe_pip_bin, "export", "--python", str(env.python)])
    assert "- demo-b==1.0" in export.stdout and "localtool" in export.stderr
