"""Mask editing a reader expects beside brush and eraser: interpolate between two drawn slices.
Removing small islands (in mm^3) and filling holes are the model's own post-processing
(`inference/postprocess.py`), offered by the widget as editing helpers too. Plain arrays in, new
arrays out (undo is the caller's: the napari widget records each change in the Labels layer's history)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_hcc.errors import InputError


def _signed_distance(sl: np.ndarray) -> np.ndarray:

    if not sl.any():
        return np.full(sl.shape, -1e6)
    inside = ndimage.distance_transform_edt(sl)
    outside = ndimage.distance_transform_edt(~sl)
    return inside - outside


def interpolate_between(mask: np.ndarray, first: int, last: int, axis: int = 0) -> np.ndarray:
    """Shape-based interpolation: the slices strictly between `first` and `last` (along `axis`) become
    the blend of the two drawn outlines' signed distance maps. Both end slices must hold a mask."""

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
