"""npe2 reader: a BIDS session, a study, an original-layout animal folder, a NIfTI file, a DICOM folder or a
Bruker ParaVision study (folder or zip) in, as layers (a file of a scan opens the whole scan). Scanner
folders are imported into a BIDS study first (importing/scanner_folders.py), by the same code as
`napari-hcc import`. No napari or Qt import at module level."""

from __future__ import annotations

from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.importing.scanner_folders import imported_study, is_scanner_input
from napari_hcc.io.study import find_scans, is_bids_session, is_original_animal, scan_ref_for_file
from napari_hcc.io.volume import load_volume
from napari_hcc.plugin.layers import looks_like_labels, scan_layers, volume_layer


def napari_get_reader(path):
    """Return a reader for a BIDS session folder, an original-layout animal folder or a NIfTI file."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if is_bids_session(p) or is_original_animal(p):
        return read_scan_folder
    if p.is_dir() and (any(p.glob("sub-*/ses-*/anat")) or any(p.glob("ses-*/anat"))):
        return read_scan_folder  # a study or subject folder: its first session
    if p.name.endswith((".nii", ".nii.gz")):
        return read_nifti
    if is_scanner_input(p):
        return read_scanner_folder
    return None


def _notify(messages: list[str]) -> None:
    if not messages:
        return
    try:  # napari is there when the reader runs inside napari; tell the user what was resampled
        from napari.utils.notifications import show_info  # noqa: PLC0415 - lazy: the reader runs without napari too

        show_info("napari-hcc: " + " ".join(messages))
    except ImportError:
        pass


def read_scan_folder(path) -> list[tuple]:
    path = Path(path[0] if isinstance(path, list) else path)
    refs = find_scans(path)
    scan = refs[0].load()
    _notify(scan.notes)
    return scan_layers(scan)


def read_scanner_folder(path) -> list[tuple]:
    """A DICOM folder or ParaVision study: imported (once) into a BIDS study, then its first session."""
    path = Path(path[0] if isinstance(path, list) else path)
    study = imported_study(path)
    _notify([f"{path.name} was imported into the BIDS study {study}."])
    return read_scan_folder(study)


def read_nifti(path) -> list[tuple]:
    path = Path(path[0] if isinstance(path, list) else path)
    try:  # a file of a scan: open the whole scan, its sequences overlaid
        scan = scan_ref_for_file(path).load()
    except InputError:
        pass  # not part of a scan, or an incomplete one: show the file on its own
    else:
        _notify(scan.notes)
        return scan_layers(scan)
    vol = load_volume(path, "image")
    return [volume_layer(vol, looks_like_labels(vol))]
