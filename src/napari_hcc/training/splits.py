"""Splits that never put one rat on both sides: rat-grouped K-fold (stratified by arm) and the
validation rats used for early stopping."""

from __future__ import annotations

import numpy as np

from napari_hcc.errors import InputError


def rat_folds(rat_arm: dict[str, str], k: int, seed: int = 0) -> list[list[str]]:
    """K lists of rats (each rat in exactly one), balanced by arm as far as the counts allow."""
    if k < 2:
        raise InputError(f"cross-validation needs at least 2 folds (got {k}).")
    rats = sorted(rat_arm)
    if len(rats) < k:
        raise InputError(f"{k} folds need at least {k} rats; the study has {len(rats)}.")
    rng = np.random.default_rng(seed)
    folds: list[list[str]] = [[] for _ in range(k)]
    offset = 0
    for arm in sorted({rat_arm[r] or "" for r in rats}):
        members = [r for r in rats if (rat_arm[r] or "") == arm]
        members = [members[i] for i in rng.permutation(len(members))]
        for i, rat in enumerate(members):  # deal round-robin, continuing where the last arm stopped
            folds[(offset + i) % k].append(rat)
        offset += len(members)
    return [sorted(f) for f in folds]


def validation_rats(rat_arm: dict[str, str], fraction: float = 0.2, seed: int = 0) -> list[str]:
    """About `fraction` of the rats (at least one per arm where an arm has 3 or more rats, and never
    so many that fewer than 2 rats are left to train on). Empty when the cohort is too small or the
    fraction is 0 (adaptation to a few corrected scans: every one is trained on, the last epoch kept)."""
    rats = sorted(rat_arm)
    if len(rats) < 4 or fraction <= 0:
        return []
    rng = np.random.default_rng(seed + 7919)
    chosen = []
    for arm in sorted({rat_arm[r] or "" for r in rats}):
        members = [r for r in rats if (rat_arm[r] or "") == arm]
        n = int(round(fraction * len(members)))
        if n == 0 and len(members) >= 3:
            n = 1
        chosen += [members[i] for i in rng.permutation(len(members))[:n]]
    if not chosen:  # every arm has fewer than 3 rats: hold out one rat in all
        chosen = [rats[int(rng.integers(len(rats)))]]
    return sorted(chosen)


def epoch_indices(train_slices: np.ndarray, tumor: np.ndarray, share: float, seed: int, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([seed, epoch])
    with_tumor = train_slices[tumor[train_slices]]
    without = train_slices[~tumor[train_slices]]
    n_free = min(len(without), int(round(share * max(1, len(with_tumor)))))
    chosen = np.concatenate([with_tumor, rng.choice(without, n_free, replace=False) if n_free else without[:0]])
    return chosen[rng.permutation(len(chosen))]


def leaky_holdout(ds, k: int, fold: int, seed: int) -> np.ndarray:
    """Slice indices of fold `fold` of a shuffled slice-level K-fold (the paper's leaky protocol)."""
    order = np.random.default_rng([seed, 4242]).permutation(len(ds.y))
    return np.sort(np.array_split(order, k)[fold])
