import importlib.metadata

from packaging.version import Version

import safe_pip


def test_version_is_the_distributions_and_canonical() -> None:
    # the module's version is what pip and the audit records report for the distribution
    assert safe_pip.__version__ == importlib.metadata.version("safe-pip-policy")
    assert str(Version(safe_pip.__version__)) == safe_pip.__version__
