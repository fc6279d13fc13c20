"""One NIfTI volume: loading with checks, its voxel grid, comparing and resampling grids.

Every problem with a file is an `InputError`: one sentence naming the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.orientation import axcodes, spacing

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class Volume:
    data: np.ndarray  # float32, 3-D
    affine: np.ndarray
    header: object  # nibabel Nifti1Header
    path: Path

    @property
    def grid(self) -> str:
        return describe_grid(self.data.shape, self.affine)


def describe_grid(shape, affine) -> str:
    sp = spacing(affine)
    return f"{'x'.join(str(int(n)) for n in shape)} voxels of {'x'.join(f'{v:.2f}' for v in sp)} mm, {axcodes(affine)}"


def load_volume(path: str | Path, role: str = "image") -> Volume:
    """Load one NIfTI file as a 3-D float32 volume, or raise an InputError saying what is wrong."""

    path = Path(path)
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if path.is_dir():
        raise InputError(f"{role} {path} is a folder, not a NIfTI file.")
    if path.stat().st_size == 0:
        raise InputError(f"{role} file {path} is empty (0 bytes).")
    try:
        img = nib.load(str(path))
        if not hasattr(img, "affine") or img.affine is None:
            raise InputError(f"{role} file {path} has no spatial affine.")
        shape = img.shape
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            what = {2: "2-D", 4: "4-D", 5: "5-D"}.get(len(shape), f"{len(shape)}-D")
            raise InputError(
                f"{role} file {path} is {what} ({'x'.join(map(str, img.shape))}); one 3-D volume is needed."
            )
        if min(shape) < 1:
            raise InputError(f"{role} file {path} has an empty dimension ({'x'.join(map(str, img.shape))}).")
        if np.iscomplexobj(np.empty(0, dtype=img.get_data_dtype())) or img.get_data_dtype().names:
            raise InputError(
                f"{role} file {path} holds complex or RGB values; a real-valued magnitude image is needed."
            )
        data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(shape)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - nibabel, gzip and zlib raise many kinds; the user needs one sentence
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{role} file {path} could not be read as NIfTI ({reason}).") from None
    if int(img.header["qform_code"]) == 0 and int(img.header["sform_code"]) == 0:
        raise InputError(
            f"{role} file {path} has qform and sform codes 0: its orientation in the animal is unknown "
            "(voxel sizes only); set a scanner orientation (e.g. with nibabel or fslorient) before loading it."
        )
    affine = np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{role} file {path} has an invalid affine (singular or not finite); its geometry is unknown.")
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(
            f"{role} file {path} contains {int(bad.sum())} NaN or infinite voxels ({100 * bad.mean():.2g}%); "
            "replace them (e.g. with 0) before loading."
        )
    if role != "mask" and float(data.max()) == float(data.min()):
        raise InputError(f"{role} file {path} is blank (every voxel is {float(data.min()):g}).")
    return Volume(data, affine, img.header.copy(), path)


def same_grid(shape_a, affine_a, shape_b, affine_b, tol_mm: float = 1e-3) -> bool:
    """True when two volumes share one voxel grid (same shape, affines equal within `tol_mm`)."""
    if tuple(shape_a) != tuple(shape_b):
        return False
    corners = np.array(
        [[i, j, k, 1.0] for i in (0, shape_a[0] - 1) for j in (0, shape_a[1] - 1) for k in (0, shape_a[2] - 1)]
    )
    return bool(np.max(np.abs((corners @ np.asarray(affine_a).T) - (corners @ np.asarray(affine_b).T))) <= tol_mm)


def _world_box(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array(
        [[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)]
    )
    world = (corners @ np.asarray(affine).T)[:, :3]
    return world.min(axis=0), world.max(axis=0)


def overlap_fraction(ref_shape, ref_affine, shape, affine) -> float:
    """Share of the reference's field of view (bounding box in the world) covered by the other."""
    lo_a, hi_a = _world_box(ref_shape, ref_affine)
    lo_b, hi_b = _world_box(shape, affine)
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)
    return float(np.prod(inter) / np.prod(hi_a - lo_a))


def resample_to(vol: Volume, shape, affine, order: int) -> np.ndarray:
    """Resample `vol` onto the grid (shape, affine) in world coordinates (nibabel + scipy)."""

    img = nib.Nifti1Image(vol.data, vol.affine)
    out = nib.processing.resample_from_to(
        img, (tuple(shape), np.asarray(affine)), order=order, mode="constant", cval=0.0
    )
    return np.asarray(out.dataobj, dtype=np.float32)
