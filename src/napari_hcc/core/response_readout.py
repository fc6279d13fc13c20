"""The response readout: treatment arm and histology from the tumor's features (core/tumor_features).

The network finds the tumor; this readout reads it. Two linear models on the standardised
FEATURE_NAMES vector of a scan and its tumor mask:

* arm: multinomial logistic regression -> P(Control, Sorafenib, NK, Combination), fitted on
  post-baseline scans only (at week 0 no treatment has been given);
* histology: one ridge regression on logit(fraction) per arm (H&E viable and TUNEL apoptotic fraction),
  fitted on the one scan per rat where histology was measured, each on the rats of its arm; a scan's
  estimate is the mixture of the four, weighted by its arm probabilities. Histology depends on the
  treatment's mechanism (NK cells and the combination raise apoptosis most, and what a given intensity
  means differs by arm), which one linear model across arms cannot express. Each target gets its own
  regularisation, chosen by rat-grouped CV with out-of-fold arm probabilities as the weights.

Features are standardised and then clipped to the range the fitting scans spanned, so an unusual mask
or image (a real scan, a poor segmentation) cannot send a linear model far outside what it learned: on
the development cohorts one unclipped scan once read an apoptotic fraction of 0.9.

Why linear and why features: the network's own arm head, pooled over slices, learned the 24 training
rats and ranked unseen ones at a macro AUROC of about 0.86 (docs/model.md); a regularised linear model on
tumor intensity ratios fits from a few dozen rats without memorising them and is transparent (each
coefficient has a name). The regularisation strength of each model is chosen by rat-grouped
cross-validation inside the fitting set (scikit-learn), never on the rats it is scored on.

The fitted numbers travel inside the model's safetensors file under the `readout.` prefix, and the
card's `readout` entry says which features, which fitting set and the cross-validated scores. A model
without a readout uses the network's heads as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .tumor_features import FEATURE_NAMES, tumor_features

PREFIX = "readout."
ARM_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
RIDGE_ALPHA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
EPS = 1e-4


def _standardised(f: np.ndarray, mean: np.ndarray, scale: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    """Features (one row or many) in standard units, clipped to [low, high] when a range is given."""
    z = (np.asarray(f, np.float64) - mean) / scale
    return z if low is None else np.clip(z, low, high)


@dataclass
class Readout:
    features: list[str]
    mean: np.ndarray  # (F,) standardisation
    scale: np.ndarray  # (F,)
    arm_coef: np.ndarray  # (4, F)
    arm_intercept: np.ndarray  # (4,)
    #: per arm, on logit(fraction): (4 arms, 2 targets, F) and (4, 2). Readouts of model 1.1 had one
    #: stacked model, (2, F + 4) with the arm probabilities as inputs; they still load and read.
    bio_coef: np.ndarray
    bio_intercept: np.ndarray
    info: dict = field(default_factory=dict)
    #: range of the standardised features over the fitting scans; None = no clipping (model 1.1)
    z_low: np.ndarray | None = None
    z_high: np.ndarray | None = None

    def _z(self, f: np.ndarray) -> np.ndarray:
        return _standardised(f, self.mean, self.scale, self.z_low, self.z_high)

    def arm_probabilities(self, f: np.ndarray) -> np.ndarray:
        logits = self.arm_coef @ self._z(f) + self.arm_intercept
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def biomarkers(self, f: np.ndarray, arm_probabilities: np.ndarray) -> tuple[float, float]:
        """(viability, apoptosis) from the features and this scan's arm probabilities."""
        from scipy.special import expit

        w = np.asarray(arm_probabilities, np.float64)
        if self.bio_coef.ndim == 2:  # model 1.1: one model with the arm probabilities as inputs
            viability, apoptosis = expit(self.bio_coef @ np.concatenate([self._z(f), w]) + self.bio_intercept)
        else:
            viability, apoptosis = w @ expit(self.bio_coef @ self._z(f) + self.bio_intercept)
        return float(viability), float(apoptosis)

    def tensors(self) -> dict:
        import torch

        arrays = {"mean": self.mean, "scale": self.scale, "arm.weight": self.arm_coef, "arm.bias": self.arm_intercept,
                  "biomarkers.weight": self.bio_coef, "biomarkers.bias": self.bio_intercept}
        if self.z_low is not None:
            arrays |= {"clip.low": self.z_low, "clip.high": self.z_high}
        return {PREFIX + k: torch.as_tensor(np.asarray(v, np.float32)).contiguous() for k, v in arrays.items()}

    def card_entry(self) -> dict:
        return {"features": list(self.features), **self.info}

    @classmethod
    def from_tensors(cls, tensors: dict, entry: dict) -> Readout:
        def get(name):
            return np.asarray(tensors[PREFIX + name].float().numpy(), np.float64)

        clipped = PREFIX + "clip.low" in tensors
        return cls(list(entry["features"]), get("mean"), get("scale"), get("arm.weight"), get("arm.bias"),
                   get("biomarkers.weight"), get("biomarkers.bias"), {k: v for k, v in entry.items() if k != "features"},
                   get("clip.low") if clipped else None, get("clip.high") if clipped else None)


def split_state(state: dict) -> tuple[dict, dict]:
    """(network tensors, readout tensors) of a checkpoint's state."""
    net = {k: v for k, v in state.items() if not k.startswith(PREFIX)}
    return net, {k: v for k, v in state.items() if k.startswith(PREFIX)}


@dataclass
class FeatureRow:
    rat: str
    week: int | None
    arm: str | None
    viability: float | None
    apoptosis: float | None
    features: np.ndarray


def feature_rows(studies: Sequence[str | Path], progress: Callable[[int, int], None] | None = None) -> list[FeatureRow]:
    """Features of every outlined session (a reviewer's correction before the truth)."""
    from .training_data import labelled_sessions

    rows = []
    for item, scan, mask, _ in labelled_sessions(studies, progress=progress):
        f = tumor_features(scan, mask)
        if f is not None:
            rows.append(FeatureRow(item.rat, item.week, item.arm, item.viability, item.apoptosis, f))
    return rows


def _grouped_folds(groups: np.ndarray, k: int = 5):
    from sklearn.model_selection import GroupKFold

    k = min(k, len(set(groups)))
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups)) if k >= 2 else []


def _proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class, also when a fold's training rats lacked a class."""
    p = np.zeros((len(X), n_classes))
    p[:, model.classes_] = model.predict_proba(X)
    return p


def _arm_experts(Z: np.ndarray, L: np.ndarray, arm: np.ndarray, alpha: float, n_arms: int) -> tuple[np.ndarray, np.ndarray]:
    """One ridge model of logit(target) per arm, each on its arm's rows: (coef (A, F), intercept (A,)).
    An arm with fewer than two rows gets the mean of all rows (no slope)."""
    from sklearn.linear_model import Ridge

    coef, intercept = np.zeros((n_arms, Z.shape[1])), np.full(n_arms, float(L.mean()))
    for k in range(n_arms):
        here = arm == k
        if here.sum() >= 2:
            model = Ridge(alpha=alpha).fit(Z[here], L[here])
            coef[k], intercept[k] = model.coef_, model.intercept_
    return coef, intercept


def _mixture(coef: np.ndarray, intercept: np.ndarray, Z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return (weights * expit(Z @ coef.T + intercept)).sum(1)


def fit_readout(rows: Sequence[FeatureRow], arms: Sequence[str]) -> Readout:
    """Fit the arm model and the per-arm histology experts; every regularisation is chosen by rat-grouped
    5-fold CV on `rows`."""
    from scipy.special import logit
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    arm_rows = [r for r in rows if r.arm in arms and r.week is not None and r.week > 0]
    bio_rows = [r for r in rows if r.viability is not None and r.apoptosis is not None and r.arm in arms]
    if len({r.arm for r in arm_rows}) < len(arms):
        raise ValueError(f"the readout needs post-baseline scans of all {len(arms)} arms; these studies have {sorted({r.arm for r in arm_rows})}.")
    if len(bio_rows) < 4:
        raise ValueError(f"the readout needs histology for at least 4 rats; these studies have {len(bio_rows)}.")
    X_all = np.stack([r.features for r in rows])
    mean, scale = X_all.mean(0), X_all.std(0)
    scale[scale < 1e-9] = 1.0
    z_low, z_high = (X_all.min(0) - mean) / scale, (X_all.max(0) - mean) / scale

    def z(rs):
        return _standardised(np.stack([r.features for r in rs]), mean, scale, z_low, z_high)

    X, y = z(arm_rows), np.array([list(arms).index(r.arm) for r in arm_rows])
    groups = np.array([r.rat for r in arm_rows])
    folds = _grouped_folds(groups)
    cv = {}
    for c in ARM_C_GRID:
        p = np.zeros((len(y), len(arms)))
        for tr, te in folds:
            p[te] = _proba(LogisticRegression(C=c, max_iter=5000).fit(X[tr], y[tr]), X[te], len(arms))
        cv[c] = (log_loss(y, p, labels=range(len(arms))), roc_auc_score(y, p, multi_class="ovr"), float((p.argmax(1) == y).mean()))
    best_c = min(cv, key=lambda c: cv[c][0])
    arm_model = LogisticRegression(C=best_c, max_iter=5000).fit(X, y)

    # Arm probabilities of the histology rows, out-of-fold (each from a model that did not see the rat):
    # the experts' mixing weights while their regularisation is chosen.
    bio_groups = np.array([r.rat for r in bio_rows])
    bio_folds = _grouped_folds(bio_groups)
    Zb, bio_arm = z(bio_rows), np.array([list(arms).index(r.arm) for r in bio_rows])
    arm_oof = np.zeros((len(bio_rows), len(arms)))
    for tr, te in bio_folds:
        seen = set(bio_groups[tr])
        keep = np.array([g in seen for g in groups])
        arm_oof[te] = _proba(LogisticRegression(C=best_c, max_iter=5000).fit(X[keep], y[keep]), Zb[te], len(arms))
    Yb = np.array([[r.viability, r.apoptosis] for r in bio_rows], np.float64)
    Lb = logit(np.clip(Yb, EPS, 1 - EPS))
    bio_coef, bio_intercept = np.zeros((len(arms), 2, Zb.shape[1])), np.zeros((len(arms), 2))
    best_alpha, bio_rmse = [], []
    for t in range(2):  # each target its own regularisation
        rmse = {}
        for a in RIDGE_ALPHA_GRID:
            pred = np.zeros(len(Yb))
            for tr, te in bio_folds:
                pred[te] = _mixture(*_arm_experts(Zb[tr], Lb[tr, t], bio_arm[tr], a, len(arms)), Zb[te], arm_oof[te])
            rmse[a] = float(np.sqrt(((pred - Yb[:, t]) ** 2).mean()))
        a = min(rmse, key=rmse.get)
        bio_coef[:, t], bio_intercept[:, t] = _arm_experts(Zb, Lb[:, t], bio_arm, a, len(arms))
        best_alpha.append(a)
        bio_rmse.append(rmse[a])

    info = {
        "arm_model": "multinomial logistic regression (scikit-learn), standardised features clipped to the fitting range",
        "arm_C": best_c,
        "biomarker_model": "per-arm ridge regressions on logit(fraction) (scikit-learn), mixed by the arm probabilities",
        "biomarker_alpha": {"viability": best_alpha[0], "apoptosis": best_alpha[1]},
        "fitted_on": {"rats": sorted({r.rat for r in rows}), "arm_scans": len(arm_rows), "histology_scans": len(bio_rows)},
        "cross_validation": {
            "protocol": "rat-grouped 5-fold inside the fitting set (out-of-fold arm probabilities as the histology weights)",
            "arm_macro_auroc": round(cv[best_c][1], 4), "arm_accuracy": round(cv[best_c][2], 4),
            "viability_rmse": round(bio_rmse[0], 4), "apoptosis_rmse": round(bio_rmse[1], 4),
        },
    }
    return Readout(list(FEATURE_NAMES), mean, scale, arm_model.coef_.astype(np.float64), arm_model.intercept_.astype(np.float64),
                   bio_coef, bio_intercept, info, z_low, z_high)


def add_readout(model: str | Path | None, studies: Sequence[str | Path], out: str | Path, version: str | None = None,
                progress: Callable[[int, int], None] | None = None):
    """A new model in `out`: the network of `model` (None = the shipped default) plus a readout fitted
    on every outlined session of `studies`. The source model is never changed; `out` must be new.
    Returns the new model's card (as written, checksum included)."""
    import copy

    from .checkpoint import WEIGHTS_FILE, load_model, save_model
    from .study import InputError
    from .training_data import simulation_of

    out = Path(out)
    if (out / WEIGHTS_FILE).exists():
        raise InputError(f"{out} already holds a model; choose a new folder (models are never overwritten).")
    base = load_model(model)
    try:
        readout = fit_readout(feature_rows(studies, progress), base.card.arms)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    readout.info["studies"] = [str(Path(s).resolve()) for s in studies]
    readout.info["simulations"] = [sim for s in studies if (sim := simulation_of(s))]
    card = copy.deepcopy(base.card)
    card.version = version or card.version
    card.description = (card.description + "; " if card.description else "") + "response readout fitted by napari-hcc fit-readout"
    card.weights = {}
    save_model(base.build(), card, out, dtype=str(base.card.weights.get("dtype", "float16")), readout=readout)
    return card
