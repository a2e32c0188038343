"""Test infrastructure: real Python prefixes, hand-made wheels, and running as a hub user.

* `support.prefixes`: `base_python()` (cached interpreter copy outside /root),
  `make_prefix()` (plain / conda-env / conda-base prefixes),
  `add_conda_package()`, `make_conda_store_env()`.
* `support.conda_channel`: `local_channel()` (a cached conda channel indexed with
  py-rattler) and `rattler_env()` (a conda env solved and installed by py-rattler).
* `support.wheels`: `build_wheel()`, `make_project()`, `wheel_from_installed()`.
* `support.run`: `run_as()` / `Runner` (clean environment, setpriv to another uid,
  a per-process /etc/safe-pip/policy.toml), `install_setuptools()`, `safe_pip_cmd()`.

The fixtures in tests/conftest.py put these together; tests/test_support.py shows
each piece working.
"""
