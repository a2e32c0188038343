import safe_pip


def test_version() -> None:
    assert safe_pip.__version__
