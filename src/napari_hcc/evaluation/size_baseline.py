"""The size criterion: how well tumor size alone tells the arms apart (the baseline to beat).

Features per post-baseline scan: log tumor volume, log change from the rat's baseline volume, the
week, and (where given) the longest axial diameter and its change, as RECIST-style reading uses.
A multinomial logistic regression is scored by macro one-vs-rest AUROC under cross-validation
grouped by rat and stratified by arm (scikit-learn), so no rat is on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.simulate.biology import draw_cohort, tumor_state
from napari_hcc.vocabulary import ARMS


@dataclass
class SizeRecord:
    rat: str
    arm: str
    week: int
    volume_mm3: float
    diameter_mm: float | None = None


def feature_row(r: SizeRecord, baseline: SizeRecord) -> list[float]:
    """Log volume, its change from baseline, the week, and (where known) the diameter and its change."""
    row = [np.log1p(r.volume_mm3), np.log1p(r.volume_mm3) - np.log1p(baseline.volume_mm3), r.week]
    if r.diameter_mm is not None and baseline.diameter_mm is not None:
        row += [r.diameter_mm, r.diameter_mm - baseline.diameter_mm]
    return row


def features(records: Sequence[SizeRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, groups) over post-baseline scans; a rat's baseline is its week-0 record."""
    base = {r.rat: r for r in records if r.week == 0}
    X, y, groups = [], [], []
    for r in records:
        if r.week == 0 or r.rat not in base:
            continue
        X.append(feature_row(r, base[r.rat]))
        y.append(ARMS.index(r.arm))
        groups.append(r.rat)
    return np.asarray(X, dtype=float), np.asarray(y), np.asarray(groups)


def size_only_auroc(records: Sequence[SizeRecord], folds: int = 5, seed: int = 0) -> dict:
    """Macro and per-arm one-vs-rest AUROC of the size classifier, rat-grouped cross-validation."""

    X, y, groups = features(records)
    n_rats_min = min(len(set(groups[y == k])) for k in range(len(ARMS)))
    folds = max(2, min(folds, n_rats_min))
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    proba = cross_val_predict(model, X, y, groups=groups, cv=cv, method="predict_proba")
    per_arm = {arm: float(roc_auc_score(y == k, proba[:, k])) for k, arm in enumerate(ARMS)}
    return {
        "macro_auroc": float(np.mean(list(per_arm.values()))),
        "per_arm": per_arm,
        "folds": folds,
        "scans": int(len(y)),
    }


def records_from_biology(seed: int, rats_per_arm: int, weeks: Sequence[int] = (0, 1, 2, 3)) -> list[SizeRecord]:
    """Size records straight from the growth model (no images): for large virtual cohorts."""

    return [
        SizeRecord(rat.participant_id, rat.arm, w, tumor_state(rat, w).volume_mm3, tumor_state(rat, w).diameter_mm)
        for rat in draw_cohort(seed, rats_per_arm)
        for w in weeks
    ]


def records_from_study(root) -> list[SizeRecord]:
    """Size records measured on a study's truth masks (volume and longest axial diameter)."""

    out = []
    for ref in find_scans(root):
        if ref.mask is None or ref.arm is None or not ref.session or not ref.session.startswith("wk"):
            continue
        m = load_volume(ref.mask, "mask")
        mask = m.data > 0
        out.append(
            SizeRecord(
                ref.subject,
                ref.arm,
                int(ref.session[2:]),
                volume_mm3(mask, m.affine),
                longest_axial_diameter_mm(mask, m.affine),
            )
        )
    return out
