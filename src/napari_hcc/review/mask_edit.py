"""Mask editing helpers a reader expects beside brush and eraser: interpolate between two drawn
slices, remove small islands (in mm^3), fill holes. Plain arrays in, new arrays out (undo is the
caller's: the napari widget records each change in the Labels layer's history)."""

from __future__ import annotations

import numpy as np


def _signed_distance(sl: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    if not sl.any():
        return np.full(sl.shape, -1e6)
    inside = ndimage.distance_transform_edt(sl)
    outside = ndimage.distance_transform_edt(~sl)
    return inside - outside


def interpolate_between(mask: np.ndarray, first: int, last: int, axis: int = 0) -> np.ndarray:
    """Shape-based interpolation: the slices strictly between `first` and `last` (along `axis`) become
    the blend of the two drawn outlines' signed distance maps. Both end slices must hold a mask."""
    from napari_hcc.io.study import InputError

    lo, hi = sorted((int(first), int(last)))
    if hi - lo < 2:
        raise InputError(f"slices {lo} and {hi} have no slice between them to fill.")
    m = np.moveaxis(np.asarray(mask) > 0, axis, 0)
    if not m[lo].any() or not m[hi].any():
        raise InputError(f"draw the tumor on both slices {lo} and {hi} first; one of them is empty.")
    a, b = _signed_distance(m[lo]), _signed_distance(m[hi])
    out = m.copy()
    for k in range(lo + 1, hi):
        t = (k - lo) / (hi - lo)
        out[k] = (1 - t) * a + t * b > 0
    return np.moveaxis(out, 0, axis).astype(np.asarray(mask).dtype)


def remove_small_islands(mask: np.ndarray, voxel_mm3: float, min_mm3: float) -> np.ndarray:
    """Drop 26-connected pieces smaller than `min_mm3`."""
    from scipy import ndimage

    m = np.asarray(mask) > 0
    labels, n = ndimage.label(m, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.asarray(mask).copy()
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_mm3
    keep = sizes >= min_mm3
    keep[0] = False
    return keep[labels].astype(np.asarray(mask).dtype)


def fill_holes(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Fill holes enclosed within each slice along `axis`."""
    from scipy import ndimage

    m = np.moveaxis(np.asarray(mask) > 0, axis, 0)
    out = np.stack([ndimage.binary_fill_holes(s) for s in m])
    return np.moveaxis(out, 0, axis).astype(np.asarray(mask).dtype)
