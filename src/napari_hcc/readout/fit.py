"""Fitting the response readout (readout/stored.py) on the features of outlined sessions.

Two linear models on the standardised tumor features, each regularised by rat-grouped cross-validation
inside the fitting set (scikit-learn), never on the rats it is scored on: the arm (multinomial logistic
regression on post-baseline scans) and the histology (one ridge model per arm, mixed by the arm
probabilities), with apoptosis through the tumor's estimated composition over the rat's sessions where
that route wins in the same cross-validation. See readout/stored.py for how a scan is read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import GroupKFold

from napari_hcc.io.labels import labelled_sessions
from napari_hcc.progress import ProgressFn
from napari_hcc.readout.composition import TARGETS as COMPOSITION_TARGETS
from napari_hcc.readout.composition import truth_composition_targets
from napari_hcc.readout.features import FEATURE_NAMES, tumor_features
from napari_hcc.readout.stored import EPS, Readout, _standardised, history_vector, pooled_arm_probabilities
from napari_hcc.vocabulary import held_subset

MIN_COMPOSITION_SCANS = 20  # fewer sessions with composition truth: apoptosis from the scan's features


ARM_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


RIDGE_ALPHA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def _standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, low, high) of the fitting rows X for `_standardised`: a constant column keeps scale 1,
    and low/high are the range the rows span in standard units (what reading clips to)."""
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-9] = 1.0
    return mean, scale, (X.min(0) - mean) / scale, (X.max(0) - mean) / scale


@dataclass
class FeatureRow:
    rat: str
    week: int | None
    arm: str | None
    viability: float | None
    apoptosis: float | None
    features: np.ndarray  # FEATURE_NAMES
    composition: np.ndarray | None = None  # COMPOSITION_TARGETS from the simulator's truth, when known
    sequences: str = "T1w+T2w+CE"  # the sequences the session has (the others' features are stand-ins)


def feature_rows(studies: Sequence[str | Path], progress: ProgressFn | None = None, engine=None) -> list[FeatureRow]:
    """Features of every outlined session: on the mask of `engine`'s network when one is given (what the
    readout will read at prediction), else on the session's own outline (a reviewer's correction before
    the truth). Sessions where no tumor is found are left out."""

    rows = []
    for item, scan, mask, _ in labelled_sessions(studies, progress=progress):
        f = tumor_features(scan, engine.segment(scan) if engine is not None else mask)
        if f is not None:
            rows.append(
                FeatureRow(
                    item.rat,
                    item.week,
                    item.arm,
                    item.viability,
                    item.apoptosis,
                    f,
                    truth_composition_targets(item.study, item.subject, item.session),
                    held_subset(scan.stand_ins),
                )
            )
    return rows


def _grouped_folds(groups: np.ndarray, k: int = 5):

    k = min(k, len(set(groups)))
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups)) if k >= 2 else []


def _proba(model, X: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class, also when a fold's training rats lacked a class."""
    p = np.zeros((len(X), n_classes))
    p[:, model.classes_] = model.predict_proba(X)
    return p


def _arm_experts(
    Z: np.ndarray, L: np.ndarray, arm: np.ndarray, alpha: float, n_arms: int
) -> tuple[np.ndarray, np.ndarray]:
    """One ridge model of logit(target) per arm, each on its arm's rows: (coef (A, F), intercept (A,)).
    An arm with fewer than two rows gets the mean of all rows (no slope)."""

    coef, intercept = np.zeros((n_arms, Z.shape[1])), np.full(n_arms, float(L.mean()))
    for k in range(n_arms):
        here = arm == k
        if here.sum() >= 2:
            model = Ridge(alpha=alpha).fit(Z[here], L[here])
            coef[k], intercept[k] = model.coef_, model.intercept_
    return coef, intercept


def choose_arm_c(X: np.ndarray, y: np.ndarray, groups: np.ndarray, n_arms: int) -> tuple[float, dict]:
    """(C, {C: (log loss, macro AUROC, accuracy)}): the ARM_C_GRID value of the arm's logistic regression with
    the lowest rat-grouped CV log loss on standardised inputs X and arm indices y."""
    folds = _grouped_folds(groups)
    cv = {}
    for c in ARM_C_GRID:
        p = np.zeros((len(y), n_arms))
        for tr, te in folds:
            p[te] = _proba(LogisticRegression(C=c, max_iter=5000).fit(X[tr], y[tr]), X[te], n_arms)
        cv[c] = (
            log_loss(y, p, labels=range(n_arms)),
            roc_auc_score(y, p, multi_class="ovr"),
            float((p.argmax(1) == y).mean()),
        )
    return min(cv, key=lambda c: cv[c][0]), cv


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

    folds = _grouped_folds(groups)

    def out_of_fold(a: float) -> np.ndarray:
        pred = np.zeros(len(y))
        for tr, te in folds:
            pred[te] = Ridge(alpha=a).fit(Z[tr], y[tr]).predict(Z[te])
        return pred

    return _best_alpha(out_of_fold, y)


def _pick_experts(
    Z: np.ndarray, L: np.ndarray, arm: np.ndarray, weights: np.ndarray, folds, truth: np.ndarray, n_arms: int, link
) -> tuple[float, float]:
    """(alpha, CV RMSE) of the per-arm experts on Z for target L (link maps their output to a fraction)."""

    def out_of_fold(a: float) -> np.ndarray:
        pred = np.zeros(len(truth))
        for tr, te in folds:
            coef, intercept = _arm_experts(Z[tr], L[tr], arm[tr], a, n_arms)
            pred[te] = (weights[te] * link(Z[te] @ coef.T + intercept)).sum(1)
        return np.clip(pred, 0.0, 1.0)

    return _best_alpha(out_of_fold, truth)


def fit_readout(rows: Sequence[FeatureRow], arms: Sequence[str], features: Sequence[str] | None = None) -> Readout:
    """Fit the arm model, the per-arm histology experts and (where the rows carry composition truth) the
    composition route for apoptosis; every regularisation, and the apoptosis route, is chosen by
    rat-grouped 5-fold CV on `rows`. `features`: the FEATURE_NAMES to read (default all)."""

    rows = list(rows)
    names = list(features or FEATURE_NAMES)
    columns = [FEATURE_NAMES.index(n) for n in names]
    arm_idx = [i for i, r in enumerate(rows) if r.arm in arms and r.week is not None and r.week > 0]
    bio_idx = [i for i, r in enumerate(rows) if r.viability is not None and r.apoptosis is not None and r.arm in arms]
    arm_rows, bio_rows = [rows[i] for i in arm_idx], [rows[i] for i in bio_idx]
    if len({r.arm for r in arm_rows}) < len(arms):
        raise ValueError(
            f"the readout needs post-baseline scans of all {len(arms)} arms; these studies have {sorted({r.arm for r in arm_rows})}."
        )
    if len(bio_rows) < 4:
        raise ValueError(f"the readout needs histology for at least 4 rats; these studies have {len(bio_rows)}.")
    X_all = np.stack([r.features for r in rows])[:, columns]
    mean, scale, z_low, z_high = _standardisation(X_all)
    Z_all = _standardised(X_all, mean, scale, z_low, z_high)
    all_groups = np.array([r.rat for r in rows])
    all_folds = _grouped_folds(all_groups)

    X, y = Z_all[arm_idx], np.array([list(arms).index(r.arm) for r in arm_rows])
    groups = all_groups[arm_idx]
    best_c, cv = choose_arm_c(X, y, groups, len(arms))
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
        "fitted_on": {
            "rats": sorted({r.rat for r in rows}),
            "arm_scans": len(arm_rows),
            "histology_scans": len(bio_rows),
        },
        "cross_validation": {
            "protocol": "rat-grouped 5-fold inside the fitting set (out-of-fold arm probabilities, pooled over each rat's "
            "treated sessions, as the histology weights)",
            "arm_macro_auroc": round(cv[best_c][1], 4),
            "arm_accuracy": round(cv[best_c][2], 4),
            "arm_macro_auroc_pooled": round(pooled_auroc, 4),
            "arm_accuracy_pooled": round(pooled_accuracy, 4),
            "viability_rmse": round(bio_rmse[0], 4),
            "apoptosis_rmse": round(bio_rmse[1], 4),
            "apoptosis_rmse_scan_features": round(bio_rmse[1], 4),
        },
    }
    readout = Readout(
        names,
        mean,
        scale,
        arm_model.coef_.astype(np.float64),
        arm_model.intercept_.astype(np.float64),
        bio_coef,
        bio_intercept,
        info,
        z_low,
        z_high,
        pools_sessions=True,
    )
    _fit_composition_route(readout, rows, Z_all, all_folds, bio_idx, bio_arm, weights, bio_folds, Yb[:, 1], len(arms))
    return readout


def _fit_composition_route(
    readout: Readout, rows, Z_all, all_folds, bio_idx, bio_arm, weights, bio_folds, apoptosis, n_arms
) -> None:
    """Stage 1 (composition from features, on every session with composition truth) and stage 2 (per-arm
    apoptosis from the composition history); kept in `readout` only when rat-grouped CV prefers it."""

    comp_idx = [i for i, r in enumerate(rows) if r.composition is not None]
    if len(comp_idx) < MIN_COMPOSITION_SCANS:
        readout.info["apoptosis_route_reason"] = (
            f"{len(comp_idx)} sessions with composition truth (at least {MIN_COMPOSITION_SCANS} needed)"
        )
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
    readout.info.update(
        {
            "apoptosis_route": "composition history",
            "apoptosis_model": "per-arm ridge regressions on the fraction (scikit-learn) over the composition estimates "
            "now, at baseline and between, mixed by the arm probabilities",
            "apoptosis_alpha": a,
            "composition_targets": list(COMPOSITION_TARGETS),
            "composition_model": "ridge regressions of the simulator's truth composition on the standardised features",
        }
    )
    cv["apoptosis_rmse"] = round(rmse, 4)
