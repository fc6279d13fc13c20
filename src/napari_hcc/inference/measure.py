"""Tumor measurements in millimetres: volume and the longest axial diameter (the RECIST size)."""

from __future__ import annotations

import numpy as np

from napari_hcc.io.orientation import slice_axis, spacing


def volume_mm3(mask: np.ndarray, affine: np.ndarray) -> float:
    return float(np.count_nonzero(mask) * np.prod(spacing(affine)))


def _row_ends(sl: np.ndarray) -> np.ndarray:
    """The first and last set voxel of each row of a 2D mask, as (row, column) pairs.

    Every vertex of the convex hull of a set of grid points is the end of its row, so the longest
    distance across the set (which joins two hull vertices) is found among these at most 2 x rows points.
    """

    rows = np.flatnonzero(sl.any(axis=1))
    cols = sl[rows]
    first = cols.argmax(axis=1)
    last = cols.shape[1] - 1 - cols[:, ::-1].argmax(axis=1)
    return np.concatenate([np.stack([rows, first], 1), np.stack([rows, last], 1)])


def longest_axial_diameter_mm(mask: np.ndarray, affine: np.ndarray) -> float:
    """Longest in-plane distance across the tumor on any axial slice (voxel centres, mm).

    The candidate ends are each row's first and last voxel (exact, see `_row_ends`), and the distances
    between them are taken in world millimetres, so anisotropic and oblique grids measure right.
    """

    axis = slice_axis(affine)
    in_plane = [a for a in range(3) if a != axis]
    best = 0.0
    lin = np.asarray(affine, dtype=float)[:3, :3]
    for k in range(mask.shape[axis]):
        sl = np.take(mask, k, axis=axis).astype(bool, copy=False)
        if np.count_nonzero(sl) < 2:
            continue
        pts = _row_ends(sl)
        world = pts[:, 0:1] * lin[:, in_plane[0]] + pts[:, 1:2] * lin[:, in_plane[1]]
        diff = world[:, None, :] - world[None, :, :]
        best = max(best, float(np.sqrt((diff**2).sum(-1).max())))
    return best
