"""Orientation from the affine: slice axis, display frame, and the exact way back to the source grid.

Display frame: array axes (S, P, L), i.e. axial slices along axis 0, anterior at the top of the screen
and the animal's right on the screen's left (radiological convention). Only flips and axis
permutations are used (no interpolation), so a mask drawn in the display frame maps back to the
source voxel grid exactly.
"""

from __future__ import annotations

import numpy as np

from napari_hcc.io.nibabel_without_pydicom import nib

ornt = nib.orientations

DISPLAY_AXES = ("S", "P", "L")
#: DICOM / ITK patient coordinates (LPS) <-> NIfTI RAS+: x and y change sign (its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: NIfTI RAS+ millimetres -> napari world (S, P, L) millimetres, i.e. (z, -y, -x).
RAS_TO_WORLD = np.array([[0, 0, 1, 0], [0, -1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def axcodes(affine: np.ndarray) -> str:
    """Orientation code of the voxel axes, e.g. 'LAS' (nearest axes for an oblique affine)."""
    return "".join(ornt.aff2axcodes(affine))


def spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size (mm) along each voxel axis."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def slice_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs closest to the scanner's superior-inferior (axial slice) direction."""
    return int(np.nonzero(ornt.io_orientation(affine)[:, 0] == 2)[0][0])


def _transform(affine: np.ndarray) -> np.ndarray:
    return ornt.ornt_transform(ornt.io_orientation(affine), ornt.axcodes2ornt(DISPLAY_AXES))


def to_display(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a 3-D volume to the display frame; return it and its napari world affine.

    napari world coordinates are (S, P, L) millimetres: (z, -y, -x) of the NIfTI RAS+ world.
    """
    t = _transform(affine)
    out = ornt.apply_orientation(data, t)
    aff = np.asarray(affine) @ ornt.inv_ornt_aff(t, data.shape)
    return np.ascontiguousarray(out), RAS_TO_WORLD @ aff


def from_display(data: np.ndarray, source_affine: np.ndarray, source_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `to_display`: a display-frame volume back on the source voxel grid."""
    t = _transform(source_affine)
    inverse = ornt.ornt_transform(ornt.axcodes2ornt(DISPLAY_AXES), ornt.io_orientation(source_affine))
    out = ornt.apply_orientation(data, inverse)
    expected = tuple(int(n) for n in source_shape)
    if out.shape != expected:
        shown = tuple(int(n) for n in ornt.apply_orientation(np.empty(expected, dtype=np.uint8), t).shape)
        raise ValueError(
            f"the mask has shape {data.shape} but the source grid shows as {shown}; it is not on the source grid."
        )
    return np.ascontiguousarray(out)


def split_scale(world_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a world affine into voxel size (napari `scale`) and the unit rotation + translation."""
    scale = np.linalg.norm(world_affine[:3, :3], axis=0)
    unit = world_affine.copy()
    unit[:3, :3] = world_affine[:3, :3] / scale
    return scale, unit


def affine_from_napari(scale, unit_affine=None, translate=None) -> np.ndarray:
    """The NIfTI (RAS+) affine of a display-frame array shown in napari with this scale, affine
    and translate: the way back for layers that carry no recorded source grid."""
    unit = np.asarray(unit_affine if unit_affine is not None else np.eye(4), dtype=float)
    world = unit @ np.diag([float(v) for v in (scale if scale is not None else (1, 1, 1))] + [1.0])
    if translate is not None:
        world[:3, 3] += unit[:3, :3] @ np.asarray(translate, dtype=float)
    return np.linalg.inv(RAS_TO_WORLD) @ world
