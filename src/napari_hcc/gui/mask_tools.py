"""The mask-editing helpers on a napari Labels layer, each one undoable (Ctrl+Z) as a single step.

The arithmetic is in `review/mask_edit.py` (interpolation) and `inference/postprocess.py` (islands,
holes, the same functions that clean the model's mask); here the result is written back through
`Labels.data_setitem` inside `block_history`, which is how napari's own brush records its edits.
Layer data is in the display frame: axis 0 is the axial slice.
"""

from __future__ import annotations

import numpy as np

from napari_hcc.inference import postprocess
from napari_hcc.review import mask_edit


def apply_mask(labels, new: np.ndarray, label: int = 1) -> int:
    """Make the layer show `new` (0/1), as one undo step; return the number of voxels changed."""
    old = np.asarray(labels.data)
    target = np.where(np.asarray(new) > 0, label, 0).astype(old.dtype)
    changed = np.nonzero(old != target)
    if not changed[0].size:
        return 0
    with labels.block_history():
        labels.data_setitem(changed, target[changed])
    return int(changed[0].size)


def edited_slices(history_item) -> set[int]:
    """Display slices touched by one undo item (a paint event's value)."""
    touched: set[int] = set()
    for atom in history_item or ():
        key = getattr(atom, "slice_key", None)
        if key is not None:  # a masked atom: a bounding box of slices
            first = key[0]
            touched.update(range(first.start or 0, first.stop) if isinstance(first, slice) else [int(first)])
            continue
        indices = atom[0]
        if len(indices) and np.size(indices[0]):
            touched.update(int(k) for k in np.unique(indices[0]))
    return touched


def interpolate(labels, first: int, last: int) -> int:
    return apply_mask(labels, mask_edit.interpolate_between(np.asarray(labels.data) > 0, first, last, axis=0))


def remove_islands(labels, min_mm3: float) -> int:
    voxel_mm3 = float(np.prod(labels.scale))
    return apply_mask(labels, postprocess.remove_small_islands(np.asarray(labels.data) > 0, voxel_mm3, min_mm3))


def fill_holes(labels) -> int:
    return apply_mask(labels, postprocess.fill_holes(np.asarray(labels.data) > 0, axis=0))


def add_mask(labels, extra: np.ndarray) -> int:
    """Add `extra` (0/1, the layer's grid) to the mask: "Keep what was left out"."""
    return apply_mask(labels, (np.asarray(labels.data) > 0) | (np.asarray(extra) > 0))
