"""The multi-task loss, on logits (no sigmoid or softmax before a cross-entropy).

    total = w_mask * (soft Dice + BCE-with-logits)            every slice (tumor-free slices teach "no tumor")
          + w_slice_dice * mean over tumor slices of each one's soft Dice loss (optional, default 0)
          + w_arm  * cross-entropy(arm logits, arm)            tumor slices of post-baseline scans
          + w_bio  * mean squared error of the biomarkers,     tumor slices of the histology scan
                      each scaled by its spread (viability 0.1, apoptosis 0.02)
          + w_anatomy * cross-entropy of the anatomy classes,  every pixel whose class is known
                      (networks with an anatomy head; simulated sessions carry the tissue map)

The biomarker heads output logits; the error is taken on sigmoid(logit), the fraction itself, so the
loss is in the units the RMSE targets are stated in.

The soft Dice of the first term is taken over the whole batch, so a slice counts by its tumor's area:
a 40 mm^3 tumor on a coarse grid is a few dozen pixels beside a large one's thousands, and the network
can miss it at almost no cost. The per-slice term (`slice_dice`) gives every tumor slice one equal
share whatever its size, which is what a reader of small tumors needs; it is off by default so that
earlier models retrain as they were.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

#: an anatomy pixel whose class is unknown (io/anatomy_labels.UNKNOWN)
IGNORE = 255


@dataclass
class LossWeights:
    mask: float = 1.0
    arm: float = 0.5
    biomarkers: float = 0.25
    viability_scale: float = 0.1
    apoptosis_scale: float = 0.02
    anatomy: float = 0.5
    slice_dice: float = 0.0  # weight of the mean per-slice soft Dice loss over tumor slices

    def as_dict(self) -> dict:
        return asdict(self)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice over the whole batch (stable when some slices are empty)."""
    return 1 - _soft_dice(torch.sigmoid(logits).flatten(), target.flatten(), smooth)


def slice_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Mean over the slices that hold tumor of 1 - each slice's soft Dice (0 when none does)."""
    tumor = target.flatten(1).amax(1) > 0
    if not tumor.any():
        return logits.sum() * 0
    return (1 - _soft_dice(torch.sigmoid(logits[tumor]).flatten(1), target[tumor].flatten(1), smooth)).mean()


def _soft_dice(p: torch.Tensor, t: torch.Tensor, smooth: float) -> torch.Tensor:
    """Soft Dice along the last axis: of the whole batch for flat inputs, of each slice for (B, pixels)."""
    return (2 * (p * t).sum(-1) + smooth) / (p.sum(-1) + t.sum(-1) + smooth)


def multitask_loss(
    mask_logits, arm_logits, bio_logits, y, arm, bio, weights: LossWeights, anatomy_logits=None, anatomy=None
) -> tuple[torch.Tensor, dict]:
    """y: (B,1,H,W) {0,1}; arm: (B,) long, -1 where the arm is not a target; bio: (B,2), NaN where none;
    anatomy: (B,H,W) long class indices, 255 where unknown (with `anatomy_logits`, (B,K,H,W))."""
    mask_logits, arm_logits, bio_logits = mask_logits.float(), arm_logits.float(), bio_logits.float()
    seg = dice_loss(mask_logits, y) + F.binary_cross_entropy_with_logits(mask_logits, y)
    if weights.slice_dice:
        seg = seg + weights.slice_dice * slice_dice_loss(mask_logits, y)
    tumor = y.flatten(1).amax(1) > 0
    use_arm = tumor & (arm >= 0)
    arm_loss = F.cross_entropy(arm_logits[use_arm], arm[use_arm]) if use_arm.any() else arm_logits.sum() * 0
    use_bio = tumor & torch.isfinite(bio).all(1)
    if use_bio.any():
        scale = torch.tensor([weights.viability_scale, weights.apoptosis_scale], device=bio.device)
        err = (torch.sigmoid(bio_logits[use_bio]) - bio[use_bio]) / scale
        bio_loss = (err**2).mean()
    else:
        bio_loss = bio_logits.sum() * 0  # keeps every head in the graph (DistributedDataParallel needs it)
    total = weights.mask * seg + weights.arm * arm_loss + weights.biomarkers * bio_loss
    parts = {"seg": float(seg.detach()), "arm": float(arm_loss.detach()), "bio": float(bio_loss.detach())}
    if anatomy_logits is not None:
        anatomy_logits = anatomy_logits.float()
        if anatomy is not None and (anatomy != IGNORE).any():
            organ_loss = F.cross_entropy(anatomy_logits, anatomy, ignore_index=IGNORE)
        else:
            organ_loss = anatomy_logits.sum() * 0
        total = total + weights.anatomy * organ_loss
        parts["anatomy"] = float(organ_loss.detach())
    return total, {"loss": float(total.detach()), **parts}
