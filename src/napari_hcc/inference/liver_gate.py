"""Keep the tumors that lie in or on the liver: the anatomy gate of networks with an anatomy head.

An HCC grows in the liver. A network trained on the liver's neighbourhood still meets, in a real lab's
scan, organs and fields it has never been shown (a whole trunk, a kidney lit by the coil, a phantom tube
beside a mouse), and may call them tumor. The anatomy head (model/network.py) outlines the liver itself;
here each connected tumor candidate is kept only if liver makes up at least `min_share` of the shell
`ring_mm` wide around it (tumor voxels of the shell left out). A tumor inside the liver has a shell of
liver; one bulging out of it keeps a good share; a bright kidney or a tube, none or little. What is left
out is counted, so the output can say so.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: the liver probability at which a shell voxel counts as liver
LIVER_LEVEL = 0.5
#: the gate a trained model's card gets: the least share of liver around a kept tumor, the shell's width.
#: Chosen on development scans (docs/model.md): with a head whose validation liver Dice was 0.61, a share
#: of 0.1 lost no true tumor of 16 week-2 scans and halved the false-positive volume of the `varied` ones;
#: 0.25 removed a true tumor whose surroundings the head did not call liver
DEFAULT_MIN_SHARE = 0.1
DEFAULT_RING_MM = 1.5
#: the gate is switched on only for a head that outlines the validation rats' liver at least this well
#: (a head that outlines nothing real would remove true tumors; 0.61 was enough above)
GATE_MIN_LIVER_DICE = 0.5


def liver_share(component: np.ndarray, tumor: np.ndarray, liver: np.ndarray, spacing, ring_mm: float) -> float:
    """The share of liver in the shell `ring_mm` wide around `component` (boolean arrays of one grid, or
    of one box around the component with room for the shell)."""
    distance = ndimage.distance_transform_edt(~component, sampling=spacing)
    shell = (distance > 0) & (distance <= ring_mm) & ~tumor
    if not shell.any():  # the tumor fills its surroundings (or the field): nothing says it is off the liver
        return 1.0
    return float((liver[shell] >= LIVER_LEVEL).mean())


def gate_by_liver(
    mask: np.ndarray, liver: np.ndarray, spacing, ring_mm: float, min_share: float
) -> tuple[np.ndarray, float]:
    """(the mask with the components off the liver removed, their volume in mm^3)."""
    tumor = np.asarray(mask) > 0
    labels, n = ndimage.label(tumor, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return np.asarray(mask).copy(), 0.0
    margin = np.array([int(np.ceil(ring_mm / s)) + 1 for s in spacing])
    keep = np.ones(n + 1, bool)
    keep[0] = False
    for i, found in enumerate(ndimage.find_objects(labels), start=1):
        lo = np.maximum([s.start for s in found] - margin, 0)
        hi = np.minimum([s.stop for s in found] + margin, tumor.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        share = liver_share(labels[box] == i, tumor[box], liver[box], spacing, ring_mm)
        keep[i] = share >= min_share
    kept = keep[labels]
    dropped = float((tumor & ~kept).sum() * np.prod(spacing))
    return kept.astype(np.asarray(mask).dtype), dropped
