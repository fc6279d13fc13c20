"""`napari-hcc evaluate`: honest, rat-grouped evaluation of the network, with the size criterion beside it.

Two ways to get predictions no model has trained on:

* `--model MODEL`: predict a study the model never saw (a model is refused on rats it trained or
  validated on; a fold model of the same study is scored on its held-out fold only);
* `--cv K`: rat-grouped K-fold cross-validation: K models, each trained without one fold's rats and
  scored on them (`--leaky` adds the paper's slice-level K-fold, in which slices of one rat sit on both
  sides of the split, as a second table labelled leaky).

Every scan is predicted by the same `Engine` as `napari-hcc predict`, on its own grid, and scored
against the study's truth masks (or a reviewer's latest correction). Arm metrics use post-baseline
scans only (no treatment has been given at week 0). Histology is scored per rat at its endpoint
session. 95 % intervals come from resampling whole rats (bootstrap).
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.atomic import write_text
from napari_hcc.evaluation.metrics import arm_metrics, bootstrap_ci, dice, hd95_mm, iou, regression_metrics
from napari_hcc.readout.stored import readout_summary
from napari_hcc.simulate.biology import ARMS
from napari_hcc.io.study import InputError, find_scans, load_volume, read_participants

#: the targets of the project (rat-grouped), and the paper's figures for reference
TARGETS = {"dice": 0.92, "macro_auroc": 0.97, "accuracy": 0.85, "viability_rmse": 0.107, "apoptosis_rmse": 0.013, "auroc_margin_over_size": 0.15}


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

    @property
    def proba(self) -> np.ndarray:
        return np.array([self.p_control, self.p_sorafenib, self.p_nk, self.p_combination])


def score_scans(engine, root: Path, refs, fold: int = 0, progress=None) -> list[ScanResult]:
    """Predict each scan with the engine and score it against its reference mask."""
    from napari_hcc.evaluation.histology_floor import truth_composition
    from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3

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
        p = pred.arm_probability
        composition = truth_composition(root, ref.subject, ref.session) if at_histology else None
        results.append(ScanResult(
            fold, ref.subject, ref.session, f"{root.name}/{ref.subject}", pred.week, row.get("arm") or ref.arm,
            dice(pred.mask, truth), iou(pred.mask, truth), hd95_mm(pred.mask, truth, scan.affine),
            pred.tumor_volume_mm3, volume_mm3(truth, scan.affine), pred.longest_diameter_mm, longest_axial_diameter_mm(truth, scan.affine),
            p["Control"], p["Sorafenib"], p["NK"], p["Combination"], pred.viability, pred.apoptosis,
            float(row["histology_viability"]) if at_histology and row.get("histology_viability") else None,
            float(row["histology_apoptosis"]) if at_histology and row.get("histology_apoptosis") else None,
            seconds, *(composition or (None, None)),
        ))
        if progress is not None:
            progress(n + 1, len(refs))
    return results


# -- the size criterion ----------------------------------------------------------------------------


def size_baseline(results: list[ScanResult], fold_of_rat: dict[str, int]) -> dict[tuple[str, str], np.ndarray]:
    """RECIST-style classifier (log volume, longest diameter, their change from the rat's baseline,
    the week) from the truth masks, fitted on the other folds' rats and applied to each fold.
    Returns arm probabilities per post-baseline (rat, session)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from napari_hcc.evaluation.size_baseline import SizeRecord, feature_row

    def truth_size(r: ScanResult) -> SizeRecord:
        return SizeRecord(r.rat, r.arm, r.week, r.volume_truth_mm3, r.diameter_truth_mm)

    base = {r.rat: r for r in results if r.week == 0}
    rows = []
    for r in results:
        if not r.week or r.rat not in base or r.arm not in ARMS:
            continue
        rows.append(((r.rat, r.session), fold_of_rat[r.rat], ARMS.index(r.arm), feature_row(truth_size(r), truth_size(base[r.rat]))))
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


# -- summary ---------------------------------------------------------------------------------------


def summarize(results: list[ScanResult], size_proba: dict, bootstrap: int = 1000, seed: int = 0) -> dict:
    rats = np.array([r.rat for r in results])
    d = np.array([r.dice for r in results])
    summary: dict = {"scans": len(results), "rats": int(len(set(rats)))}
    summary["segmentation"] = {
        "dice_mean": float(d.mean()), "dice_ci": bootstrap_ci(rats, lambda i: d[i].mean(), bootstrap, seed),
        "iou_mean": float(np.mean([r.iou for r in results])),
        "hd95_mm_median": float(np.nanmedian([r.hd95_mm for r in results])) if any(np.isfinite(r.hd95_mm) for r in results) else float("nan"),
        "by_arm_week": _by_arm_week(results),
    }
    post = [r for r in results if r.week and r.arm in ARMS]
    if post:
        y = np.array([ARMS.index(r.arm) for r in post])
        proba = np.array([r.proba for r in post])
        g = np.array([r.rat for r in post])
        arms = arm_metrics(y, proba, ARMS)
        arms["macro_auroc_ci"] = bootstrap_ci(g, lambda i: arm_metrics(y[i], proba[i], ARMS)["macro_auroc"], bootstrap, seed)
        arms["accuracy_ci"] = bootstrap_ci(g, lambda i: float((proba[i].argmax(1) == y[i]).mean()), bootstrap, seed)
        arms["by_week"] = {int(w): arm_metrics(y[[r.week == w for r in post]], proba[[r.week == w for r in post]], ARMS)["macro_auroc"]
                           for w in sorted({r.week for r in post})}
        summary["arms"] = arms
        keys = [(r.rat, r.session) for r in post]
        if all(k in size_proba for k in keys):
            sp = np.array([size_proba[k] for k in keys])
            size = arm_metrics(y, sp, ARMS)
            size["macro_auroc_ci"] = bootstrap_ci(g, lambda i: arm_metrics(y[i], sp[i], ARMS)["macro_auroc"], bootstrap, seed)
            size["margin"] = arms["macro_auroc"] - size["macro_auroc"]
            size["margin_ci"] = bootstrap_ci(g, lambda i: arm_metrics(y[i], proba[i], ARMS)["macro_auroc"] - arm_metrics(y[i], sp[i], ARMS)["macro_auroc"], bootstrap, seed)
            summary["size_baseline"] = size
    histo = [r for r in results if r.viability_histology is not None]
    if histo:
        g = np.array([r.rat for r in histo])
        out = {}
        for name in ("viability", "apoptosis"):
            pred = np.array([getattr(r, name) for r in histo], float)
            truth = np.array([getattr(r, f"{name}_histology") for r in histo], float)
            m = regression_metrics(pred, truth)
            m["rmse_ci"] = bootstrap_ci(g, lambda i, p=pred, t=truth: regression_metrics(p[i], t[i])["rmse"], bootstrap, seed)
            # Two references, on the rats the model gave a value for (a scan without a tumor gives none):
            scored = np.isfinite(pred)
            arm = np.array([r.arm for r in histo])
            if all(a in ARMS for a in arm):  # the arm alone: each rat given its own arm's mean measured value here
                arm_mean = np.array([truth[scored & (arm == a)].mean() if (scored & (arm == a)).any() else np.nan for a in arm])
                m["arm_mean_rmse"] = regression_metrics(np.where(scored, arm_mean, np.nan), truth)["rmse"]
            exact = np.array([getattr(r, f"{name}_composition") for r in histo], float)
            if np.isfinite(exact).all():  # the measurement floor: the tumor's exact composition against its histology
                exact[~scored] = np.nan
                m["floor_rmse"] = regression_metrics(exact, truth)["rmse"]
                m["floor_rmse_ci"] = bootstrap_ci(g, lambda i, e=exact, t=truth: regression_metrics(e[i], t[i])["rmse"], bootstrap, seed)
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
        rows += [("macro arm AUROC (post-baseline)", s["arms"]["macro_auroc"], ">=", TARGETS["macro_auroc"]),
                 ("arm accuracy (post-baseline)", s["arms"]["accuracy"], ">=", TARGETS["accuracy"])]
    references = {}  # metric -> what the exact composition ("floor") and the arm alone score
    if "histology" in s:
        for name in ("viability", "apoptosis"):
            m = s["histology"][name]
            rows.append((f"{name} RMSE", m["rmse"], "<=", TARGETS[f"{name}_rmse"]))
            references[f"{name} RMSE"] = {key: m[source] for key, source in (("floor", "floor_rmse"), ("arm_alone", "arm_mean_rmse")) if source in m}
    if "size_baseline" in s:
        rows.append(("AUROC above the size criterion", s["size_baseline"]["margin"], ">=", TARGETS["auroc_margin_over_size"]))
    out = []
    for name, value, op, target in rows:
        met = bool(np.isfinite(value) and (value >= target if op == ">=" else value <= target))
        out.append({"metric": name, "value": value, "target": f"{op} {target}", "op": op, "bound": target, "met": met,
                    **references.get(name, {})})
    return out


# -- the two protocols -----------------------------------------------------------------------------


def _refs(study: Path):
    refs = [r for r in find_scans(study, with_truth=True) if r.subject and r.session]
    if not refs:
        raise InputError(f"{study} holds no BIDS sessions to evaluate.")
    return refs


def evaluate_model(study: str | Path, model: str | Path | None, device: str = "auto", progress=None) -> tuple[list[ScanResult], dict]:
    from napari_hcc.model.checkpoint import load_model
    from napari_hcc.inference.engine import Engine

    study = Path(study)
    loaded = load_model(model)
    refs = _refs(study)
    seen = _trained_on(loaded.card, study)
    if seen is not None:
        trained, held_out = seen
        refs = [r for r in refs if f"{study.name}/{r.subject}" in held_out]
        if not refs:
            raise InputError(f"model {loaded.model_id} was trained on {len(trained)} rats of {study}; evaluate it on a study it never saw, or use --cv.")
    engine = Engine(loaded, device=device)
    results = score_scans(engine, study, refs, 0, progress)
    rats = sorted({r.rat for r in results})
    from napari_hcc.training.splits import rat_folds

    # The size criterion has to be fitted somewhere: rat-grouped CV on this study, repeated with 10
    # fold draws and averaged, so the baseline does not hang on one lucky or unlucky split.
    arm_of = {r.rat: r.arm for r in results}
    k = min(5, max(2, min(sum(a == arm for a in arm_of.values()) for arm in set(arm_of.values())))) if len(rats) >= 4 else 2
    draws = []
    for seed in range(10):
        folds = rat_folds(arm_of, k, seed) if len(rats) >= k else [rats]
        draws.append(size_baseline(results, {rat: i for i, f in enumerate(folds) for rat in f}))
    keys = set.intersection(*(set(d) for d in draws)) if draws else set()
    size = {key: np.mean([d[key] for d in draws], axis=0) for key in keys}
    info = {"protocol": "held-out study", "model": loaded.model_id, "study": str(study.resolve()), "device": str(engine.device),
            "size_baseline": f"rat-grouped {k}-fold CV on this study, 10 fold draws averaged"}
    if loaded.readout is not None:
        info["readout"] = readout_summary(loaded.readout)
    return results, {"info": info, "size": size}


def _fitting_set(entry: dict) -> tuple[set[str], set]:
    """(resolved study folders, simulation seeds) of a card's `training` or `readout` entry."""
    studies = {str(Path(s).resolve()) for s in entry.get("studies", [])}
    seeds = {s.get("seed") for s in entry.get("simulations", []) if isinstance(s, dict)}
    return studies, seeds


def _trained_on(card, study: Path):
    """(trained rats, held-out rats) when the model's card says it trained on this study, else None.

    A simulated study counts as the same when it was made with a seed the model trained on (the same
    seed draws the same rats, wherever the files are). A study the response readout was fitted on is
    refused outright: the readout saw all of its rats."""
    from napari_hcc.training.dataset import simulation_of

    here = str(study.resolve())
    sim = simulation_of(study)
    readout_studies, readout_seeds = _fitting_set(card.readout or {})
    if here in readout_studies or (sim is not None and sim.get("seed") in readout_seeds):
        raise InputError(f"the response readout of model {card.model_id} was fitted on the rats of {study}"
                         + (f" (simulated cohort of seed {sim['seed']})" if sim else "") + "; evaluate it on a cohort it never saw.")
    studies, seeds = _fitting_set(card.training)
    if here not in studies and sim is not None and sim.get("seed") in seeds:
        raise InputError(f"model {card.model_id} was trained on the simulated cohort of seed {sim['seed']}, which draws the same rats as "
                         f"{study}; simulate a fresh cohort with another seed, or use --cv.")
    if here not in studies:
        return None
    trained = set(card.training.get("train_rats", [])) | set(card.training.get("val_rats", []))
    return trained, set(card.training.get("held_out_rats", []))


def evaluate_cv(study: str | Path, k: int, out: str | Path, device: str = "auto", epochs: int = 40, seed: int = 0,
                batch_size: int = 16, quiet: bool = False) -> tuple[list[ScanResult], dict]:
    from napari_hcc.model.checkpoint import load_model
    from napari_hcc.inference.engine import Engine
    from napari_hcc.training.splits import rat_folds
    from napari_hcc.readout.stored import feature_rows, fit_readout
    from napari_hcc.training.trainer import TrainConfig, train

    study = Path(study)
    refs = _refs(study)
    participants = read_participants(study)
    arm_of = {f"{study.name}/{s}": row.get("arm") for s, row in participants.items()} or {f"{study.name}/{r.subject}": r.arm for r in refs}
    folds = rat_folds(arm_of, k, seed)
    fold_of = {rat: i for i, f in enumerate(folds) for rat in f}
    results, seconds = [], []
    for i in range(k):
        model_dir = Path(out) / "cv" / f"fold{i}"
        t = time.perf_counter()
        if not (model_dir / "model.safetensors").exists():
            train(TrainConfig([study], model_dir, epochs=epochs, seed=seed, device=device, folds=k, fold=i, batch_size=batch_size, quiet=quiet,
                              version=f"cv{k}-fold{i}"))
        seconds.append(time.perf_counter() - t)
        held = [r for r in refs if fold_of.get(f"{study.name}/{r.subject}") == i]
        model = load_model(model_dir)
        engine = Engine(model, device=device)
        try:  # the response readout too is fitted without the fold's rats, on this fold's network's masks
            rows = feature_rows([study], engine=engine)
            model.readout = fit_readout([r for r in rows if fold_of.get(r.rat) != i], model.card.arms)
        except ValueError:  # too few rats outside the fold: the network's own heads answer
            model.readout = None
        results += score_scans(engine, study, held, i)
    info = {"protocol": f"rat-grouped {k}-fold cross-validation", "study": str(study.resolve()), "epochs": epochs, "seed": seed,
            "train_seconds": [round(s, 1) for s in seconds], "folds": folds,
            "readout": "fitted per fold on the rats outside it, through that fold's network's masks (rat-grouped CV inside them picks its regularisation)"}
    return results, {"info": info, "size": size_baseline(results, fold_of)}


def evaluate_leaky(study: str | Path, k: int, out: str | Path, device: str = "auto", epochs: int = 40, seed: int = 0,
                   batch_size: int = 16, quiet: bool = False) -> dict:
    """The paper's protocol: K-fold over slices, ignoring which rat a slice came from (leaky)."""
    import torch

    from napari_hcc.model.checkpoint import load_model
    from napari_hcc.model.devices import resolve_device
    from napari_hcc.model.card import ModelCard
    from napari_hcc.training.trainer import TrainConfig, leaky_holdout, train
    from napari_hcc.training.dataset import build_dataset

    study = Path(study)
    ds = build_dataset([study], ModelCard())
    dices, ys, probas = [], [], []
    dev = resolve_device(device)
    for i in range(k):
        model_dir = Path(out) / "leaky" / f"fold{i}"
        if not (model_dir / "model.safetensors").exists():
            train(TrainConfig([study], model_dir, epochs=epochs, seed=seed, device=device, batch_size=batch_size, quiet=quiet,
                              leaky_folds=k, leaky_fold=i, version=f"leaky{k}-fold{i}"))
        net = load_model(model_dir).build().to(dev).eval()
        held = leaky_holdout(ds, k, i, seed)
        held = held[ds.tumor_slices[held]]
        with torch.no_grad():
            for start in range(0, len(held), 32):
                part = held[start:start + 32]
                m, a, _ = net(torch.from_numpy(ds.x[part].astype(np.float32)).to(dev))
                prob = torch.sigmoid(m)[:, 0].cpu().numpy() >= 0.5
                for j, s in enumerate(part):
                    dices.append(dice(prob[j], ds.y[s]))
                    scan = ds.scans[ds.scan_of_slice[s]]
                    if scan.arm_labelled:
                        ys.append(scan.arm_index)
                        probas.append(torch.softmax(a[j], 0).cpu().numpy())
    arms = arm_metrics(np.array(ys), np.array(probas), ARMS) if ys else {}
    return {"protocol": f"slice-level {k}-fold (LEAKY: slices of one rat on both sides)", "tumor_slices": len(dices),
            "dice_mean": float(np.mean(dices)) if dices else float("nan"), "macro_auroc": arms.get("macro_auroc", float("nan")),
            "accuracy": arms.get("accuracy", float("nan")), "per_arm_auroc": {a: v["auroc"] for a, v in arms.get("per_arm", {}).items()}}


# -- writing ---------------------------------------------------------------------------------------


def write_results(out: str | Path, results: list[ScanResult], summary: dict, info: dict, leaky: dict | None = None,
                  notes: str | None = None) -> Path:
    from napari_hcc.evaluation.report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    fields = list(ScanResult.__dataclass_fields__)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in asdict(r).items()})
    write_text(out / "per_scan.csv", buf.getvalue())
    write_text(out / "metrics.json", json.dumps(_jsonable({"info": info, "summary": summary, "leaky": leaky}), indent=2) + "\n")
    return write_report(out, results, summary, info, leaky, notes)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    return value
