"""Post-processing of a tumor probability map, in millimetres (so it means the same at any voxel size).

1. threshold the probability;
2. remove connected components (26-connected, in 3-D) smaller than `min_component_mm3`;
3. fill holes enclosed within each axial slice (a necrotic core belongs to the tumor).

The settings come from the model card, can be changed by the user, and are recorded with every
prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from napari_hcc.errors import InputError
from napari_hcc.io.orientation import slice_axis, spacing


@dataclass
class PostProcess:
    threshold: float = 0.5
    min_component_mm3: float = 1.0
    fill_holes: bool = True

    @classmethod
    def from_card(cls, card, **overrides) -> PostProcess:
        base = cls(
            threshold=float(card.threshold),
            **{k: v for k, v in card.postprocess.items() if k in ("min_component_mm3", "fill_holes")},
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(base, key, value)
        base.check()
        return base

    def check(self) -> None:

        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"the probability threshold must lie between 0 and 1 (got {self.threshold}).")
        if self.min_component_mm3 < 0:
            raise InputError(f"the minimum component volume cannot be negative (got {self.min_component_mm3} mm^3).")

    def as_dict(self) -> dict:
        return asdict(self)

    def apply(self, probability: np.ndarray, affine: np.ndarray) -> np.ndarray:
        """Probability on a voxel grid -> uint8 mask on the same grid."""

        mask = (probability >= self.threshold).astype(np.uint8)
        if self.min_component_mm3 > 0 and mask.any():
            mask = remove_small_islands(mask, float(np.prod(spacing(affine))), self.min_component_mm3)
        if self.fill_holes and mask.any():
            mask = fill_holes(mask, axis=slice_axis(affine))
        return mask


def remove_small_islands(mask: np.ndarray, voxel_mm3: float, min_mm3: float) -> np.ndarray:
    """Drop 26-connected pieces smaller than `min_mm3`."""

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

    m = np.moveaxis(np.asarray(mask) > 0, axis, 0)
    out = np.stack([ndimage.binary_fill_holes(s) for s in m])
    return np.moveaxis(out, 0, axis).astype(np.asarray(mask).dtype)
