"""Small helpers shared by the tests: scans written on chosen grids."""

from pathlib import Path

import nibabel as nib
import numpy as np

from napari_hcc.io.scan import load_scan


def write_volume(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def write_scan(
    folder: Path, channels: list[np.ndarray], affine: np.ndarray, stem: str = "scan"
) -> tuple[Path, Path, Path]:
    """Write [T1w, T2w, CE] volumes as three NIfTI files on one grid."""
    folder.mkdir(parents=True, exist_ok=True)
    return tuple(
        write_volume(folder / f"{stem}_{role}.nii.gz", vol, affine)
        for role, vol in zip(("T1w", "T2w", "ce-gd_T1w"), channels)
    )


def scan_from_files(paths):
    return load_scan(*paths)
