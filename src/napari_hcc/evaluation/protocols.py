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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from napari_hcc.errors import InputError
from napari_hcc.evaluation.acquisition import by_subset
from napari_hcc.evaluation.report import write_report
from napari_hcc.evaluation.scoring import ScanResult, score_scans, size_baseline
from napari_hcc.inference.engine import Engine
from napari_hcc.io.atomic import write_text
from napari_hcc.io.labels import simulation_of
from napari_hcc.io.study import find_scans, read_participants
from napari_hcc.metrics import arm_metrics, dice
from napari_hcc.model.card import ModelCard
from napari_hcc.model.catalog import WEIGHTS_FILE
from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.devices import resolve_device
from napari_hcc.model.loading import load_model
from napari_hcc.progress import ProgressFn
from napari_hcc.readout.fit import feature_rows, fit_readout
from napari_hcc.readout.stored import readout_summary
from napari_hcc.training.config import TrainConfig
from napari_hcc.training.dataset import build_dataset
from napari_hcc.training.splits import leaky_holdout, rat_folds
from napari_hcc.training.trainer import train
from napari_hcc.vocabulary import ARMS

# -- the size criterion ----------------------------------------------------------------------------


# -- summary ---------------------------------------------------------------------------------------


# -- the two protocols -----------------------------------------------------------------------------


def study_refs(study: Path):
    """The sessions of a study with truth masks to score; none is an InputError naming the study."""
    refs = [r for r in find_scans(study, with_truth=True) if r.subject and r.session]
    if not refs:
        raise InputError(f"{study} holds no BIDS sessions to evaluate.")
    return refs


def evaluate_model(
    study: str | Path,
    model: str | Path | None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    subsets: bool = False,
) -> tuple[list[ScanResult], dict]:
    """Score a model on a study it never saw; with `subsets`, also every smaller readable sequence subset
    of each session (`extra["subsets"]`)."""

    study = Path(study)
    loaded = load_model(model)
    refs = study_refs(study)
    seen = _trained_on(loaded.card, study)
    if seen is not None:
        trained, held_out = seen
        refs = [r for r in refs if f"{study.name}/{r.subject}" in held_out]
        if not refs:
            raise InputError(
                f"model {loaded.model_id} was trained on {len(trained)} rats of {study}; evaluate it on a study it never saw, or use --cv."
            )
    engine = Engine(loaded, device=device)
    subset_rows = [] if subsets else None
    results = score_scans(engine, study, refs, 0, progress, subset_rows)
    rats = sorted({r.rat for r in results})

    # The size criterion has to be fitted somewhere: rat-grouped CV on this study, repeated with 10
    # fold draws and averaged, so the baseline does not hang on one lucky or unlucky split.
    arm_of = {r.rat: r.arm for r in results}
    k = (
        min(5, max(2, min(sum(a == arm for a in arm_of.values()) for arm in set(arm_of.values()))))
        if len(rats) >= 4
        else 2
    )
    draws = []
    for seed in range(10):
        folds = rat_folds(arm_of, k, seed) if len(rats) >= k else [rats]
        draws.append(size_baseline(results, {rat: i for i, f in enumerate(folds) for rat in f}))
    keys = set.intersection(*(set(d) for d in draws)) if draws else set()
    size = {key: np.mean([d[key] for d in draws], axis=0) for key in keys}
    info = {
        "protocol": "held-out study",
        "model": loaded.model_id,
        "study": str(study.resolve()),
        "device": str(engine.device),
        "size_baseline": f"rat-grouped {k}-fold CV on this study, 10 fold draws averaged",
    }
    if loaded.readout is not None:
        info["readout"] = readout_summary(loaded.readout)
    extra = {"info": info, "size": size}
    if subset_rows is not None:
        extra["subsets"] = by_subset(results, subset_rows)
    return results, extra


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

    here = str(study.resolve())
    sim = simulation_of(study)
    readout_studies, readout_seeds = _fitting_set(card.readout or {})
    if here in readout_studies or (sim is not None and sim.get("seed") in readout_seeds):
        raise InputError(
            f"the response readout of model {card.model_id} was fitted on the rats of {study}"
            + (f" (simulated cohort of seed {sim['seed']})" if sim else "")
            + "; evaluate it on a cohort it never saw."
        )
    studies, seeds = _fitting_set(card.training)
    if here not in studies and sim is not None and sim.get("seed") in seeds:
        raise InputError(
            f"model {card.model_id} was trained on the simulated cohort of seed {sim['seed']}, which draws the same rats as "
            f"{study}; simulate a fresh cohort with another seed, or use --cv."
        )
    if here not in studies:
        return None
    trained = set(card.training.get("train_rats", [])) | set(card.training.get("val_rats", []))
    return trained, set(card.training.get("held_out_rats", []))


def _train_once(config: TrainConfig, progress: ProgressFn | None) -> None:
    """Train a fold's model unless an earlier run already finished it (a rerun resumes where it stopped)."""
    if not (Path(config.out) / WEIGHTS_FILE).exists():
        train(config, progress=progress)


def evaluate_cv(
    study: str | Path,
    k: int,
    out: str | Path,
    device: str = "auto",
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 16,
    crop: int = 128,
    progress: ProgressFn | None = None,
) -> tuple[list[ScanResult], dict]:

    study = Path(study)
    refs = study_refs(study)
    participants = read_participants(study)
    arm_of = {f"{study.name}/{s}": row.get("arm") for s, row in participants.items()} or {
        f"{study.name}/{r.subject}": r.arm for r in refs
    }
    folds = rat_folds(arm_of, k, seed)
    fold_of = {rat: i for i, f in enumerate(folds) for rat in f}
    results, seconds = [], []
    for i in range(k):
        model_dir = Path(out) / "cv" / f"fold{i}"
        t = time.perf_counter()
        _train_once(
            TrainConfig([study], model_dir, epochs=epochs, seed=seed, device=device, folds=k, fold=i,
                        batch_size=batch_size, crop=crop, version=f"cv{k}-fold{i}", export_graph=False),
            progress,
        )  # fmt: skip
        seconds.append(time.perf_counter() - t)
        held = [r for r in refs if fold_of.get(f"{study.name}/{r.subject}") == i]
        model = load_model(model_dir)
        engine = Engine(model, device=device, backend="torch")  # a fold's model has no exported graph
        try:  # the response readout too is fitted without the fold's rats, on this fold's network's masks
            rows = feature_rows([study], engine=engine)
            model.readout = fit_readout([r for r in rows if fold_of.get(r.rat) != i], model.card.arms)
        except ValueError:  # too few rats outside the fold: the network's own heads answer
            model.readout = None
        results += score_scans(engine, study, held, i)
    info = {
        "protocol": f"rat-grouped {k}-fold cross-validation",
        "study": str(study.resolve()),
        "epochs": epochs,
        "batch_size": batch_size,
        "crop": crop,
        "seed": seed,
        "train_seconds": [round(s, 1) for s in seconds],
        "folds": folds,
        "readout": "fitted per fold on the rats outside it, through that fold's network's masks (rat-grouped CV inside them picks its regularisation)",
    }
    return results, {"info": info, "size": size_baseline(results, fold_of)}


def evaluate_leaky(
    study: str | Path,
    k: int,
    out: str | Path,
    device: str = "auto",
    epochs: int = 40,
    seed: int = 0,
    batch_size: int = 16,
    crop: int = 128,
    progress: ProgressFn | None = None,
) -> dict:
    """The paper's protocol: K-fold over slices, ignoring which rat a slice came from (leaky)."""

    study = Path(study)
    ds = build_dataset([study], ModelCard())
    dices, ys, probas = [], [], []
    dev = resolve_device(device)
    for i in range(k):
        model_dir = Path(out) / "leaky" / f"fold{i}"
        _train_once(
            TrainConfig([study], model_dir, epochs=epochs, seed=seed, device=device, batch_size=batch_size, crop=crop,
                        leaky_folds=k, leaky_fold=i, version=f"leaky{k}-fold{i}", export_graph=False),
            progress,
        )  # fmt: skip
        net = build_network(load_model(model_dir)).to(dev).eval()
        held = leaky_holdout(ds, k, i, seed)
        held = held[ds.tumor_slices[held]]
        with torch.no_grad():
            for start in range(0, len(held), 32):
                part = held[start : start + 32]
                m, a, *_ = net(torch.from_numpy(ds.x[part].astype(np.float32)).to(dev))
                prob = torch.sigmoid(m)[:, 0].cpu().numpy() >= 0.5
                truth = ds.y[part]  # on the batch's grid, as ds.x[part] was
                for j, s in enumerate(part):
                    dices.append(dice(prob[j], truth[j]))
                    scan = ds.scans[ds.scan_of_slice[s]]
                    if scan.arm_labelled:
                        ys.append(scan.arm_index)
                        probas.append(torch.softmax(a[j], 0).cpu().numpy())
    arms = arm_metrics(np.array(ys), np.array(probas), ARMS) if ys else {}
    return {
        "protocol": f"slice-level {k}-fold (LEAKY: slices of one rat on both sides)",
        "tumor_slices": len(dices),
        "dice_mean": float(np.mean(dices)) if dices else float("nan"),
        "macro_auroc": arms.get("macro_auroc", float("nan")),
        "accuracy": arms.get("accuracy", float("nan")),
        "per_arm_auroc": {a: v["auroc"] for a, v in arms.get("per_arm", {}).items()},
    }


# -- writing ---------------------------------------------------------------------------------------


def write_results(
    out: str | Path,
    results: list[ScanResult],
    summary: dict,
    info: dict,
    leaky: dict | None = None,
    notes: str | None = None,
) -> Path:

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    fields = list(ScanResult.__dataclass_fields__)
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow(
            {k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in asdict(r).items()}
        )
    write_text(out / "per_scan.csv", buf.getvalue())
    write_text(
        out / "metrics.json", json.dumps(_jsonable({"info": info, "summary": summary, "leaky": leaky}), indent=2) + "\n"
    )
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
