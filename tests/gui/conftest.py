"""Fixtures of the napari tests."""

import pytest


@pytest.fixture
def user_folders(tmp_path, monkeypatch):
    """Models, recovery files and the sample's working copy go to a temporary home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NAPARI_HCC_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("NAPARI_HCC_RECOVERY", str(tmp_path / "recovery"))
    return tmp_path
