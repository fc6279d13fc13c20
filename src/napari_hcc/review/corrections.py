"""Where a study's corrections are saved: the study itself, except the packaged sample study."""

from __future__ import annotations

import shutil
from pathlib import Path

from napari_hcc.io.user_paths import sample_study, user_data_folder


def study_for_corrections(root: str | Path) -> Path:
    """Where a study's corrections are saved: the study itself, except for the sample study, which
    ships inside the package (or the repository); its corrections go to a working copy in the user's
    data folder, made on first use, so that the installation stays untouched."""

    root = Path(root)
    try:
        is_sample = root.resolve() == sample_study().resolve()
    except FileNotFoundError:
        is_sample = False
    if not is_sample:
        return root
    copy = user_data_folder() / "sample-study"
    if not (copy / "participants.tsv").exists():
        tmp = copy.with_name(copy.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(root, tmp, ignore=shutil.ignore_patterns("corrections"))
        shutil.rmtree(copy, ignore_errors=True)
        tmp.rename(copy)
    return copy
