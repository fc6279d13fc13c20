"""Where napari-hcc keeps things: the user's data folder (`$XDG_DATA_HOME/napari-hcc`, else
`~/.local/share/napari-hcc`), where fine-tuned models, recovery files and the sample study's working
copy live; the user's cache folder (`$XDG_CACHE_HOME/napari-hcc`, else `~/.cache/napari-hcc`), for what
can be made again (compiled graphs); and the sample study that ships with the package."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def user_data_folder() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "napari-hcc"


def user_cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-hcc"


def sample_study() -> Path:
    """The sample study's root: inside the installed package, or the repository's sample_data/."""
    packaged = Path(str(resources.files("napari_hcc"))) / "_sample_data" / "study"
    if packaged.is_dir():
        return packaged
    in_repo = Path(__file__).resolve().parents[3] / "sample_data" / "study"  # editable install
    if in_repo.is_dir():
        return in_repo
    raise FileNotFoundError("the napari-hcc sample study is missing from this installation; reinstall the package.")
