"""Post-processing of a tumor probability map, in millimetres (so it means the same at any voxel size).

1. threshold the probability;
2. remove connected components (26-connected, in 3-D) smaller than `min_component_mm3`;
3. for a network with an anatomy head, keep only the components that lie in or on the liver
   (`min_liver_share` of liver in the shell `liver_ring_mm` around each; 0 turns the gate off;
   `liver_gate.py`);
4. fill holes enclosed within each axial slice (a necrotic core belongs to the tumor).

The settings come from the model card, can be changed by the user, and are recorded with every
prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from napari_hcc.errors import InputError
from napari_hcc.inference.liver_gate import gate_by_liver
from napari_hcc.io.orientation import slice_axis, spacing

#: the post-processing settings a model card may set
POSTPROCESS_KEYS = ("min_component_mm3", "fill_holes", "min_liver_share", "liver_ring_mm")


@dataclass
class PostProcess:
    threshold: float = 0.5
    min_component_mm3: float = 1.0
    fill_holes: bool = True
    min_liver_share: float = 0.0  # 0: no anatomy gate (models without an anatomy head)
    liver_ring_mm: float = 1.5

    @classmethod
    def from_card(cls, card, **overrides) -> PostProcess:
        base = cls(
            threshold=float(card.threshold),
            **{k: v for k, v in card.postprocess.items() if k in POSTPROCESS_KEYS},
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
        if not 0.0 <= self.min_liver_share <= 1.0:
            raise InputError(
                f"the liver share of the anatomy gate must lie between 0 and 1 (got {self.min_liver_share})."
            )
        if self.liver_ring_mm <= 0:
            raise InputError(f"the anatomy gate's shell must be wider than 0 mm (got {self.liver_ring_mm}).")

    def as_dict(self) -> dict:
        return asdict(self)

    def apply(self, probability: np.ndarray, affine: np.ndarray, liver: np.ndarray | None = None) -> np.ndarray:
        """Probability on a voxel grid -> uint8 mask on the same grid (`liver`: the anatomy head's liver
        probability on that grid, for the gate)."""
        return self.apply_counted(probability, affine, liver)[0]

    def apply_counted(
        self, probability: np.ndarray, affine: np.ndarray, liver: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """`apply`, and what the anatomy gate left out (uint8 on the same grid; None where no gate ran), so
        that a reviewer can see it and keep it."""

        mask = (probability >= self.threshold).astype(np.uint8)
        if self.min_component_mm3 > 0 and mask.any():
            mask = remove_small_islands(mask, float(np.prod(spacing(affine))), self.min_component_mm3)
        left_out = None
        if liver is not None and self.min_liver_share > 0 and mask.any():
            gated, _ = gate_by_liver(mask, liver, spacing(affine), self.liver_ring_mm, self.min_liver_share)
            left_out, mask = (mask > gated).astype(np.uint8), gated
        if self.fill_holes and mask.any():
            mask = fill_holes(mask, axis=slice_axis(affine))
        return mask, left_out


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
