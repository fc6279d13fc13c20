"""The response readout: treatment arm and histology from the tumor's features (core/tumor_features).

The network finds the tumor; this readout reads it. Two linear models on the standardised
FEATURE_NAMES vector of a scan and its tumor mask:

* arm: multinomial logistic regression -> P(Control, Sorafenib, NK, Combination), fitted on
  post-baseline scans only (at week 0 no treatment has been given). At a treated scan the reading is
  pooled with the rat's earlier treated scans (normalised geometric mean of their probabilities), as a
  radiologist reads a follow-up against the earlier ones (core/rat_history.py);
* histology: one ridge regression on logit(fraction) per arm (H&E viable and TUNEL apoptotic fraction),
  fitted on the one scan per rat where histology was measured, each on the rats of its arm; a scan's
  estimate is the mixture of the four, weighted by its arm probabilities. Histology depends on the
  treatment's mechanism (NK cells and the combination raise apoptosis most, and what a given intensity
  means differs by arm), which one linear model across arms cannot express. Each target gets its own
  regularisation, chosen by rat-grouped CV with out-of-fold arm probabilities as the weights.
* apoptosis, from model 1.3: the TUNEL index varies within an arm with how strongly each rat responds,
  and that shows in the tumor's make-up more than in any one intensity. A first stage estimates the
  tumor's composition (necrosis, oedema, apoptotic index, viable perfusion; core/tumor_composition.py)
  from the features, fitted on every session against the simulator's truth; the second reads apoptosis
  per arm (ridge on the fraction itself) from the estimates now, at baseline, and on average over the
  treated sessions in between. The route is kept only when rat-grouped CV inside the fitting set says it
  beats reading the scan's features alone; studies without composition truth use the scan's features.

Features are standardised and then clipped to the range the fitting scans spanned, so an unusual mask
or image (a real scan, a poor segmentation) cannot send a linear model far outside what it learned: on
the development cohorts one unclipped scan once read an apoptotic fraction of 0.9.

Why linear and why features: the network's own arm head, pooled over slices, learned the 24 training
rats and ranked unseen ones at a macro AUROC of about 0.86 (docs/model.md); a regularised linear model on
tumor intensity ratios fits from a few dozen rats without memorising them and is transparent (each
coefficient has a name). The regularisation strength of each model is chosen by rat-grouped
cross-validation inside the fitting set (scikit-learn), never on the rats it is scored on.

The readout is fitted on the masks it will read: the network's own, run over the fitting studies
(`add_readout`), not the truth, so its inputs at fitting and at prediction look alike.

The fitted numbers travel inside the model's safetensors file under the `readout.` prefix, and the
card's `readout` entry says which features, which fitting set and the cross-validated scores. A model
without a readout uses the network's heads as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.readout.history import RatHistory
from napari_hcc.readout.composition import TARGETS as COMPOSITION_TARGETS
from napari_hcc.readout.features import FEATURE_NAMES, tumor_features

PREFIX = "readout."
MIN_COMPOSITION_SCANS = 20  # fewer sessions with composition truth: apoptosis from the scan's features
ARM_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
RIDGE_ALPHA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
EPS = 1e-4


def _standardised(f: np.ndarray, mean: np.ndarray, scale: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    """Features (one row or many) in standard units, clipped to [low, high] when a range is given."""
    z = (np.asarray(f, np.float64) - mean) / scale
    return z if low is None else np.clip(z, low, high)


def _standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, low, high) of the fitting rows X for `_standardised`: a constant column keeps scale 1,
    and low/high are the range the rows span in standard units (what reading clips to)."""
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-9] = 1.0
    return mean, scale, (X.min(0) - mean) / scale, (X.max(0) - mean) / scale


def pooled_arm_probabilities(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """One arm reading from several scans of a rat: the normalised geometric mean of their probabilities."""
    logp = np.mean([np.log(np.clip(np.asarray(p, np.float64), 1e-12, 1.0)) for p in probabilities], axis=0)
    e = np.exp(logp - logp.max())
    return e / e.sum()


def history_vector(now: np.ndarray, baseline: np.ndarray | None, between: Sequence[np.ndarray]) -> np.ndarray:
    """[now, at baseline, mean over the treated sessions in between], this scan's own value standing in
    for what the rat lacks; the one rule for fitting (`_history_rows`) and reading (`Readout.read`)."""
    return np.concatenate([now, now if baseline is None else baseline, np.mean(between, axis=0) if len(between) else now])


@dataclass
class Reading:
    """What the readout says of one scan."""

    arm_probabilities: np.ndarray
    viability: float
    apoptosis: float
    sessions: list[str] = field(default_factory=list)  # the rat's earlier sessions it read beside this scan


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
    #: model 1.3: the composition stage (len(COMPOSITION_TARGETS), F) and (T,), the standardisation of the
    #: history vector (3 T,) with its range, and the per-arm apoptosis experts on it (A, 3 T) and (A,)
    comp_coef: np.ndarray | None = None
    comp_intercept: np.ndarray | None = None
    hist_mean: np.ndarray | None = None
    hist_scale: np.ndarray | None = None
    hist_low: np.ndarray | None = None
    hist_high: np.ndarray | None = None
    apo_coef: np.ndarray | None = None
    apo_intercept: np.ndarray | None = None
    pools_sessions: bool = False  # model 1.3: the arm is read over the rat's treated sessions

    def __post_init__(self):
        unknown = [n for n in self.features if n not in FEATURE_NAMES]
        if unknown:
            raise ValueError(f"the readout uses features this version of napari-hcc does not compute: {', '.join(unknown[:3])}.")
        self._index = np.array([FEATURE_NAMES.index(n) for n in self.features], int)

    def _z(self, f: np.ndarray) -> np.ndarray:
        """Standard units of the readout's own features, from a full FEATURE_NAMES vector."""
        return _standardised(np.asarray(f, np.float64)[self._index], self.mean, self.scale, self.z_low, self.z_high)

    @property
    def reads_history(self) -> bool:
        return self.pools_sessions or self.comp_coef is not None

    def arm_probabilities(self, f: np.ndarray) -> np.ndarray:
        """The arm probabilities of one scan alone."""
        logits = self.arm_coef @ self._z(f) + self.arm_intercept
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def composition(self, f: np.ndarray) -> np.ndarray | None:
        """The composition estimate (COMPOSITION_TARGETS) of one scan; None without that stage."""
        return None if self.comp_coef is None else self.comp_coef @ self._z(f) + self.comp_intercept

    def read(self, f: np.ndarray, history: RatHistory | None = None) -> Reading:
        """Arm and histology of a scan, with the rat's earlier sessions where the readout uses them."""
        history = history or RatHistory()
        p = self.arm_probabilities(f)
        if self.pools_sessions and history.treated and history.earlier:
            p = pooled_arm_probabilities([p] + [self.arm_probabilities(e) for e in history.earlier])
        viability, apoptosis = self.biomarkers(f, p)
        has_history = bool(history.earlier) or (history.baseline is not None and history.treated)
        if self.comp_coef is not None and has_history:
            # Without any earlier session (a loose file) the composition route would read far outside what
            # it was fitted on (every endpoint it learned from had its baseline and follow-ups): the
            # scan's own experts answer instead.
            apoptosis = self._apoptosis_from_history(f, history, p)
        used = history.sessions if self.reads_history and has_history else []
        return Reading(p, viability, apoptosis, list(used))

    def _apoptosis_from_history(self, f: np.ndarray, history: RatHistory, weights: np.ndarray) -> float:
        baseline = self.composition(history.baseline) if history.baseline is not None and history.treated else None
        h = history_vector(self.composition(f), baseline, [self.composition(e) for e in history.earlier])
        h = _standardised(h, self.hist_mean, self.hist_scale, self.hist_low, self.hist_high)
        return float(np.clip(np.asarray(weights, np.float64) @ (self.apo_coef @ h + self.apo_intercept), 0.0, 1.0))

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
        if self.comp_coef is not None:
            arrays |= {"composition.weight": self.comp_coef, "composition.bias": self.comp_intercept,
                       "history.mean": self.hist_mean, "history.scale": self.hist_scale,
                       "history.low": self.hist_low, "history.high": self.hist_high,
                       "apoptosis.weight": self.apo_coef, "apoptosis.bias": self.apo_intercept}
        return {PREFIX + k: torch.as_tensor(np.asarray(v, np.float32)).contiguous() for k, v in arrays.items()}

    def card_entry(self) -> dict:
        return {"features": list(self.features), **self.info}

    @classmethod
    def from_tensors(cls, tensors: dict, entry: dict) -> Readout:
        def get(name):
            return np.asarray(tensors[PREFIX + name].float().numpy(), np.float64)

        def maybe(name):
            return get(name) if PREFIX + name in tensors else None

        composition = {name: maybe(name) for name in ("composition.weight", "composition.bias", "history.mean", "history.scale",
                                                      "history.low", "history.high", "apoptosis.weight", "apoptosis.bias")}
        return cls(list(entry["features"]), get("mean"), get("scale"), get("arm.weight"), get("arm.bias"),
                   get("biomarkers.weight"), get("biomarkers.bias"), {k: v for k, v in entry.items() if k != "features"},
                   maybe("clip.low"), maybe("clip.high"), *composition.values(), pools_sessions=bool(entry.get("arm_pooling")))


def readout_summary(readout: Readout) -> str:
    """One line for a report: how this readout reads a scan."""
    arm = "arm pooled over the rat's treated sessions" if readout.pools_sessions else "arm from each scan alone"
    apoptosis = ("apoptosis from the tumor's estimated composition now, at baseline and in between"
                 if readout.comp_coef is not None else "apoptosis from the scan's features")
    return f"tumor features of the network's mask; {arm}; viability from the scan's features; {apoptosis}"


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
    features: np.ndarray  # FEATURE_NAMES
    composition: np.ndarray | None = None  # COMPOSITION_TARGETS from the simulator's truth, when known


def feature_rows(studies: Sequence[str | Path], progress: Callable[[int, int], None] | None = None,
                 engine=None) -> list[FeatureRow]:
    """Features of every outlined session: on the mask of `engine`'s network when one is given (what the
    readout will read at prediction), else on the session's own outline (a reviewer's correction before
    the truth). Sessions where no tumor is found are left out."""
    from napari_hcc.training.dataset import labelled_sessions
    from napari_hcc.readout.composition import truth_composition_targets

    rows = []
    for item, scan, mask, _ in labelled_sessions(studies, progress=progress):
        f = tumor_features(scan, engine.segment(scan) if engine is not None else mask)
        if f is not None:
            rows.append(FeatureRow(item.rat, item.week, item.arm, item.viability, item.apoptosis, f,
                                   truth_composition_targets(item.study, item.subject, item.session)))
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


def _history_rows(rows: Sequence[FeatureRow], values: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """For each row index in `targets`: [value now, at the rat's baseline, mean over its treated sessions
    in between] from per-row `values` (this row's own where the rat has none), as `Readout.read` builds it."""
    by_rat: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_rat.setdefault(r.rat, []).append(i)
    out = []
    for i in targets:
        r, now = rows[i], values[i]
        week = r.week if r.week is not None else -1
        others = [j for j in by_rat[r.rat] if j != i and rows[j].week is not None]
        base = [j for j in others if rows[j].week == 0]
        between = [j for j in others if 0 < rows[j].week < week]
        out.append(history_vector(now, values[base[0]] if base and week > 0 else None, [values[j] for j in between]))
    return np.asarray(out)


def _pooled_rows(rows: Sequence[FeatureRow], proba: np.ndarray) -> np.ndarray:
    """Each row's arm probabilities pooled with the rat's earlier treated rows, as `Readout.read` does."""
    out = proba.copy()
    for i, r in enumerate(rows):
        if r.week is None or r.week <= 0:
            continue
        earlier = [j for j, o in enumerate(rows) if o.rat == r.rat and o.week is not None and 0 < o.week < r.week]
        if earlier:
            out[i] = pooled_arm_probabilities([proba[i]] + [proba[j] for j in earlier])
    return out


def _best_alpha(out_of_fold: Callable[[float], np.ndarray], truth: np.ndarray) -> tuple[float, float]:
    """(alpha, CV RMSE): the RIDGE_ALPHA_GRID value whose out-of-fold predictions come closest to `truth`."""
    rmse = {a: float(np.sqrt(((out_of_fold(a) - truth) ** 2).mean())) for a in RIDGE_ALPHA_GRID}
    best = min(rmse, key=rmse.get)
    return best, rmse[best]


def _ridge_alpha(Z: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """(alpha, CV RMSE) of a ridge regression, alpha picked by rat-grouped CV."""
    from sklearn.linear_model import Ridge

    folds = _grouped_folds(groups)

    def out_of_fold(a: float) -> np.ndarray:
        pred = np.zeros(len(y))
        for tr, te in folds:
            pred[te] = Ridge(alpha=a).fit(Z[tr], y[tr]).predict(Z[te])
        return pred

    return _best_alpha(out_of_fold, y)


def _pick_experts(Z: np.ndarray, L: np.ndarray, arm: np.ndarray, weights: np.ndarray, folds, truth: np.ndarray,
                  n_arms: int, link) -> tuple[float, float]:
    """(alpha, CV RMSE) of the per-arm experts on Z for target L (link maps their output to a fraction)."""
    def out_of_fold(a: float) -> np.ndarray:
        pred = np.zeros(len(truth))
        for tr, te in folds:
            coef, intercept = _arm_experts(Z[tr], L[tr], arm[tr], a, n_arms)
            pred[te] = (weights[te] * link(Z[te] @ coef.T + intercept)).sum(1)
        return np.clip(pred, 0.0, 1.0)

    return _best_alpha(out_of_fold, truth)


def fit_readout(rows: Sequence[FeatureRow], arms: Sequence[str]) -> Readout:
    """Fit the arm model, the per-arm histology experts and (where the rows carry composition truth) the
    composition route for apoptosis; every regularisation, and the apoptosis route, is chosen by
    rat-grouped 5-fold CV on `rows`."""
    from scipy.special import expit, logit
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score

    rows = list(rows)
    arm_idx = [i for i, r in enumerate(rows) if r.arm in arms and r.week is not None and r.week > 0]
    bio_idx = [i for i, r in enumerate(rows) if r.viability is not None and r.apoptosis is not None and r.arm in arms]
    arm_rows, bio_rows = [rows[i] for i in arm_idx], [rows[i] for i in bio_idx]
    if len({r.arm for r in arm_rows}) < len(arms):
        raise ValueError(f"the readout needs post-baseline scans of all {len(arms)} arms; these studies have {sorted({r.arm for r in arm_rows})}.")
    if len(bio_rows) < 4:
        raise ValueError(f"the readout needs histology for at least 4 rats; these studies have {len(bio_rows)}.")
    X_all = np.stack([r.features for r in rows])
    mean, scale, z_low, z_high = _standardisation(X_all)
    Z_all = _standardised(X_all, mean, scale, z_low, z_high)
    all_groups = np.array([r.rat for r in rows])
    all_folds = _grouped_folds(all_groups)

    X, y = Z_all[arm_idx], np.array([list(arms).index(r.arm) for r in arm_rows])
    groups = all_groups[arm_idx]
    folds = _grouped_folds(groups)
    cv = {}
    for c in ARM_C_GRID:
        p = np.zeros((len(y), len(arms)))
        for tr, te in folds:
            p[te] = _proba(LogisticRegression(C=c, max_iter=5000).fit(X[tr], y[tr]), X[te], len(arms))
        cv[c] = (log_loss(y, p, labels=range(len(arms))), roc_auc_score(y, p, multi_class="ovr"), float((p.argmax(1) == y).mean()))
    best_c = min(cv, key=lambda c: cv[c][0])
    arm_model = LogisticRegression(C=best_c, max_iter=5000).fit(X, y)

    # Arm probabilities of every row out-of-fold (from a model that did not see the rat), pooled over the
    # rat's treated sessions as at reading: the experts' mixing weights while their regularisation is chosen.
    arm_oof = np.zeros((len(rows), len(arms)))
    for tr, te in all_folds:
        seen = set(all_groups[tr])
        keep = np.array([g in seen for g in groups])
        arm_oof[te] = _proba(LogisticRegression(C=best_c, max_iter=5000).fit(X[keep], y[keep]), Z_all[te], len(arms))
    arm_pooled = _pooled_rows(rows, arm_oof)
    pooled_auroc = roc_auc_score(y, arm_pooled[arm_idx], multi_class="ovr")
    pooled_accuracy = float((arm_pooled[arm_idx].argmax(1) == y).mean())

    bio_groups = all_groups[bio_idx]
    bio_folds = _grouped_folds(bio_groups)
    Zb, bio_arm, weights = Z_all[bio_idx], np.array([list(arms).index(r.arm) for r in bio_rows]), arm_pooled[bio_idx]
    Yb = np.array([[r.viability, r.apoptosis] for r in bio_rows], np.float64)
    Lb = logit(np.clip(Yb, EPS, 1 - EPS))
    bio_coef, bio_intercept = np.zeros((len(arms), 2, Zb.shape[1])), np.zeros((len(arms), 2))
    best_alpha, bio_rmse = [], []
    for t in range(2):  # each target its own regularisation
        a, rmse = _pick_experts(Zb, Lb[:, t], bio_arm, weights, bio_folds, Yb[:, t], len(arms), expit)
        bio_coef[:, t], bio_intercept[:, t] = _arm_experts(Zb, Lb[:, t], bio_arm, a, len(arms))
        best_alpha.append(a)
        bio_rmse.append(rmse)

    info = {
        "arm_model": "multinomial logistic regression (scikit-learn), standardised features clipped to the fitting range",
        "arm_C": best_c,
        "arm_pooling": "normalised geometric mean over this scan and the rat's earlier treated scans",
        "biomarker_model": "per-arm ridge regressions on logit(fraction) (scikit-learn), mixed by the arm probabilities",
        "biomarker_alpha": {"viability": best_alpha[0], "apoptosis": best_alpha[1]},
        "apoptosis_route": "scan features",
        "fitted_on": {"rats": sorted({r.rat for r in rows}), "arm_scans": len(arm_rows), "histology_scans": len(bio_rows)},
        "cross_validation": {
            "protocol": "rat-grouped 5-fold inside the fitting set (out-of-fold arm probabilities, pooled over each rat's "
                        "treated sessions, as the histology weights)",
            "arm_macro_auroc": round(cv[best_c][1], 4), "arm_accuracy": round(cv[best_c][2], 4),
            "arm_macro_auroc_pooled": round(pooled_auroc, 4), "arm_accuracy_pooled": round(pooled_accuracy, 4),
            "viability_rmse": round(bio_rmse[0], 4), "apoptosis_rmse": round(bio_rmse[1], 4),
            "apoptosis_rmse_scan_features": round(bio_rmse[1], 4),
        },
    }
    readout = Readout(list(FEATURE_NAMES), mean, scale, arm_model.coef_.astype(np.float64), arm_model.intercept_.astype(np.float64),
                      bio_coef, bio_intercept, info, z_low, z_high, pools_sessions=True)
    _fit_composition_route(readout, rows, Z_all, all_folds, bio_idx, bio_arm, weights, bio_folds, Yb[:, 1], len(arms))
    return readout


def _fit_composition_route(readout: Readout, rows, Z_all, all_folds, bio_idx, bio_arm, weights, bio_folds, apoptosis, n_arms) -> None:
    """Stage 1 (composition from features, on every session with composition truth) and stage 2 (per-arm
    apoptosis from the composition history); kept in `readout` only when rat-grouped CV prefers it."""
    from sklearn.linear_model import Ridge

    comp_idx = [i for i, r in enumerate(rows) if r.composition is not None]
    if len(comp_idx) < MIN_COMPOSITION_SCANS:
        readout.info["apoptosis_route_reason"] = f"{len(comp_idx)} sessions with composition truth (at least {MIN_COMPOSITION_SCANS} needed)"
        return
    all_groups = np.array([r.rat for r in rows])
    Zc, C = Z_all[comp_idx], np.stack([rows[i].composition for i in comp_idx])
    in_comp = np.zeros(len(rows), bool)
    in_comp[comp_idx] = True
    C_all = np.zeros((len(rows), C.shape[1]))
    C_all[comp_idx] = C
    coef, intercept, alphas, r2 = np.zeros((C.shape[1], Z_all.shape[1])), np.zeros(C.shape[1]), {}, {}
    oof = np.zeros((len(rows), C.shape[1]))  # every row's estimate from a stage 1 that did not see its rat
    for t, name in enumerate(COMPOSITION_TARGETS):
        a, rmse = _ridge_alpha(Zc, C[:, t], all_groups[comp_idx])
        model = Ridge(alpha=a).fit(Zc, C[:, t])
        coef[t], intercept[t], alphas[name] = model.coef_, model.intercept_, a
        r2[name] = round(1.0 - rmse**2 / max(float(C[:, t].var()), 1e-12), 3)
        for tr, te in all_folds:
            fit_on = [i for i in tr if in_comp[i]]
            if len(fit_on) >= 2:
                oof[te, t] = Ridge(alpha=a).fit(Z_all[fit_on], C_all[fit_on, t]).predict(Z_all[te])
            else:  # the sessions with composition truth all sit in this fold: no slope to carry over
                oof[te, t] = C[:, t].mean()
    H = _history_rows(rows, oof, bio_idx)
    h_mean, h_scale, h_low, h_high = _standardisation(H)
    Hz = _standardised(H, h_mean, h_scale, h_low, h_high)
    a, rmse = _pick_experts(Hz, apoptosis, bio_arm, weights, bio_folds, apoptosis, n_arms, lambda v: v)
    cv = readout.info["cross_validation"]
    cv["apoptosis_rmse_composition_history"] = round(rmse, 4)
    cv["composition_r2"] = r2
    readout.info["composition_alpha"] = alphas
    if rmse >= cv["apoptosis_rmse_scan_features"]:
        readout.info["apoptosis_route_reason"] = "rat-grouped CV: the scan's features read apoptosis at least as well"
        return
    apo_coef, apo_intercept = _arm_experts(Hz, apoptosis, bio_arm, a, n_arms)
    readout.comp_coef, readout.comp_intercept = coef, intercept
    readout.hist_mean, readout.hist_scale, readout.hist_low, readout.hist_high = h_mean, h_scale, h_low, h_high
    readout.apo_coef, readout.apo_intercept = apo_coef, apo_intercept
    readout.info.update({
        "apoptosis_route": "composition history",
        "apoptosis_model": "per-arm ridge regressions on the fraction (scikit-learn) over the composition estimates "
                           "now, at baseline and between, mixed by the arm probabilities",
        "apoptosis_alpha": a, "composition_targets": list(COMPOSITION_TARGETS),
        "composition_model": "ridge regressions of the simulator's truth composition on the standardised features",
    })
    cv["apoptosis_rmse"] = round(rmse, 4)


def add_readout(model: str | Path | None, studies: Sequence[str | Path], out: str | Path, version: str | None = None,
                progress: Callable[[int, int], None] | None = None, device: str = "auto"):
    """A new model in `out`: the network of `model` (None = the shipped default) plus a readout fitted
    on every outlined session of `studies`, read through that network's own masks. The source model is
    never changed; `out` must be new. Returns the new model's card (as written, checksum included)."""
    import copy

    from napari_hcc.model.checkpoint import WEIGHTS_FILE, load_model, save_model
    from napari_hcc.io.study import InputError
    from napari_hcc.training.dataset import simulation_of

    out = Path(out)
    if (out / WEIGHTS_FILE).exists():
        raise InputError(f"{out} already holds a model; choose a new folder (models are never overwritten).")
    from napari_hcc.inference.engine import Engine

    base = load_model(model)
    try:
        readout = fit_readout(feature_rows(studies, progress, Engine(base, device=device)), base.card.arms)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    readout.info["studies"] = [str(Path(s).resolve()) for s in studies]
    readout.info["simulations"] = [sim for s in studies if (sim := simulation_of(s))]
    card = copy.deepcopy(base.card)
    card.version = version or card.version
    note = "response readout fitted by napari-hcc fit-readout"
    if note not in (card.description or ""):  # a readout refitted onto a model that had one says so once
        card.description = (card.description + "; " if card.description else "") + note
    card.weights = {}
    save_model(base.build(), card, out, dtype=str(base.card.weights.get("dtype", "float16")), readout=readout)
    return card
