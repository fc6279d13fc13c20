"""A training batch as the trainer makes it, in one place: `Trainer.train_step` and any script that needs
batches like the trainer's (`scripts/recompute_bn.py`) call `make_batch`.

The order of the random draws is part of a run's identity (a resumed run repeats an uninterrupted one
exactly), so it is fixed here: the window corners (numpy `draws`), the augmentation (torch `gen`), then
sequence dropout (`draws` again).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from napari_hcc.training.anatomy import split_targets, stack_targets
from napari_hcc.training.augment import AugmentConfig, augment
from napari_hcc.training.sequence_dropout import crop, crop_windows, kept_sequences


@dataclass
class Batch:
    """Images (slice, sequence, y, x), the tumor mask, and the tissue classes when the data has them."""

    x: torch.Tensor
    mask: torch.Tensor
    organs: torch.Tensor | None


def make_batch(
    ds,
    part: np.ndarray,
    *,
    crop_px: int,
    draws: np.random.Generator,
    gen: torch.Generator,
    device: torch.device,
    augment_cfg: AugmentConfig,
    sequence_dropout: float,
    zero_missing: bool,
) -> Batch:
    """The slices `part` of a training set: a window of `crop_px` pixels holding the tumor where it fits
    (0: whole slices), augmented, then shown with fewer sequences with chance `sequence_dropout`; with
    `zero_missing` (a model that reads subsets) a sequence not shown is a plane of zeros, after the
    intensity jitter, exactly as inference shows a missing sequence."""
    xs, ys = ds.x[part], ds.y[part]
    organs = ds.anatomy[part] if ds.anatomy is not None else None
    if crop_px:
        corners = crop_windows(ys, crop_px, draws)
        xs, ys = crop(xs, corners, crop_px), crop(ys, corners, crop_px)
        organs = crop(organs, corners, crop_px) if organs is not None else None
    x = torch.from_numpy(xs.astype(np.float32)).to(device)
    x, y = augment(x, stack_targets(ys, organs).to(device), gen, augment_cfg)
    mask, organ_t = split_targets(y, organs is not None)
    keep = ds.sequences_present[part]
    if sequence_dropout > 0:
        keep = kept_sequences(keep, draws, sequence_dropout)
    if zero_missing:
        x = x * torch.from_numpy(keep.astype(np.float32))[:, :, None, None].to(device)
    return Batch(x, mask, organ_t)
