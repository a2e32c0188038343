"""The next step for a refused install on a read-only env, instead of a dead end.

- a package install: the env's spec (``safe-pip export``) with the requested
  requirements added to its ``pip:`` section, written to
  ``~/safe-pip-requests/<env>.environment.yml`` (printed when the home is not
  writable), with how to submit it to conda-store: its UI, or its REST API
  (``POST /api/v1/specification/``, for which the request body is written
  next to it, ready for ``curl --data @file``);
- a developer install (``pip install -e <dir>``): ``safe-pip devenv <dir>``, a
  dev env layered on this env (docs/develop.md).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping

from safe_pip.atomicwrite import write_atomic
from safe_pip.decide import is_dev_install
from safe_pip.door import door, own_command
from safe_pip.environment import Environment
from safe_pip.pipcli import Operation, requirement_file_requirements
from safe_pip.policy import Policy

SPEC_DIR = "safe-pip-requests"


def spec_path(name: str, home: str) -> str:
    safe_name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "env"
    return os.path.join(home, SPEC_DIR, f"{safe_name}.environment.yml")


def body_path(path: str) -> str:
    """The conda-store request body written next to the spec file."""
    return path[: -len(".environment.yml")] + ".specification.json"


def store_target(env: Environment, policy: Policy, environ: Mapping[str, str]) -> tuple[str, str]:
    """(namespace, environment name) a request for this env goes to in conda-store."""
    store = conda_store_env(env)
    namespace = policy.text("conda-store.namespace") or (store[0] if store else "")
    if not namespace:
        from safe_pip.audit.record import login_name

        namespace = login_name(os.getuid(), environ)
    return namespace, store[1] if store is not None else env.name


def request_body(
    namespace: str, name: str, text: str, requirements: list[str], environ: Mapping[str, str]
) -> dict[str, str]:
    from safe_pip.audit.record import login_name
    from safe_pip.audit.redact import redact_text

    asked = " ".join(redact_text(r) for r in requirements)
    who = login_name(os.getuid(), environ)
    return {
        "namespace": namespace,
        "specification": text,
        "environment_name": name,
        "environment_description": f"requested by {who} with safe-pip"
        + (f": {asked}" if asked else ""),
    }


def submit_by_hand(url: str, env_label: str, body: str | None) -> list[str]:
    """How to submit the request without ``safe-pip request``: the UI, or curl."""
    from safe_pip.condastore import API_PATH

    where = url or "conda-store"
    endpoint = f"{url or '<conda-store url>'}{API_PATH}"
    data = f"@{body}" if body else '\'{"namespace": ..., "specification": ...}\''
    return [
        f"by hand, in {where}: open the env {env_label}, edit its specification, "
        "replace it with the file, save",
        "  (a new build starts; the env switches to it when it succeeds)",
        "or with conda-store's REST API (a token from conda-store's user page):",
        f"  curl -X POST {endpoint} -H 'Authorization: Bearer <token>' \\",
        f"       -H 'Content-Type: application/json' --data {data}",
    ]


def conda_store_env(env: Environment) -> tuple[str, str] | None:
    """(namespace, name) of a conda-store env: ``<store>/<ns>/envs/<name>`` is a
    symlink to the build ``<store>/<ns>/<build key>``.  Found from the interpreter's
    path, or from the build dir (whichever way the env was reached)."""
    parts = os.path.abspath(env.python).split(os.sep)
    real = os.path.realpath(env.prefix)
    if len(parts) >= 6 and parts[-4] == "envs":
        link = os.sep.join(parts[:-2])
        if os.path.islink(link) and os.path.realpath(link) == real:
            return parts[-5], parts[-3]
    envs = os.path.join(os.path.dirname(real), "envs")
    try:
        entries = sorted(os.scandir(envs), key=lambda e: e.name)
    except OSError:
        return None
    for entry in entries:
        if entry.is_symlink() and os.path.realpath(entry.path) == real:
            return os.path.basename(os.path.dirname(real)), entry.name
    return None


def write_spec(path: str, text: str) -> None:
    write_atomic(path, text, mode=0o644, dir_mode=0o777)


def requested_requirements(op: Operation) -> list[str]:
    """What the user asked pip for, as lines of a spec's ``pip:`` section."""
    return [*op.args, *requirement_file_requirements(op)]


def read_only_hint(
    op: Operation, env: Environment, policy: Policy, environ: Mapping[str, str]
) -> str:
    """The ``instead:`` text of a read-only-env refusal (may write the spec file)."""
    if is_dev_install(op):
        return _devenv_hint(op, env, door(environ))
    return "\n".join(_spec_lines(op, env, policy, environ))


def _devenv_command(op: Operation, project: str, entry: str) -> str:
    argv = [entry, "devenv"]
    if op.python is not None:
        argv += ["--python", str(op.python.value)]
    return " ".join([*argv[:1], shlex.join([*argv[1:], project])])  # %pip unquoted


def _devenv_hint(op: Operation, env: Environment, entry: str) -> str:
    projects = list(op.editables) or ["."]
    lines = [
        "develop your package in a dev env layered on this env (it sees every package "
        "of the env, your project is its only own content, nothing goes to ~/.local/lib):",
    ]
    lines.extend(f"  {_devenv_command(op, project, entry)}" for project in projects)
    lines.append(
        f"then use that dev env's python, or pick its Jupyter kernel; see `{entry} devenv "
        "--help` and the hub's docs/develop.md"
    )
    lines.append(
        "a package your project needs that the env lacks: add it to the env's spec "
        f"(`{entry} export -o {env.name}.environment.yml`, then submit it)"
    )
    return "\n".join(lines)


def conda_specs_known(env: Environment) -> bool:
    """Whether ``conda-meta/history`` says which conda packages were asked for.

    An env built from a lock file (conda-store builds with conda-lock, ``conda
    create --file``) records no specs, so an export of it has no conda part: a
    spec made from it would drop every conda package of the env.
    """
    from safe_pip.conda_history import read_history
    from safe_pip.conda_records import read_records

    if not env.is_conda:
        return True
    names = [record.name for record in read_records(env.prefix).records]
    specs = read_history(env.prefix).export_specs(names)
    return bool(specs)


def _spec_lines(
    op: Operation, env: Environment, policy: Policy, environ: Mapping[str, str]
) -> list[str]:
    from safe_pip.audit.redact import redact_text
    from safe_pip.envspec import render
    from safe_pip.export import environment_name

    requirements = requested_requirements(op)
    url = policy.text("conda-store.url").rstrip("/")
    store = conda_store_env(env)
    namespace, name = store if store is not None else (None, env.name)
    where = url or "conda-store"
    env_label = f"{namespace}/{name}" if namespace else name
    if not conda_specs_known(env):
        # a lock-file build: only conda-store knows the spec; add the request to it there
        lines = [
            "ask for the package in the env's specification: in "
            f"{where}, open the env {env_label}, edit its specification and add under pip:",
        ]
        lines.extend(f"  - {redact_text(requirement)}" for requirement in requirements)
        lines += [
            "  then save (a new build starts; the env switches to it when it succeeds)",
            "(this env was built from a lock file, so its spec is not on disk here and "
            "safe-pip cannot write the whole file)",
        ]
        return [*lines, *_develop_line(op, door(environ))]
    rendered = render(
        env,
        environ,
        name=environment_name(name) if store is not None else None,
        extra_requirements=requirements,
    )
    text = rendered.text
    home = environ.get("HOME") or os.path.expanduser("~")
    path = spec_path(name, home)
    lines = [
        "ask for the package in the env's spec: here is the spec with your request "
        "added to its pip: section,"
    ]
    # what the spec keeps of the env, and what it cannot: never dropped in silence
    lines.extend(f"(note: {note})" for note in rendered.notes)
    body_file = body_path(path)
    try:
        write_spec(path, text)
        body_namespace, body_name = store_target(env, policy, environ)
        body = request_body(body_namespace, body_name, text, requirements, environ)
        write_spec(body_file, json.dumps(body, indent=1) + "\n")
        lines.append(f"ready to submit: {path}")
        written = True
    except OSError:
        lines.append("(your home is not writable, so here it is:)")
        lines.extend(f"  {line}" for line in text.splitlines())
        written = False
    if not env.is_conda:
        lines.append("rebuild the env from it, or " + _own_env(env))
        return lines
    if written:
        words = ["request"]
        if op.python is not None:
            words += ["--python", str(op.python.value)]
        lines.append(f"submit it to conda-store: {own_command(environ, shlex.join(words))}")
    lines += submit_by_hand(url, env_label, body_file if written else None)
    return [*lines, *_develop_line(op, door(environ))]


def _develop_line(op: Operation, entry: str) -> list[str]:
    if op.editables:
        return [f"editable installs cannot go into a spec: develop them with {entry} devenv <dir>"]
    return [f"to develop your own package against this env: {entry} devenv <project dir>"]


def _own_env(env: Environment) -> str:
    return (
        f"make your own venv: python{env.short_version} -m venv ~/venvs/myenv "
        "--system-site-packages"
    )
