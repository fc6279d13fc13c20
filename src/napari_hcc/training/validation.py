"""Validation during training: loss and per-scan metrics on un-augmented slices of the validation rats,
aggregated like inference does, and the score that picks the best epoch."""

from __future__ import annotations

import numpy as np
import torch

from napari_hcc.inference.aggregate import aggregate_scan
from napari_hcc.io.anatomy_labels import UNKNOWN
from napari_hcc.metrics import dice, macro_auroc
from napari_hcc.model.devices import autocast
from napari_hcc.training.dataset import slice_targets
from napari_hcc.training.losses import LossWeights, multitask_loss
from napari_hcc.vocabulary import ANATOMY, SEQUENCE_ROLES


def validate(
    net, ds, scan_ids: list[int], device, precision: str, weights: LossWeights, batch_size: int = 32, only=None
) -> dict:
    """Loss and per-scan metrics on un-augmented slices, aggregated like inference does. `only`: read
    just these sequences (the others as zeros), on the scans that have them."""

    net.eval()
    losses, dices, arm_true, arm_prob, bio_err, liver_dices = [], [], [], [], [], []
    liver = ANATOMY.index("liver")
    with torch.no_grad():
        channels = torch.tensor([r in only for r in SEQUENCE_ROLES], dtype=torch.float32) if only else None
        for i in scan_ids:
            s = ds.scans[i]
            idx = np.arange(s.start, s.stop)
            if only and not all(ds.sequences_present[s.start][SEQUENCE_ROLES.index(r)] for r in only):
                continue
            probs, arms, bios, organs = [], [], [], []
            for start in range(0, len(idx), batch_size):
                part = idx[start : start + batch_size]
                x = torch.from_numpy(ds.x[part].astype(np.float32)).to(device)
                if channels is not None:
                    x = x * channels.to(device)[None, :, None, None]
                x = x.contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(ds.y[part].astype(np.float32))[:, None].to(device)
                arm, bio = slice_targets(ds, part)
                with autocast(device, precision):
                    m, a, b, *organ_logits = net(x)
                organ_logits = organ_logits[0] if organ_logits else None
                organ_t = None
                if organ_logits is not None and ds.anatomy is not None:
                    organ_t = torch.from_numpy(ds.anatomy[part].astype(np.int64)).to(device)
                    organs.append(organ_logits.float().argmax(1).cpu().numpy())
                loss, _ = multitask_loss(
                    m,
                    a,
                    b,
                    y,
                    torch.from_numpy(arm).to(device),
                    torch.from_numpy(bio).to(device),
                    weights,
                    organ_logits,
                    organ_t,
                )
                losses.append((float(loss), len(part)))
                probs.append(torch.sigmoid(m.float())[:, 0].cpu().numpy())
                arms.append(torch.softmax(a.float(), 1).cpu().numpy())
                bios.append(torch.sigmoid(b.float()).cpu().numpy())
            prob = np.concatenate(probs)
            mask = prob >= 0.5
            dices.append(dice(mask, ds.y[idx]))
            if organs and (known := ds.anatomy[idx] != UNKNOWN).any():
                found = np.concatenate(organs) == liver
                liver_dices.append(dice(found & known, (ds.anatomy[idx] == liver) & known))
            agg = aggregate_scan(prob, mask, np.concatenate(arms)[None], np.concatenate(bios)[None])
            if s.arm_labelled:
                arm_true.append(s.arm_index)
                arm_prob.append(agg.arm_probabilities)
            if s.has_histology and agg.has_tumor:
                bio_err.append([agg.viability - s.viability, agg.apoptosis - s.apoptosis])
    net.train()
    out = {
        "val_loss": sum(v * n for v, n in losses) / max(1, sum(n for _, n in losses)),
        "val_dice": float(np.mean(dices)) if dices else float("nan"),
    }
    if liver_dices:
        out["val_liver_dice"] = float(np.mean(liver_dices))
    if arm_true:
        out["val_arm_accuracy"] = float(np.mean(np.argmax(arm_prob, 1) == np.array(arm_true)))
        out["val_arm_auroc"] = macro_auroc(np.array(arm_true), np.array(arm_prob))
    if bio_err:
        err = np.array(bio_err)
        out["val_viability_rmse"], out["val_apoptosis_rmse"] = (float(v) for v in np.sqrt((err**2).mean(0)))
    return out


def selection_score(row: dict, readout: bool = False) -> float:
    """What picks the best epoch: validation Dice + macro arm AUROC (each 0..1, the two headline
    targets). The multi-task validation loss was tried first: the arm and biomarker terms overfit early
    on 24 rats and stopped training while the Dice was still rising (0.90 -> 0.93).

    For a model that reads subsets, the Dice is the mean of the sessions' own sequences and the T2w
    alone. For a network whose arm is read by a readout (`readout`: the model it starts from carries
    one), the network's own arm head is not what users see: the Dice alone picks the epoch. (Model 2.0's
    first run picked its first epoch on a noisy head AUROC of 6 validation rats, while the Dice of its
    third was better on study, varied and T2w-alone development scans.)"""
    dice = row.get("val_dice", 0.0)
    if "val_dice_t2w" in row and np.isfinite(row["val_dice_t2w"]):
        dice = 0.5 * (dice + row["val_dice_t2w"])
    if readout:
        return float(dice)
    auroc = row.get("val_arm_auroc", float("nan"))
    return float(dice + (auroc if np.isfinite(auroc) else row.get("val_arm_accuracy", 0.0)))
