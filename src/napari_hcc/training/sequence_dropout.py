"""Sequence dropout and random crops: what lets one network read any subset of the sequences, at any
field of view.

Sequence dropout: each training slice keeps the sequences its session has (all three, or fewer for a
lab without CE or with a T2w only) with probability 1 - p; otherwise one of the readable subsets
(`vocabulary.READABLE_SUBSETS`, each with a T1w or a T2w) that its session holds is drawn, and the
other channels become zeros, exactly as inference presents a missing sequence (`inference.slices`).
So the network learns to segment from T2w alone, T1w alone, T2w + CE, and to use each sequence
it is given.

Crops: the dataset's slices sit on one canvas (the largest field of view of the set, padded); a
training batch takes a window of `size` pixels from each, placed at random but so that the tumor lies
inside when it fits. Inference still runs on the whole slice: the network is convolutional, and the
heads pool over the predicted tumor.
"""

from __future__ import annotations

import numpy as np

from napari_hcc.vocabulary import READABLE_SUBSETS, SEQUENCE_ROLES

_SUBSET_MASKS = np.array([[r in s for r in SEQUENCE_ROLES] for s in READABLE_SUBSETS], bool)  # (K, 3)


def kept_sequences(present: np.ndarray, rng: np.random.Generator, p_drop: float) -> np.ndarray:
    """(B, 3) bool: the channels each slice keeps; `present` is (B, 3) bool (the session's sequences)."""
    keep = present.copy()
    for i in np.nonzero(rng.random(len(present)) < p_drop)[0]:
        fits = _SUBSET_MASKS[(~_SUBSET_MASKS | present[i]).all(1) & (present[i] != _SUBSET_MASKS).any(1)]
        if len(fits):
            keep[i] = fits[rng.integers(len(fits))]
    return keep


def crop_windows(y: np.ndarray, size: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Top-left corners of a size x size window per (H, W) mask of y (B, H, W): random, holding the
    tumor's bounding box when it fits."""
    _, h, w = y.shape
    corners = []
    for mask in y:
        lo, hi = [0, 0], [max(0, h - size), max(0, w - size)]
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        if len(rows):
            for k, idx in enumerate((rows, cols)):
                a, b = int(idx[0]), int(idx[-1]) + 1
                if b - a <= size:
                    lo[k], hi[k] = max(lo[k], b - size), min(hi[k], a)
        corners.append(tuple(int(rng.integers(lo[k], max(lo[k], hi[k]) + 1)) for k in range(2)))
    return corners


def crop(a: np.ndarray, corners: list[tuple[int, int]], size: int) -> np.ndarray:
    """(B, ..., H, W) -> (B, ..., size, size) at each corner (zero-padded where the canvas is smaller)."""
    h, w = a.shape[-2:]
    if h < size or w < size:
        pad = [(0, 0)] * (a.ndim - 2) + [(0, max(0, size - h)), (0, max(0, size - w))]
        a = np.pad(a, pad)
    return np.stack([a[i, ..., r : r + size, c : c + size] for i, (r, c) in enumerate(corners)])
