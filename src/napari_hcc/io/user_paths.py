"""The user's napari-hcc data folder: `$XDG_DATA_HOME/napari-hcc`, else `~/.local/share/napari-hcc`.
Fine-tuned models, recovery files and the sample study's working copy live under it."""

from __future__ import annotations

import os
from pathlib import Path


def user_data_folder() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "napari-hcc"
