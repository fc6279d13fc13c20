"""Tumor measurements in millimetres: volume and the longest axial diameter (the RECIST size)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import pdist

from napari_hcc.io.orientation import slice_axis, spacing


def volume_mm3(mask: np.ndarray, affine: np.ndarray) -> float:
    return float(np.count_nonzero(mask) * np.prod(spacing(affine)))


def longest_axial_diameter_mm(mask: np.ndarray, affine: np.ndarray) -> float:
    """Longest in-plane distance across the tumor on any axial slice (voxel centres, mm)."""

    axis = slice_axis(affine)
    in_plane = [a for a in range(3) if a != axis]
    best = 0.0
    lin = np.asarray(affine)[:3, :3]
    for k in range(mask.shape[axis]):
        sl = np.take(mask, k, axis=axis)
        pts = np.argwhere(sl)
        if len(pts) < 2:
            continue
        if len(pts) > 3:
            try:  # an affine map keeps hull vertices: take the hull in index space
                pts = pts[ConvexHull(pts).vertices]
            except QhullError:  # collinear voxels
                pass
        ijk = np.zeros((len(pts), 3))
        ijk[:, in_plane[0]], ijk[:, in_plane[1]], ijk[:, axis] = pts[:, 0], pts[:, 1], k
        world = ijk @ lin.T
        best = max(best, float(pdist(world).max()))
    return best
