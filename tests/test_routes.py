"""Every route of rule 7, through the real safe-pip CLI, as root and as an unprivileged
user, for both installers: pip, and uv (real uv from the test extra, offline).  What lands
on disk (or does not) is the assertion.

Backends (the `backend` fixture): `pip` (`safe-pip install ...`), `uv` (`safe-pip
--installer uv install ...`: the same pip command line, carried out by uv) and, where a
route can be typed in uv's own command language, `uv-door` (`safe-pip uv pip install
...`: the door the `uv` shim and `%uv` take, decided on uv's options and `UV_*`
variables); an allowed install also with uv as the policy's installer (`uv-policy`).  The
uv door's own routes are in `DOOR_ROUTES`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from support.auditlog import log_lines, operations_in
from support.backends import (
    BACKENDS,
    DOOR,
    PIP,
    UV,
    WITH_DOOR,
    WITH_POLICY,
    GuardedEnv,
    installer_of,
    yes,
)
from support.prefixes import Prefix
from support.run import Runner, install_setuptools
from support.wheels import make_project

pytestmark = pytest.mark.integration

NOBODY = 65534
DENIED = 10
USAGE = 12


def installed(site: Path, name: str = "demo_a") -> bool:
    return (
        any(p.name.startswith(f"{name}-") and p.name.endswith(".dist-info") for p in site.iterdir())
        if site.is_dir()
        else False
    )


def user_site_files(home: Path) -> list[Path]:
    """Files under ~/.local, less safe-pip's own audit fallback (XDG state dir)."""
    local = home / ".local"
    state = local / "state" / "safe-pip"
    if not local.exists():
        return []
    return [p for p in local.rglob("*") if p.is_file() and state not in p.parents]


class Scenario(GuardedEnv):
    """One env, one user and one backend: run safe-pip there, check what landed."""

    def nothing_landed(self, *sites: Path) -> None:
        assert user_site_files(self.home) == []
        for site in (self.prefix.site_packages, *sites):
            assert not installed(site), f"demo-a landed in {site}"


@pytest.fixture(params=[None, NOBODY], ids=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> int | None:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """pip or uv (`--installer uv`); a test with `WITH_DOOR` also takes the uv door."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def own_env(prefix_factory: Callable[..., Prefix], user: int | None) -> Prefix:
    """A conda env the user can write to, marked (PEP 668) as on a hub."""
    return prefix_factory("conda-env", writable_by=user, marker=True)


@pytest.fixture
def refusing(
    run: Runner,
    safe_pip_bin: list[str],
    shared_prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    user: int | None,
    backend: str,
) -> Scenario:
    """`scenario` for routes that are refused: the user's env stays untouched, so one env
    per user serves every such test of the session."""
    prefix = shared_prefix_factory("conda-env", writable_by=user, marker=True)
    return Scenario(run, safe_pip_bin, prefix, [wheelhouse], user, backend)


@pytest.fixture
def scenario(
    run: Runner,
    safe_pip_bin: list[str],
    own_env: Prefix,
    wheelhouse: Path,
    user: int | None,
    backend: str,
) -> Scenario:
    return Scenario(run, safe_pip_bin, own_env, [wheelhouse], user, backend)


@pytest.mark.parametrize("backend", WITH_POLICY, indirect=True)
def test_allowed_install_lands_in_the_env_and_only_there(scenario: Scenario) -> None:
    proc = scenario.pip("install", "demo-a")
    assert proc.returncode == 0, proc.stderr
    assert installed(scenario.site)
    # carried out by the backend asked for (uv needs --break-system-packages in a marked env:
    # safe-pip adds it once the decision allowed the install)
    assert installer_of(scenario.site, "demo_a") == scenario.installer
    assert user_site_files(scenario.home) == []


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        (["--user"], {}),
        ([], {"PIP_USER": "1"}),
        ([], {"PIP_USER": "true"}),
        ([], {"PIP_NO_USER": "1"}),
    ],
    ids=["--user", "PIP_USER=1", "PIP_USER=true", "PIP_NO_USER=1"],
)
def test_user_site_routes(refusing: Scenario, args: list[str], extra_env: dict[str, str]) -> None:
    # with --installer uv too: safe-pip reads pip's settings (PIP_*) for a pip command line
    proc = refusing.pip("install", *args, "demo-a", env=refusing.env(**extra_env))
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    user-site" in proc.stderr
    refusing.nothing_landed()
    # the refusal is recorded in the env's log, naming the installer asked for
    record = operations_in(refusing.prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")[-1]
    assert (record["rule"], record["installer"]) == ("user-site", refusing.installer)


def test_ambiguous_option_fails_closed(refusing: Scenario) -> None:
    proc = refusing.pip("install", "--us", "demo-a")
    assert proc.returncode == USAGE, proc.stderr
    refusing.nothing_landed()


@pytest.mark.parametrize("section", ["global", "install"])
def test_user_true_in_a_pip_config_file(refusing: Scenario, shared_tmp: Path, section: str) -> None:
    conf = shared_tmp / f"pip-{section}.conf"
    conf.write_text(f"[{section}]\nuser = true\n")
    conf.chmod(0o644)
    proc = refusing.pip("install", "demo-a", env=refusing.env(PIP_CONFIG_FILE=str(conf)))
    assert proc.returncode == DENIED, proc.stderr
    assert "user-site" in proc.stderr and str(conf) in proc.stderr
    refusing.nothing_landed()


def test_user_true_in_the_users_own_pip_conf(refusing: Scenario) -> None:
    conf_dir = refusing.home / ".config" / "pip"
    conf_dir.mkdir(parents=True)
    (conf_dir / "pip.conf").write_text("[install]\nuser = yes\n")
    if refusing.user is not None:
        for path in (refusing.home / ".config", conf_dir, conf_dir / "pip.conf"):
            os.chown(path, refusing.user, refusing.user)
    # the machine-wide PIP_CONFIG_FILE=/dev/null of the test harness would hide it
    proc = refusing.pip("install", "demo-a", env=refusing.env(PIP_CONFIG_FILE=None))
    assert proc.returncode == DENIED, proc.stderr
    assert "user-site" in proc.stderr
    refusing.nothing_landed()


@pytest.mark.parametrize("option", ["--prefix", "--target", "--root"])
def test_destinations_into_the_user_base(refusing: Scenario, option: str) -> None:
    value = (
        str(refusing.home / ".local")
        if option != "--target"
        else str(refusing.home / ".local/lib/python3.11/site-packages")
    )
    proc = refusing.pip("install", option, value, "demo-a")
    assert proc.returncode == DENIED, proc.stderr
    refusing.nothing_landed()


def test_implicit_user_fallback_on_a_read_only_env(
    run: Runner,
    safe_pip_bin: list[str],
    shared_prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    backend: str,
) -> None:
    shared = shared_prefix_factory("conda-env")  # root-owned: read-only for nobody
    s = Scenario(run, safe_pip_bin, shared, [wheelhouse], NOBODY, backend)
    proc = s.pip("install", "demo-a")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    read-only-env" in proc.stderr
    s.nothing_landed()
    if backend != PIP:
        return  # what follows is about bare pip, whichever backend safe-pip would use
    # and bare pip would indeed have fallen back to ~/.local: safe-pip is what stops it
    bare = run(
        [
            str(shared.python),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "demo-a",
        ],
        user=NOBODY,
    )
    assert "user installation" in (bare.stdout + bare.stderr)
    assert user_site_files(s.home) != []


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_venv_with_system_site_packages(
    run: Runner,
    safe_pip_bin: list[str],
    prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    shared_tmp: Path,
    user: int | None,
    backend: str,
) -> None:
    base = prefix_factory("plain")
    venv = shared_tmp / "venv-sys"
    subprocess.run(
        [str(base.python), "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    if user is not None:
        subprocess.run(["chown", "-R", f"{user}:{user}", str(venv)], check=True)
    site = venv / "lib/python3.11/site-packages"
    s = Scenario(run, safe_pip_bin, base, [wheelhouse], user, backend)
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin"}
    proc = s.pip("install", "--user", "demo-a", env=env)
    assert proc.returncode == DENIED, proc.stderr
    assert "user-site" in proc.stderr
    assert not installed(site)
    assert user_site_files(s.home) == []
    # a plain install goes into the venv itself (pip from the base via system site-packages)
    proc = s.pip("install", "demo-a", env=env)
    assert proc.returncode == 0, proc.stderr
    assert installed(site) and installer_of(site, "demo_a") == s.installer
    assert not installed(base.site_packages)
    assert user_site_files(s.home) == []


@pytest.fixture
def base_env(shared_prefix_factory: Callable[..., Prefix], user: int | None) -> Prefix:
    # even a base the user could write to is refused: the rule is not about permissions.
    # Every route is refused, so one base per user serves them all.
    return shared_prefix_factory("conda-base", writable_by=user)


@pytest.fixture
def shared_own_env(shared_prefix_factory: Callable[..., Prefix], user: int | None) -> Prefix:
    """The user's own env for routes that must leave it untouched, one per user."""
    return shared_prefix_factory("conda-env", writable_by=user)


@pytest.mark.parametrize(
    "how",
    [
        "on-path",
        "--python",
        "--python=dir",
        "PIP_PYTHON",
        "--prefix",
        "--root /",
        "--target site-packages",
        "--break-system-packages",
        "PIP_BREAK_SYSTEM_PACKAGES",
        "config break-system-packages",
        "uninstall",
    ],
)
def test_base_env_routes(  # noqa: C901 - one branch per route into base, named by the parameter
    run: Runner,
    safe_pip_bin: list[str],
    shared_own_env: Prefix,
    base_env: Prefix,
    wheelhouse: Path,
    user: int | None,
    backend: str,
    shared_tmp: Path,
    how: str,
) -> None:
    s = Scenario(run, safe_pip_bin, shared_own_env, [wheelhouse], user, backend)
    on_path = {"PATH": f"{shared_own_env.bin}:/usr/bin:/bin"}
    base_on_path = {"PATH": f"{base_env.bin}:/usr/bin:/bin"}
    args: list[str]
    env: Mapping[str, str | None]
    if how == "on-path":
        args, env = ["install", "demo-a"], base_on_path
    elif how == "--python":
        args, env = ["--python", str(base_env.python), "install", "demo-a"], on_path
    elif how == "--python=dir":
        args, env = [f"--python={base_env.path}", "install", "demo-a"], on_path
    elif how == "PIP_PYTHON":
        args, env = ["install", "demo-a"], {**on_path, "PIP_PYTHON": str(base_env.python)}
    elif how == "--prefix":
        args, env = ["install", "--prefix", str(base_env.path), "demo-a"], base_on_path
    elif how == "--root /":
        args, env = ["install", "--root", "/", "demo-a"], base_on_path
    elif how == "--target site-packages":
        args, env = ["install", "--target", str(base_env.site_packages), "demo-a"], on_path
    elif how == "--break-system-packages":
        args, env = ["install", "--break-system-packages", "demo-a"], base_on_path
    elif how == "PIP_BREAK_SYSTEM_PACKAGES":
        args, env = ["install", "demo-a"], {**base_on_path, "PIP_BREAK_SYSTEM_PACKAGES": "1"}
    elif how == "config break-system-packages":
        conf = shared_tmp / "bsp.conf"
        conf.write_text("[global]\nbreak-system-packages = true\n")
        conf.chmod(0o644)
        args, env = ["install", "demo-a"], {**base_on_path, "PIP_CONFIG_FILE": str(conf)}
    else:
        # something pip could remove from base: pip itself
        proc = s.pip("uninstall", "-y", "pip", env=base_on_path)
        assert proc.returncode == DENIED, proc.stderr
        assert "rule:    base-env" in proc.stderr
        assert installed(base_env.site_packages, "pip")
        return
    proc = s.pip(*args, env=env)
    assert proc.returncode == DENIED, proc.stderr
    assert "base-env" in proc.stderr or "outside-env" in proc.stderr
    assert not installed(base_env.site_packages)
    assert user_site_files(s.home) == []


@pytest.mark.parametrize("option", ["--target", "--targ", "-t", "--prefix", "--prefi=", "--root"])
def test_outside_env_destinations(refusing: Scenario, shared_tmp: Path, option: str) -> None:
    dest = shared_tmp / "elsewhere"
    args = (
        [f"{option}{dest}"]
        if option.endswith("=")
        else ([f"-t{dest}"] if option == "-t" else [option, str(dest)])
    )
    proc = refusing.pip("install", *args, "demo-a")
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    outside-env" in proc.stderr
    assert not dest.exists() or not any(dest.rglob("*.dist-info"))


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_listed_destination_is_allowed(scenario: Scenario, shared_tmp: Path) -> None:
    dest = shared_tmp / "plugins"
    dest.mkdir()
    if scenario.user is not None:
        os.chown(dest, scenario.user, scenario.user)
    policy = f'version = 1\n[install]\nallowed-destinations = ["{dest}"]\n'
    proc = scenario.pip("install", "--target", str(dest / "lib"), "demo-a", system_policy=policy)
    assert proc.returncode == 0, proc.stderr
    assert installed(dest / "lib") and installer_of(dest / "lib", "demo_a") == scenario.installer
    assert not installed(scenario.site)


@pytest.mark.parametrize("backend", WITH_DOOR, indirect=True)
def test_frozen_env_refuses_install_and_uninstall(
    run: Runner,
    safe_pip_bin: list[str],
    shared_prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    user: int | None,
    backend: str,
) -> None:
    frozen = shared_prefix_factory("conda-env", frozen=True, writable_by=user)
    s = Scenario(run, safe_pip_bin, frozen, [wheelhouse], user, backend)
    proc = s.pip("install", "demo-a")
    assert proc.returncode == DENIED and "frozen-env" in proc.stderr, proc.stderr
    proc = s.pip("uninstall", *yes(backend), "pip")
    assert proc.returncode == DENIED and "frozen-env" in proc.stderr, proc.stderr
    assert installed(frozen.site_packages, "pip")
    s.nothing_landed()


#: a developer install builds the project in a fresh env with setuptools (1 to 2 s): pip as
#: both users, uv and the uv door as the unprivileged user only
DEV_CASES = pytest.mark.parametrize(
    ("user", "backend"),
    [(None, PIP), (NOBODY, PIP), (NOBODY, UV), (NOBODY, DOOR)],
    ids=["root-pip", "nobody-pip", "nobody-uv", "nobody-uv-door"],
    indirect=True,
)


@DEV_CASES
def test_dev_install_needs_no_build_isolation_then_works(
    scenario: Scenario, shared_tmp: Path
) -> None:
    assert install_setuptools(scenario.prefix).returncode == 0
    project = make_project(shared_tmp / "proj", "devpkg", "0.1", owner=scenario.user)
    proc = scenario.pip("install", "-e", str(project))
    assert proc.returncode == DENIED, proc.stderr
    assert "rule:    build-isolation" in proc.stderr
    # the suggested command runs the same way: with uv again where uv was asked for
    typed = {PIP: "pip install", UV: "pip install --installer uv", DOOR: "uv pip install"}
    assert f"{typed[scenario.backend]} --no-build-isolation -e {project}" in proc.stderr
    assert not installed(scenario.site, "devpkg")
    proc = scenario.pip("install", "--no-build-isolation", "-e", str(project))
    assert proc.returncode == 0, proc.stderr
    assert installed(scenario.site, "devpkg")
    assert installer_of(scenario.site, "devpkg") == scenario.installer
    # uv plans a source tree before building it, without its version; the build into the
    # scratch prefix (for the conda file checks) tells it: the same plan record as pip's
    log = log_lines(scenario.prefix.path / "var" / "log" / "safe-pip" / "audit.jsonl")
    plan = [r["plan"] for r in log if r.get("kind") == "plan"][-1]
    assert plan["install"] == ["devpkg==0.1"]
    assert log[-1]["changes"]["installed"][0]["version"] == "0.1"
    assert user_site_files(scenario.home) == []
    check = scenario.run([str(scenario.prefix.python), "-c", "import devpkg"], user=scenario.user)
    assert check.returncode == 0, check.stderr


@DEV_CASES
def test_dev_only_env(scenario: Scenario, shared_tmp: Path) -> None:
    install_setuptools(scenario.prefix)
    project = make_project(shared_tmp / "proj", "devpkg", "0.1", owner=scenario.user)
    policy = (
        f'version = 1\n[[envs]]\npath = "{scenario.prefix.path}"\n'
        'install = { conda-env = "dev-only" }\n'
    )
    proc = scenario.pip("install", "demo-a", system_policy=policy)
    assert proc.returncode == DENIED and "rule:    dev-only" in proc.stderr
    proc = scenario.pip("install", "--no-build-isolation", "-e", str(project), system_policy=policy)
    assert proc.returncode == 0, proc.stderr
    assert installed(scenario.site, "devpkg")
    assert not installed(scenario.site)


# --- the uv door: routes typed in uv's own words ----------------------------------------

#: (uv arguments after `uv pip`, UV_* and PATH, the rules that may refuse); {home}: the
#: user's home (also the working directory), {elsewhere}: a directory outside every env,
#: {base}/{base_prefix}/{base_site}/{base_bin}: the conda base env's python, prefix,
#: site-packages and bin; {reqs}: a requirements file for `uv pip sync`
DOOR_ROUTES = {
    "--user": (["install", "--user"], {}, "user-site"),
    "--target user site": (
        ["install", "--target", "{home}/.local/lib/python3.11/site-packages"],
        {},
        "user-site",
    ),
    "--prefix user base": (["install", "--prefix", "{home}/.local"], {}, "user-site"),
    "--target relative": (
        ["install", "--target", ".local/lib/python3.11/site-packages"],
        {},
        "user-site",
    ),
    "sync --target user site": (
        ["sync", "--target", "{home}/.local/lib/python3.11/site-packages", "{reqs}"],
        {},
        "user-site",
    ),
    "--target elsewhere": (["install", "--target", "{elsewhere}"], {}, "outside-env"),
    "-t elsewhere": (["install", "-t{elsewhere}"], {}, "outside-env"),
    "--prefix=elsewhere": (["install", "--prefix={elsewhere}"], {}, "outside-env"),
    "base on PATH": (["install"], {"PATH": "{base_bin}:/usr/bin:/bin"}, "base-env"),
    "--python base": (["install", "--python", "{base}"], {}, "base-env"),
    "-p base prefix": (["install", "-p", "{base_prefix}"], {}, "base-env"),
    "UV_PYTHON": (["install"], {"UV_PYTHON": "{base}"}, "base-env"),
    "--system": (["install", "--system"], {"PATH": "{base_bin}:/usr/bin:/bin"}, "base-env"),
    "UV_SYSTEM_PYTHON": (
        ["install"],
        {"UV_SYSTEM_PYTHON": "1", "PATH": "{base_bin}:/usr/bin:/bin"},
        "base-env",
    ),
    "--prefix base": (["install", "--prefix", "{base_prefix}"], {}, "base-env outside-env"),
    "--target base site": (["install", "--target", "{base_site}"], {}, "base-env outside-env"),
    "--break-system-packages": (
        ["install", "--break-system-packages", "--python", "{base}"],
        {},
        "base-env",
    ),
    "UV_BREAK_SYSTEM_PACKAGES": (
        ["install"],
        {"UV_BREAK_SYSTEM_PACKAGES": "1", "UV_PYTHON": "{base}"},
        "base-env",
    ),
    "sync on base": (["sync", "--python", "{base}", "{reqs}"], {}, "base-env"),
    "--system: the distribution's python": (
        ["install", "--system"],
        {"PATH": "/usr/bin:/bin"},
        "system-python",
    ),
    "uninstall from base": (["uninstall", "--python", "{base}", "pip"], {}, "base-env"),
    "uninstall --prefix base": (
        ["uninstall", "--prefix", "{base_prefix}", "pip"],
        {},
        "base-env outside-env",
    ),
    "uninstall --target user site": (
        ["uninstall", "--target", "{home}/.local/lib/python3.11/site-packages", "demo-a"],
        {},
        "user-site",
    ),
}


@pytest.mark.parametrize("route", list(DOOR_ROUTES))
def test_uv_door_routes(
    run: Runner,
    safe_pip_bin: list[str],
    shared_prefix_factory: Callable[..., Prefix],
    wheelhouse: Path,
    route: str,
) -> None:
    """`uv pip ...` through safe-pip's uv door, as uid 65534 with a base env it could write
    to (the rule is not about permissions): every route out of the user's env is refused."""
    own = shared_prefix_factory("conda-env", writable_by=NOBODY)
    base = shared_prefix_factory("conda-base", writable_by=NOBODY)
    s = Scenario(run, safe_pip_bin, own, [wheelhouse], NOBODY, DOOR)
    elsewhere = Path("/tmp/safe-pip-tests") / f"elsewhere-{os.getpid()}"
    reqs = s.home / "requirements.txt"
    reqs.write_text("demo-a==1.0\n")
    names = {
        "home": str(s.home),
        "elsewhere": str(elsewhere),
        "base": str(base.python),
        "base_prefix": str(base.path),
        "base_site": str(base.site_packages),
        "base_bin": str(base.bin),
        "reqs": str(reqs),
    }
    args, variables, rules = DOOR_ROUTES[route]
    argv = [a.format(**names) for a in args]
    if argv[0] == "install":
        argv.append("demo-a")
    proc = s.pip(*argv, env=s.env(**{k: v.format(**names) for k, v in variables.items()}))
    assert proc.returncode == DENIED, proc.stderr
    assert any(f"rule:    {rule}" in proc.stderr for rule in rules.split()), proc.stderr
    assert "uv pip" in proc.stderr
    assert user_site_files(s.home) == []
    assert not elsewhere.exists()
    assert not installed(own.site_packages) and not installed(base.site_packages)
    assert installed(base.site_packages, "pip")
