"""From slices to one scan: arm probabilities and biomarkers weighted by each slice's tumor content, and
the uncertainty of the mask. Plain numpy, shared by inference and training's validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ScanAggregate:
    arm_probabilities: np.ndarray
    arm_spread: np.ndarray  # standard deviation over the TTA passes
    viability: float
    apoptosis: float
    has_tumor: bool


def aggregate_scan(prob: np.ndarray, mask: np.ndarray, arms: np.ndarray, bios: np.ndarray) -> ScanAggregate:
    """Slices -> one scan: arm probabilities and biomarkers averaged with weights = each slice's
    predicted tumor content (the summed probability inside the mask).

    prob, mask: (N, H, W); arms: (F, N, 4) softmax per pass; bios: (F, N, 2) sigmoid per pass.
    Without a tumor the arms are the plain mean over slices and the biomarkers NaN.
    """
    weights = (np.asarray(prob, np.float64) * (np.asarray(mask) > 0)).reshape(len(prob), -1).sum(1)
    has_tumor = bool(weights.sum() > 0)
    w = weights / weights.sum() if has_tumor else np.full(len(weights), 1.0 / len(weights))
    per_pass = np.einsum("n,fna->fa", w, np.asarray(arms, np.float64))
    arm_p = per_pass.mean(0)
    arm_p = arm_p / arm_p.sum()
    if has_tumor:
        viability, apoptosis = (float(v) for v in w @ np.asarray(bios, np.float64).mean(0))
    else:
        viability = apoptosis = float("nan")
    return ScanAggregate(arm_p, per_pass.std(0), viability, apoptosis, has_tumor)


def mask_uncertainty(prob: np.ndarray, spread: np.ndarray | None) -> tuple[np.ndarray, float, str]:
    """Per slice and per scan, over the pixels that may be tumor (p > 0.05).

    With TTA: the mean standard deviation of the tumor probability across the flips ("tta-std").
    Without: the mean binary entropy of the probability, in bits ("entropy"). 0 = certain.
    """
    candidate = prob > 0.05
    if spread is not None:
        values, method = spread.numpy() if hasattr(spread, "numpy") else spread, "tta-std"
    else:
        p = np.clip(prob, 1e-6, 1 - 1e-6)
        values, method = -(p * np.log2(p) + (1 - p) * np.log2(1 - p)), "entropy"
    per_slice = np.zeros(len(prob))
    for k in range(len(prob)):
        c = candidate[k]
        per_slice[k] = float(values[k][c].mean()) if c.any() else 0.0
    scan = float(values[candidate].mean()) if candidate.any() else 0.0
    return per_slice, scan, method
