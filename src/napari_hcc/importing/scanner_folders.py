"""Opening a scanner folder (DICOM, ParaVision) where a BIDS study is expected: the napari reader and the
Study browser import it, with the default map, into a BIDS study under the user's data folder
(`imported/<name>-<hash of its path>`), once, and then read that study like any other. The same
`import_study` as the command line does the work; corrections saved on it land in that study.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.importing.importer import import_study
from napari_hcc.io.bruker import is_bruker_study
from napari_hcc.io.dicom import is_dicom_folder
from napari_hcc.io.study import is_bids_session
from napari_hcc.io.user_paths import user_data_folder


def is_scanner_input(path: Path) -> bool:
    """A ParaVision study (folder or zip) or a folder of DICOM files (not a BIDS study or session)."""
    path = Path(path)
    if is_bruker_study(path):
        return True
    if not path.is_dir() or is_bids_session(path) or any(path.glob("sub-*")):
        return False
    return is_dicom_folder(path)


def imported_study_folder(path: Path) -> Path:
    key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:10]
    return user_data_folder() / "imported" / f"{Path(path).name}-{key}"


def imported_study(path: str | Path) -> Path:
    """The BIDS study made from a scanner folder: imported now, or found from an earlier import."""
    path = Path(path)
    out = imported_study_folder(path)
    if any(out.glob("sub-*/ses-*/anat/*.nii.gz")):
        return out
    try:
        import_study([path], out)
    except InputError as exc:
        raise InputError(
            f"{exc} To choose roles yourself, run `napari-hcc import {path} -o STUDY --map MAP.json` and open STUDY."
        ) from None
    return out
