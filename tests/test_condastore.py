"""conda-store client pieces without a server: the request body and the user's token."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from safe_pip.condastore import NotSent, Submission, user_token
from safe_pip.policy import default_policy


def test_the_body_is_what_conda_store_takes() -> None:
    sub = Submission("https://hub/conda-store/", "analytics", "analysis", "why", "name: x\n")
    assert sub.body() == {
        "namespace": "analytics",
        "specification": "name: x\n",
        "environment_name": "analysis",
        "environment_description": "why",
    }
    assert sub.endpoint == "https://hub/conda-store/api/v1/specification/"
    assert sub.watch_url(7) == "https://hub/conda-store/api/v1/build/7/"


def test_the_token_comes_from_the_variable_then_the_users_own_file(tmp_path: Path) -> None:
    policy = default_policy()
    assert user_token(policy, {"CONDA_STORE_TOKEN": " abc \n", "HOME": str(tmp_path)}) == (
        "abc",
        "$CONDA_STORE_TOKEN",
    )
    token, looked = user_token(policy, {"HOME": str(tmp_path)})
    assert token is None and "conda-store-token" in looked
    path = tmp_path / ".config" / "safe-pip" / "conda-store-token"
    path.parent.mkdir(parents=True)
    path.write_text("from-file\n")
    os.chmod(path, 0o600)
    assert user_token(policy, {"HOME": str(tmp_path)})[0] == "from-file"
    os.chmod(path, 0o644)
    with pytest.raises(NotSent, match="chmod 600"):
        user_token(policy, {"HOME": str(tmp_path)})
    os.chmod(path, 0o600)
    path.rename(tmp_path / "real-token")
    path.symlink_to(tmp_path / "real-token")  # a link someone else may have planted
    assert user_token(policy, {"HOME": str(tmp_path)})[0] is None
