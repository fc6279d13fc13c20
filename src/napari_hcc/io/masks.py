"""Writing masks back on the exact source grid (affine and header kept), atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.atomic import save_nifti
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.orientation import affine_from_napari, from_display


def nifti_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.name.endswith((".nii", ".nii.gz")) else path.with_name(path.name + ".nii.gz")


def mask_image(mask: np.ndarray, affine: np.ndarray, header=None):
    """A uint8 NIfTI mask on the given grid; the source header's codes and units are kept."""

    hdr = (
        nib.Nifti1Header(binaryblock=header)
        if isinstance(header, bytes | bytearray)
        else (header.copy() if header is not None else None)
    )
    img = nib.Nifti1Image(mask.astype(np.uint8), np.asarray(affine), header=hdr)
    img.set_data_dtype(np.uint8)
    img.header.set_slope_inter(1.0, 0.0)
    if hdr is not None:  # keep the source's qform/sform codes (scanner, aligned...) exactly
        img.set_qform(np.asarray(affine), code=int(hdr["qform_code"]) or 1)
        img.set_sform(np.asarray(affine), code=int(hdr["sform_code"]) or 1)
    img.header["descrip"] = b"napari-hcc tumor mask"
    return img


def save_mask_like_source(
    display_data: np.ndarray, path, source: dict | None, scale=None, unit_affine=None, translate=None
) -> Path:
    """Save a display-frame mask (a napari Labels layer's data) as NIfTI.

    With `source` (the layer's recorded source grid) the mask goes back to the exact source voxel
    grid and header; without it, the napari scale/affine/translate define the grid.
    """
    path = nifti_path(path)
    data = np.asarray(display_data)
    if data.ndim != 3:
        raise InputError(f"cannot write {path.name}: the mask is {data.ndim}-D, a 3-D mask is needed.")
    if source:
        affine = np.asarray(source["affine"], dtype=float)
        try:
            voxels = from_display(data, affine, tuple(source["shape"]))
        except ValueError as exc:
            raise InputError(f"cannot write {path.name}: {exc}") from None
        img = mask_image(voxels, affine, source.get("header"))
    else:
        img = mask_image(data, affine_from_napari(scale, unit_affine, translate))
    save_nifti(img, path)
    return path
