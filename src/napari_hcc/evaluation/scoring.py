"""Scoring a model's predictions against the truth: per-scan results, the size criterion, the summary with
bootstrap intervals over rats, and the targets of the study."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from napari_hcc.evaluation.acquisition import acquisition_of, by_factor, subset_scores
from napari_hcc.evaluation.histology_floor import truth_composition
from napari_hcc.evaluation.size_baseline import SizeRecord, feature_row
from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.io import bids
from napari_hcc.io.study import read_participants
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import arm_metrics, bootstrap_ci, dice, hd95_mm, iou, macro_auroc, regression_metrics
from napari_hcc.progress import ProgressFn, report
from napari_hcc.vocabulary import ARMS

#: the targets of the project (rat-grouped), and the paper's figures for reference
TARGETS = {
    "dice": 0.92,
    "macro_auroc": 0.97,
    "accuracy": 0.85,
    "viability_rmse": 0.107,
    "apoptosis_rmse": 0.013,
    "auroc_margin_over_size": 0.15,
}


@dataclass
class ScanResult:
    fold: int
    subject: str
    session: str
    rat: str
    week: int | None
    arm: str | None
    dice: float
    iou: float
    hd95_mm: float
    volume_mm3: float
    volume_truth_mm3: float
    diameter_mm: float
    diameter_truth_mm: float
    p_control: float
    p_sorafenib: float
    p_nk: float
    p_combination: float
    viability: float
    apoptosis: float
    viability_histology: float | None
    apoptosis_histology: float | None
    seconds: float
    #: the exact composition of the tumor at the histology session (simulated studies): the floor
    viability_composition: float | None = None
    apoptosis_composition: float | None = None
    #: how the session was acquired (evaluation/acquisition.py): figures per protocol
    sequences: str = ""
    plane: str = ""
    field_t: float | None = None
    t1w_sequence: str = ""
    t2w_sequence: str = ""

    @property
    def proba(self) -> np.ndarray:
        return np.array([self.p_control, self.p_sorafenib, self.p_nk, self.p_combination])


def score_scans(
    engine, root: Path, refs, fold: int = 0, progress: ProgressFn | None = None, subsets: list | None = None
) -> list[ScanResult]:
    """Predict each scan with the engine and score it against its reference mask. With a `subsets` list,
    every smaller readable subset of each session's sequences is also segmented and scored into it."""

    participants = read_participants(root)
    results = []
    for n, ref in enumerate(refs):
        reference = bids.latest_correction(root, ref.subject, ref.session) or ref.mask
        if reference is None:
            continue
        scan = ref.load()
        truth = load_volume(reference, "mask").data > 0
        t = time.perf_counter()
        pred = engine.predict(scan, keep_probability=False)
        seconds = time.perf_counter() - t
        row = participants.get(ref.subject, {})
        at_histology = row.get("histology_session", "").removeprefix("ses-") == ref.session
        p = pred.response.arm_probability
        composition = truth_composition(root, ref.subject, ref.session) if at_histology else None
        acquisition = acquisition_of(ref)
        if subsets is not None:
            subsets += subset_scores(
                engine, scan, truth, f"{root.name}/{ref.subject}", ref.session, acquisition["sequences"]
            )
        results.append(
            ScanResult(
                fold,
                ref.subject,
                ref.session,
                f"{root.name}/{ref.subject}",
                pred.week,
                row.get("arm") or ref.arm,
                dice(pred.mask, truth),
                iou(pred.mask, truth),
                hd95_mm(pred.mask, truth, scan.affine),
                pred.tumor_volume_mm3,
                volume_mm3(truth, scan.affine),
                pred.longest_diameter_mm,
                longest_axial_diameter_mm(truth, scan.affine),
                p["Control"],
                p["Sorafenib"],
                p["NK"],
                p["Combination"],
                pred.response.viability,
                pred.response.apoptosis,
                float(row["histology_viability"]) if at_histology and row.get("histology_viability") else None,
                float(row["histology_apoptosis"]) if at_histology and row.get("histology_apoptosis") else None,
                seconds,
                *(composition or (None, None)),
                **acquisition,
            )
        )
        report(progress, n + 1, len(refs), "scan")
    return results


def size_baseline(results: list[ScanResult], fold_of_rat: dict[str, int]) -> dict[tuple[str, str], np.ndarray]:
    """RECIST-style classifier (log volume, longest diameter, their change from the rat's baseline,
    the week) from the truth masks, fitted on the other folds' rats and applied to each fold.
    Returns arm probabilities per post-baseline (rat, session)."""

    def truth_size(r: ScanResult) -> SizeRecord:
        return SizeRecord(r.rat, r.arm, r.week, r.volume_truth_mm3, r.diameter_truth_mm)

    base = {r.rat: r for r in results if r.week == 0}
    rows = []
    for r in results:
        if not r.week or r.rat not in base or r.arm not in ARMS:
            continue
        rows.append(
            (
                (r.rat, r.session),
                fold_of_rat[r.rat],
                ARMS.index(r.arm),
                feature_row(truth_size(r), truth_size(base[r.rat])),
            )
        )
    out = {}
    for fold in sorted({f for _, f, _, _ in rows}):
        train = [(y, x) for _, f, y, x in rows if f != fold]
        test = [(k, x) for k, f, _, x in rows if f == fold]
        if len({y for y, _ in train}) < 2 or not test:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        model.fit(np.array([x for _, x in train]), np.array([y for y, _ in train]))
        proba = np.zeros((len(test), len(ARMS)))
        proba[:, model.classes_] = model.predict_proba(np.array([x for _, x in test]))
        for (key, _), p in zip(test, proba):
            out[key] = p
    return out


def arm_scored(results: list[ScanResult]) -> list[ScanResult]:
    """Post-baseline scans of known arm whose arm was read (a session missing a sequence reads none)."""
    return [r for r in results if r.week and r.arm in ARMS and np.isfinite(r.proba).all()]


def summarize(results: list[ScanResult], size_proba: dict, bootstrap: int = 1000, seed: int = 0) -> dict:
    rats = np.array([r.rat for r in results])
    d = np.array([r.dice for r in results])
    summary: dict = {"scans": len(results), "rats": int(len(set(rats)))}
    summary["segmentation"] = {
        "dice_mean": float(d.mean()),
        "dice_ci": bootstrap_ci(rats, lambda i: d[i].mean(), bootstrap, seed),
        "iou_mean": float(np.mean([r.iou for r in results])),
        "hd95_mm_median": float(np.nanmedian([r.hd95_mm for r in results]))
        if any(np.isfinite(r.hd95_mm) for r in results)
        else float("nan"),
        "by_arm_week": _by_arm_week(results),
        "by_acquisition": by_factor(results),
    }
    post = arm_scored(results)
    summary["arms_not_read"] = sum(1 for r in results if r.week and r.arm in ARMS) - len(post)
    if post:
        y = np.array([ARMS.index(r.arm) for r in post])
        proba = np.array([r.proba for r in post])
        g = np.array([r.rat for r in post])
        arms = arm_metrics(y, proba, ARMS)
        arms["macro_auroc_ci"] = bootstrap_ci(g, lambda i: macro_auroc(y[i], proba[i]), bootstrap, seed)
        arms["accuracy_ci"] = bootstrap_ci(g, lambda i: float((proba[i].argmax(1) == y[i]).mean()), bootstrap, seed)
        arms["by_week"] = {
            int(w): macro_auroc(y[[r.week == w for r in post]], proba[[r.week == w for r in post]])
            for w in sorted({r.week for r in post})
        }
        summary["arms"] = arms
        keys = [(r.rat, r.session) for r in post]
        if all(k in size_proba for k in keys):
            sp = np.array([size_proba[k] for k in keys])
            size = arm_metrics(y, sp, ARMS)
            size["macro_auroc_ci"] = bootstrap_ci(g, lambda i: macro_auroc(y[i], sp[i]), bootstrap, seed)
            size["margin"] = arms["macro_auroc"] - size["macro_auroc"]
            size["margin_ci"] = bootstrap_ci(
                g,
                lambda i: macro_auroc(y[i], proba[i]) - macro_auroc(y[i], sp[i]),
                bootstrap,
                seed,
            )
            summary["size_baseline"] = size
    histo = [r for r in results if r.viability_histology is not None]
    if histo:
        g = np.array([r.rat for r in histo])
        out = {}
        for name in ("viability", "apoptosis"):
            pred = np.array([getattr(r, name) for r in histo], float)
            truth = np.array([getattr(r, f"{name}_histology") for r in histo], float)
            m = regression_metrics(pred, truth)
            m["rmse_ci"] = bootstrap_ci(
                g, lambda i, p=pred, t=truth: regression_metrics(p[i], t[i])["rmse"], bootstrap, seed
            )
            # Two references, on the rats the model gave a value for (a scan without a tumor gives none):
            scored = np.isfinite(pred)
            arm = np.array([r.arm for r in histo])
            if all(a in ARMS for a in arm):  # the arm alone: each rat given its own arm's mean measured value here
                arm_mean = np.array(
                    [truth[scored & (arm == a)].mean() if (scored & (arm == a)).any() else np.nan for a in arm]
                )
                m["arm_mean_rmse"] = regression_metrics(np.where(scored, arm_mean, np.nan), truth)["rmse"]
            exact = np.array([getattr(r, f"{name}_composition") for r in histo], float)
            if np.isfinite(exact).all():  # the measurement floor: the tumor's exact composition against its histology
                exact[~scored] = np.nan
                m["floor_rmse"] = regression_metrics(exact, truth)["rmse"]
                m["floor_rmse_ci"] = bootstrap_ci(
                    g, lambda i, e=exact, t=truth: regression_metrics(e[i], t[i])["rmse"], bootstrap, seed
                )
            out[name] = m
        summary["histology"] = out
    summary["targets"] = _targets(summary)
    return summary


def _by_arm_week(results) -> dict:
    table: dict = {}
    for r in results:
        table.setdefault(r.arm or "?", {}).setdefault(str(r.week), []).append(r.dice)
    return {arm: {w: float(np.mean(v)) for w, v in sorted(weeks.items())} for arm, weeks in table.items()}


def _targets(s: dict) -> list[dict]:
    rows = [("mean Dice", s["segmentation"]["dice_mean"], ">=", TARGETS["dice"])]
    if "arms" in s:
        rows += [
            ("macro arm AUROC (post-baseline)", s["arms"]["macro_auroc"], ">=", TARGETS["macro_auroc"]),
            ("arm accuracy (post-baseline)", s["arms"]["accuracy"], ">=", TARGETS["accuracy"]),
        ]
    references = {}  # metric -> what the exact composition ("floor") and the arm alone score
    if "histology" in s:
        for name in ("viability", "apoptosis"):
            m = s["histology"][name]
            rows.append((f"{name} RMSE", m["rmse"], "<=", TARGETS[f"{name}_rmse"]))
            references[f"{name} RMSE"] = {
                key: m[source]
                for key, source in (("floor", "floor_rmse"), ("arm_alone", "arm_mean_rmse"))
                if source in m
            }
    if "size_baseline" in s:
        rows.append(
            ("AUROC above the size criterion", s["size_baseline"]["margin"], ">=", TARGETS["auroc_margin_over_size"])
        )
    out = []
    for name, value, op, target in rows:
        # None: nothing to score (e.g. no histology read on a lab without CE), which is not a miss
        met = bool(value >= target if op == ">=" else value <= target) if np.isfinite(value) else None
        out.append(
            {
                "metric": name,
                "value": value,
                "target": f"{op} {target}",
                "op": op,
                "bound": target,
                "met": met,
                **references.get(name, {}),
            }
        )
    return out
