"""Whether a run trains the anatomy head (model/network.py), and its targets for a batch.

`--anatomy` gives a model the head (a new one, or an older one through `--init`); a model that already
has it keeps it (fine-tuning on a lab's corrections, which have no tissue map, teaches the outline
alone). A head that no tissue map taught would outline nothing real, so asking for it on studies
without tissue maps is refused in one sentence."""

from __future__ import annotations

import numpy as np
import torch

from napari_hcc.errors import InputError
from napari_hcc.io.anatomy_labels import UNKNOWN


def wants_anatomy(asked: bool | None, card) -> bool:
    """`asked`: the `--anatomy` option (None: not given). True when the run should have the head."""
    return bool(card.architecture.get("anatomy")) if asked is None else bool(asked)


def check_anatomy(ds, base_has_head: bool, studies) -> None:
    """After the dataset is built: an InputError when a new head was asked for and no session has a
    tissue map to teach it."""
    known = ds.anatomy is not None and ds.anatomy.any(lambda a: a != UNKNOWN)
    if not known and not base_has_head:
        names = ", ".join(str(s) for s in studies)
        raise InputError(
            f"--anatomy needs the simulator's tissue maps (derivatives/truth/*_desc-tissue_dseg.nii.gz); "
            f"no session of {names} has one."
        )


def split_targets(y: torch.Tensor, with_organs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The augmented (B, 1 or 2, H, W) targets -> the tumor mask (B, 1, H, W) and the anatomy classes
    (B, H, W) long, or None."""
    if not with_organs:
        return y, None
    return y[:, :1], y[:, 1].round().long()


def stack_targets(mask: np.ndarray, organs: np.ndarray | None) -> torch.Tensor:
    """(B, H, W) mask and anatomy -> (B, 1 or 2, H, W) float, so one geometric transform moves both
    (nearest-neighbour keeps the class indices whole)."""
    planes = [mask] if organs is None else [mask, organs]
    return torch.from_numpy(np.stack(planes, axis=1).astype(np.float32))
