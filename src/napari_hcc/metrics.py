"""Scores against the truth: overlap and surface distance in millimetres, arm classification, histology
regression, and bootstrap confidence intervals over rats (scikit-learn and scipy do the maths).

One module for every stage that scores: evaluation, training's validation and the provenance of a saved
correction (Dice of the model's mask against the reader's). It sits low in the layers for that reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from napari_hcc.io.orientation import spacing


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0, truth > 0
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else float(2 * (p & t).sum() / denom)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    p, t = pred > 0, truth > 0
    union = (p | t).sum()
    return 1.0 if union == 0 else float((p & t).sum() / union)


def _surface(mask: np.ndarray) -> np.ndarray:

    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def hd95_mm(pred: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> float:
    """95th percentile of the symmetric surface distance in mm; NaN when either mask is empty."""

    p, t = pred > 0, truth > 0
    if not p.any() or not t.any():
        return float("nan")
    sp = spacing(affine)
    sp_, st = _surface(p), _surface(t)
    to_t = ndimage.distance_transform_edt(~st, sampling=sp)[sp_]
    to_p = ndimage.distance_transform_edt(~sp_, sampling=sp)[st]
    return float(np.percentile(np.concatenate([to_t, to_p]), 95))


def auroc(positives: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney rank statistic (ties count one half): the value
    scikit-learn's `roc_auc_score` gives, at a small fraction of its cost, which matters inside a
    bootstrap of a thousand resamples. NaN when one class is absent."""
    from scipy.stats import rankdata  # noqa: PLC0415 - lazy: scipy.stats is slow to import (see below)

    positives = np.asarray(positives, bool)
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean one-vs-rest AUROC over the classes present with both outcomes (NaN if none)."""
    y = np.asarray(y, int)
    aucs = [auroc(y == k, proba[:, k]) for k in range(proba.shape[1])]
    aucs = [a for a in aucs if np.isfinite(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def arm_metrics(y: np.ndarray, proba: np.ndarray, arms: Sequence[str]) -> dict:
    """One-vs-rest AUROC (macro and per arm), accuracy, confusion matrix, sensitivity and
    specificity per arm, and calibration (Brier score, expected calibration error)."""
    # lazy: scikit-learn takes half a second to import; the review widget needs only Dice from here
    from sklearn.metrics import confusion_matrix  # noqa: PLC0415

    y = np.asarray(y, int)
    proba = np.asarray(proba, float)
    pred = proba.argmax(1)
    out: dict = {"n": int(len(y)), "accuracy": float((pred == y).mean()) if len(y) else float("nan")}
    per_arm = {}
    for k, arm in enumerate(arms):
        positives = y == k
        auc = auroc(positives, proba[:, k])
        tp = int(((pred == k) & positives).sum())
        fn = int(((pred != k) & positives).sum())
        tn = int(((pred != k) & ~positives).sum())
        fp = int(((pred == k) & ~positives).sum())
        per_arm[arm] = {
            "auroc": auc,
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "n": int(positives.sum()),
        }
    out["per_arm"] = per_arm
    aucs = [v["auroc"] for v in per_arm.values() if np.isfinite(v["auroc"])]
    out["macro_auroc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["confusion"] = confusion_matrix(y, pred, labels=list(range(len(arms)))).tolist()
    onehot = np.eye(len(arms))[y]
    out["brier"] = float(((proba - onehot) ** 2).sum(1).mean()) if len(y) else float("nan")
    out["ece"], out["reliability"] = _calibration(pred == y, proba.max(1))
    return out


def _calibration(correct: np.ndarray, confidence: np.ndarray, bins: int = 10) -> tuple[float, list[dict]]:
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (confidence > lo) & (confidence <= hi)
        if sel.any():
            acc, conf = float(correct[sel].mean()), float(confidence[sel].mean())
            ece += sel.mean() * abs(acc - conf)
            rows.append({"low": float(lo), "high": float(hi), "n": int(sel.sum()), "accuracy": acc, "confidence": conf})
    return float(ece), rows


def regression_metrics(pred: np.ndarray, truth: np.ndarray) -> dict:
    from scipy.stats import spearmanr  # noqa: PLC0415 - lazy: scipy.stats is slow to import, as above

    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    ok = np.isfinite(pred) & np.isfinite(truth)
    pred, truth = pred[ok], truth[ok]
    if len(pred) < 2:
        return {"n": int(len(pred)), "rmse": float("nan"), "r2": float("nan"), "spearman": float("nan")}
    rmse = float(np.sqrt(np.mean((pred - truth) ** 2)))
    ss = float(((truth - truth.mean()) ** 2).sum())
    r2 = float(1 - ((pred - truth) ** 2).sum() / ss) if ss > 0 else float("nan")
    rho = spearmanr(pred, truth).statistic if np.ptp(pred) > 0 and np.ptp(truth) > 0 else float("nan")
    return {"n": int(len(pred)), "rmse": rmse, "r2": r2, "spearman": float(rho)}


def bootstrap_ci(
    groups: Sequence[str], statistic: Callable[[np.ndarray], float], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of `statistic(row indices)` when whole rats are resampled."""
    groups = np.asarray(groups)
    rats = np.unique(groups)
    rows_of = {r: np.nonzero(groups == r)[0] for r in rats}
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.choice(rats, len(rats), replace=True)
        idx = np.concatenate([rows_of[r] for r in pick])
        with np.errstate(all="ignore"):
            try:
                v = statistic(idx)
            except ValueError:  # e.g. a resample with one class only
                continue
        if v is not None and np.isfinite(v):
            values.append(v)
    if len(values) < max(10, n // 10):
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
