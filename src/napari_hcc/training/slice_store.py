"""Slices kept per scan, each scan on its own grid: what lets a cohort of many grid sizes fit in memory.

Labs differ in field of view and matrix, so a scan's slices in the model's frame range from 96 x 160 to
320 x 384 pixels. Padding every slice to the largest (one array for the whole set) made a `varied` cohort
of rats of many sizes three times its size (15,600 slices: 15 GB instead of 5). A `SliceStore` keeps one
array per scan and pads only when a selection mixes grids: to that selection's largest, centred, as the
one canvas did.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SliceStore:
    """(S, ..., H_s, W_s): S slices in per-scan arrays (each (n, ..., H, W)), indexed like one array along
    the first axis; a selection comes back as one array, zero-padded, centred, to its largest slice."""

    def __init__(self, parts: Sequence[np.ndarray]):
        self.parts = list(parts)
        sizes = [len(p) for p in self.parts]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.part_of = np.repeat(np.arange(len(self.parts)), sizes)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def dtype(self):
        return self.parts[0].dtype if self.parts else np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def __getitem__(self, key) -> np.ndarray:
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            k = int(key) + (len(self) if key < 0 else 0)
            out = self.parts[self.part_of[k]][k - self.starts[self.part_of[k]]]
            return out[rest] if rest else out
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.nonzero(idx)[0]
        out = self._take(idx.astype(np.int64).ravel())
        return out[(slice(None), *rest)] if rest else out

    def _take(self, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            shape = self.parts[0].shape[1:] if self.parts else ()
            return np.zeros((0, *shape), self.dtype)
        owners = self.part_of[idx]
        if (owners == owners[0]).all():  # one scan (validation, inference-like reads): no padding
            local = idx - self.starts[owners[0]]
            part = self.parts[owners[0]]
            if (np.diff(local) == 1).all():
                return part[local[0] : local[-1] + 1]
            return part[local]
        pieces = [self.parts[o][i - self.starts[o]] for i, o in zip(idx, owners, strict=True)]
        canvas = (max(p.shape[-2] for p in pieces), max(p.shape[-1] for p in pieces))
        return np.stack([on_canvas(p, canvas) for p in pieces])

    def per_slice(self, fn) -> np.ndarray:
        """fn(part) -> one value per slice of the part, concatenated over the parts: (S,)."""
        return np.concatenate([fn(p) for p in self.parts]) if self.parts else np.zeros(0)

    def any(self, fn) -> bool:
        """Whether fn(part) (a boolean array) holds anywhere."""
        return any(bool(fn(p).any()) for p in self.parts)

    def select_parts(self, parts: Sequence[int]) -> SliceStore:
        """The store of these scans only (their arrays shared, not copied)."""
        return SliceStore([self.parts[i] for i in parts])


def on_canvas(a: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """(..., H, W) zero-padded, centred, to the canvas (H, W)."""
    dh, dw = canvas[0] - a.shape[-2], canvas[1] - a.shape[-1]
    if not dh and not dw:
        return a
    pad = [(0, 0)] * (a.ndim - 2) + [(dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)]
    return np.pad(a, pad)
