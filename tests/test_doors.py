"""The doors around pip on a hub: bare ``python -m pip`` in a protected env, a
``~/.local`` left from before, and what ``protect`` adds to pip.conf and IPython's
config (and ``unprotect`` takes back, byte for byte)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from support.prefixes import Prefix
from support.run import Runner

pytestmark = pytest.mark.integration

NOBODY = 65534
ADMIN_PIP_CONF = b"[global]\ntimeout = 60\n\n[install]\nuser = true\nprogress-bar = off\n"
ADMIN_IPYTHON = b"c = get_config()  # noqa\nc.InteractiveShell.autocall = 0\n"


def user_site(home: Path) -> Path:
    return home / ".local" / "lib" / "python3.11" / "site-packages"


def test_protect_closes_the_user_site_fallback_of_bare_pip_and_unprotect_restores(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env")  # root-owned: read-only for the hub user
    ipython_dir = env.path / "etc" / "ipython"
    ipython_dir.mkdir(parents=True)
    (ipython_dir / "ipython_config.py").write_bytes(ADMIN_IPYTHON)
    (env.path / "pip.conf").write_bytes(ADMIN_PIP_CONF)
    policy = 'version = 1\n[messages]\ncontact = "help: #hub-support"\n'

    done = run(
        [*safe_pip_bin, "protect", "--shim", "--python", str(env.python)], system_policy=policy
    )
    assert done.returncode == 0, done.stderr
    conf = (env.path / "pip.conf").read_text()
    assert "user = false" in conf and conf.count("[install]") == 1
    assert "# safe-pip protect set aside: user = true" in conf  # pip reads one `user` key
    again = run(
        [*safe_pip_bin, "protect", "--shim", "--python", str(env.python)], system_policy=policy
    )
    assert again.returncode == 0 and f"kept      {env.path / 'pip.conf'}" in again.stdout
    assert (env.path / "pip.conf").read_text() == conf
    assert "timeout = 60" in conf and "progress-bar = off" in conf
    for name in ("ipython_config.py", "ipython_kernel_config.py"):
        assert '"safe_pip.ipython"' in (ipython_dir / name).read_text()
    assert (ipython_dir / "ipython_config.py").read_bytes().startswith(ADMIN_IPYTHON)

    # bare pip, as the marker's own note suggests, unprivileged, with pip's config read
    bare = run(
        [
            str(env.python), "-m", "pip", "install", "--break-system-packages",
            "--no-index", "--find-links", str(wheelhouse), "demo-a",
        ],
        user=NOBODY,
        env={"PIP_CONFIG_FILE": None},
    )  # fmt: skip
    assert bare.returncode != 0
    assert "Permission denied" in bare.stderr or "permission" in bare.stderr.lower()
    home = run.home(NOBODY)
    assert not (home / ".local").exists()
    assert not list(env.site_packages.glob("demo_a*"))
    # nor with pip's configuration switched off (the env's pip.conf then unread):
    # the env's interpreter has the user site's install fallback off
    assert (env.site_packages / "safe_pip_no_user_site.pth").is_file()
    unconfigured = run(
        [
            str(env.python), "-m", "pip", "install", "--break-system-packages",
            "--no-index", "--find-links", str(wheelhouse), "demo-a",
        ],
        user=NOBODY,
    )  # fmt: skip
    assert unconfigured.returncode != 0
    assert "permission" in unconfigured.stderr.lower(), unconfigured.stderr
    assert not (home / ".local").exists()
    assert not list(env.site_packages.glob("demo_a*"))

    # without the flag, the marker names the commands that work, and the contact line
    refused = run(
        [str(env.python), "-m", "pip", "install", "demo-a"],
        user=NOBODY,
        env={"PIP_CONFIG_FILE": None},
    )
    assert refused.returncode != 0
    assert "%pip install <package>" in refused.stderr
    assert f"{env.bin / 'pip'} install <package>" in refused.stderr
    assert "help: #hub-support" in refused.stderr

    # through the shim, hints name commands that exist there: `pip status`, not `safe-pip ...`
    shim = run([str(env.bin / "pip"), "install", "-e", "."], user=NOBODY)
    assert shim.returncode == 10 and "rule:    read-only-env" in shim.stderr, shim.stderr
    assert "`pip status` shows what is allowed here" in shim.stderr
    assert "pip devenv ." in shim.stderr and "safe-pip " not in shim.stderr.replace(
        "safe-pip: refused", ""
    )

    undone = run([*safe_pip_bin, "unprotect", "--python", str(env.python)])
    assert undone.returncode == 0, undone.stderr
    assert (env.path / "pip.conf").read_bytes() == ADMIN_PIP_CONF
    assert (ipython_dir / "ipython_config.py").read_bytes() == ADMIN_IPYTHON
    assert not (ipython_dir / "ipython_kernel_config.py").exists()
    assert not (env.stdlib / "EXTERNALLY-MANAGED").exists()
    assert not (env.site_packages / "safe_pip_no_user_site.pth").exists()


def test_unprotect_keeps_what_the_admin_added_since(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix]
) -> None:
    env = prefix_factory("conda-env")
    assert run([*safe_pip_bin, "protect", "--python", str(env.python)]).returncode == 0
    conf = env.path / "pip.conf"
    conf.write_text(conf.read_text() + "\n[global]\nindex-url = https://pypi.example/simple\n")
    assert run([*safe_pip_bin, "unprotect", "--python", str(env.python)]).returncode == 0
    text = conf.read_text()
    assert "index-url = https://pypi.example/simple" in text
    assert "user = false" not in text and "safe-pip" not in text
    assert not (env.path / "etc" / "ipython").exists()


def test_a_user_site_copy_neither_satisfies_nor_catches_an_install(
    run: Runner, safe_pip_bin: list[str], prefix_factory: Callable[..., Prefix], wheelhouse: Path
) -> None:
    env = prefix_factory("conda-env", writable_by=NOBODY)  # the user's own env
    find = ["--no-index", "--find-links", str(wheelhouse)]
    # from before safe-pip: demo-a in ~/.local
    old = run([*env.pip("install", "--user", *find, "demo-a==1.0")], user=NOBODY)
    assert old.returncode == 0, old.stderr
    home = run.home(NOBODY)
    assert list(user_site(home).glob("demo_a-1.0.dist-info"))
    assert run([*safe_pip_bin, "protect", "--shim", "--python", str(env.python)]).returncode == 0

    # under the name pip, --help and --version stay pip's, byte for byte
    for args in (["--help"], ["--version"]):
        shim = run([str(env.bin / "pip"), *args], user=NOBODY)
        bare = run(env.pip(*args), user=NOBODY)
        assert shim.returncode == bare.returncode == 0 and shim.stdout == bare.stdout
    own = run([*safe_pip_bin, "--help"], user=NOBODY)
    assert "safe-pip's own commands" in own.stdout and "status" in own.stdout

    done = run([str(env.bin / "pip"), "install", *find, "demo-a==1.0"], user=NOBODY)
    assert done.returncode == 0, done.stderr
    assert "already satisfied" not in done.stdout
    assert list(env.site_packages.glob("demo_a-1.0.dist-info"))
    imported = run(
        [str(env.python), "-c", "import demo_a; print(demo_a.__file__)"],
        user=NOBODY,
        env={"PYTHONNOUSERSITE": "1"},
    )
    assert imported.stdout.startswith(str(env.site_packages)), imported.stderr
    log = run([str(env.bin / "pip"), "log", "--json"], user=NOBODY)
    record = json.loads(log.stdout.splitlines()[-1])
    assert [item["name"] for item in record["changes"]["installed"]] == ["demo-a"]

    status = run([str(env.bin / "pip"), "status", "--json"], user=NOBODY)
    data = json.loads(status.stdout)
    (copy,) = data["user_site"]
    assert copy["name"] in ("demo-a", "demo_a") and copy["relation"] == "duplicates"
    assert copy["cleanup"].startswith("rm -r ")
    assert str(user_site(home) / "demo_a") in copy["cleanup"]
    text = run([str(env.bin / "pip"), "status"], user=NOBODY).stdout
    assert "duplicates the env's copy" in text and copy["cleanup"] in text
    removed = run(["sh", "-c", copy["cleanup"]], user=NOBODY)
    assert removed.returncode == 0 and not list(user_site(home).iterdir())
