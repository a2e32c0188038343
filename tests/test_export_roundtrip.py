"""Round trip: install local wheels through safe-pip into a conda env made by py-rattler,
export, rebuild a fresh env from the export (its conda part solved and installed by
py-rattler, its pip part by plain pip), and compare the installed distributions of both."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support.conda_channel import rattler_env
from support.prefixes import Prefix
from support.run import Runner
from support.wheels import build_wheel, normalize_name
from test_export import CONDA_STORE_NAME, conda_store_accepts_pip_item, yaml_load

pytestmark = pytest.mark.integration


def distributions(site: Path) -> set[tuple[str, str]]:
    """(normalised name, version) of every ``*.dist-info`` in a site-packages dir."""
    found = set()
    for entry in site.iterdir():
        if entry.name.endswith(".dist-info"):
            name, _, version = entry.name[: -len(".dist-info")].rpartition("-")
            found.add((normalize_name(name), version))
    return found


def check(done: subprocess.CompletedProcess[str], what: str) -> None:
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


def test_export_rebuilds_the_same_distributions(
    conda_env_factory: Callable[..., Prefix],
    wheelhouse: Path,
    safe_pip_bin: list[str],
    run: Runner,
    shared_tmp: Path,
) -> None:
    original = conda_env_factory(name="original")
    # a wheel installed by its path (not from --find-links): a "file" source
    extra = shared_tmp / "extra-wheels"
    local_wheel = build_wheel(extra, "demo-c", "0.5")
    os.chmod(extra, 0o755)
    env = {"PATH": f"{original.bin}:/usr/bin:/bin"}
    links = ["--no-index", "--find-links", str(wheelhouse)]

    def safe_pip(*args: str) -> None:
        check(run([*safe_pip_bin, *args], env=env), "safe-pip " + " ".join(args))

    safe_pip("install", *links, "demo-a==1.0", "six")
    safe_pip("install", *links, "demo-b")  # demo-a 1.0 satisfies it
    safe_pip("install", *links, "--upgrade", "demo-a")  # an upgrade: 1.0 -> 2.0
    safe_pip("uninstall", "-y", "six")  # a removal
    safe_pip("install", *links, str(local_wheel))

    log = original.path / "var" / "log" / "safe-pip" / "audit.jsonl"
    assert log.is_file(), f"safe-pip wrote no audit log at {log}"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(r.get("changes", {}).get("installed") for r in records), (
        "the audit records carry no changes:\n" + log.read_text()[:2000]
    )

    requirements = shared_tmp / "requirements.txt"
    exported = run(
        [*safe_pip_bin, "export", "--format", "requirements", "-o", str(requirements)], env=env
    )
    check(exported, "safe-pip export --format requirements")
    lines = [
        line
        for line in requirements.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(lines) == ["demo-a==2.0", "demo-b==1.0", "demo-c==0.5"]
    text = requirements.read_text()
    assert f"# demo-c 0.5 was installed from a local file, not an index: {local_wheel}\n" in text
    assert f"# --find-links {wheelhouse} served demo-a 2.0, demo-b 1.0: " in text

    environment_yml = shared_tmp / "environment.yml"
    check(
        run([*safe_pip_bin, "export", "-o", str(environment_yml)], env=env),
        "safe-pip export",
    )
    text = environment_yml.read_text()
    assert re.search(r"^name: original$", text, re.MULTILINE)
    assert '  - pip\n  - "python 3.11.*"\n  - pip:\n' in text  # rattler's specs, from its records
    items = re.findall(r"^      - (.*)$", text, re.MULTILINE)
    assert items == ["demo-a==2.0", "demo-b==1.0", "demo-c==0.5"]
    assert all(conda_store_accepts_pip_item(item) for item in items)

    data = yaml_load(text)
    conda_specs = [spec for spec in data["dependencies"] if isinstance(spec, str)]
    fresh = rattler_env(shared_tmp, "fresh", conda_specs)
    assert distributions(fresh.site_packages) == {("pip", fresh.base.pip_version)}
    rebuilt = run(
        fresh.pip(
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--find-links",
            str(extra),
            "-r",
            str(requirements),
        )
    )
    check(rebuilt, "pip install -r (the rebuild)")
    assert distributions(fresh.site_packages) == distributions(original.site_packages)
    assert ("demo-a", "2.0") in distributions(fresh.site_packages)
    assert not any(name == "six" for name, _ in distributions(fresh.site_packages))

    assert data["dependencies"][-1] == {"pip": items}
    assert CONDA_STORE_NAME.match(data["name"])


def test_export_of_a_plain_prefix_names_its_python(
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    safe_pip_bin: list[str],
    run: Runner,
) -> None:
    plain = prefix_factory("plain", name="plain-env")
    env = {"PATH": f"{plain.bin}:/usr/bin:/bin"}
    installed = run(
        [*safe_pip_bin, "install", "--no-index", "--find-links", str(wheelhouse), "demo-b"],
        env=env,
    )
    check(installed, "safe-pip install demo-b")
    exported = run([*safe_pip_bin, "export"], env=env)
    check(exported, "safe-pip export")
    body = [line for line in exported.stdout.splitlines() if not line.startswith("#")]
    assert body == [
        "name: plain-env",
        "dependencies:",
        f"  - python={plain.python_version}",
        "  - pip",
        "  - pip:",
        "      - demo-a==2.0",
        "      - demo-b==1.0",
        f"      # --find-links {wheelhouse} served demo-a 2.0, demo-b 1.0: a local directory, "
        "not there when the env is rebuilt elsewhere, and conda-store refuses --find-links: "
        "put these on an index, or give pip --find-links by hand",
    ]
    assert yaml_load(exported.stdout) == {
        "name": "plain-env",
        "dependencies": [
            f"python={plain.python_version}",
            "pip",
            {"pip": ["demo-a==2.0", "demo-b==1.0"]},
        ],
    }
