"""What a training run keeps on disk: the resumable state after every epoch (safetensors + JSON, no pickle),
the history, and the published model with the run's totals in its card."""

from __future__ import annotations

import copy
import csv
import io
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from napari_hcc import __version__
from napari_hcc.inference.liver_gate import DEFAULT_MIN_SHARE, DEFAULT_RING_MM, GATE_MIN_LIVER_DICE
from napari_hcc.io.atomic import atomic_path, write_text
from napari_hcc.model.card import ModelCard
from napari_hcc.model.catalog import CARD_FILE, WEIGHTS_FILE
from napari_hcc.training.config import TrainConfig

STATE_DIR = "training"


def save_state(folder: Path, net, optimizer, meta: dict) -> None:
    """Weights + optimizer tensors (safetensors) and everything else (JSON): no pickle."""

    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, value in st.items():
            tensors[f"opt/{idx}/{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt["param_groups"]]
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "state.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_text(folder / "state.json", json.dumps({**meta, "param_groups": groups}, indent=1) + "\n")


def load_state(folder: Path, net, optimizer) -> dict:

    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "state.safetensors"))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return meta


def final_card(
    card: ModelCard, cfg: TrainConfig, ds, train_rats, val_rats, test_rats, row: dict, precision: str, device
) -> ModelCard:

    new = copy.deepcopy(card)
    new.version = cfg.version or time.strftime("%Y.%m.%d-%H%M%S", time.gmtime())
    new.trained = True
    new.description = f"trained by napari-hcc {__version__} train" + (
        f", fine-tuned from {cfg.init}" if cfg.init else ""
    )
    new.training = {
        "studies": ds.sources,
        "simulations": ds.simulations,
        "fingerprint": ds.fingerprint,
        "scans": len(ds.scans),
        "mask_sources": {k: sum(s.mask_source == k for s in ds.scans) for k in ("truth", "correction")},
        "train_rats": train_rats,
        "val_rats": val_rats,
        "held_out_rats": test_rats,
        "epochs": cfg.epochs,
        "best_epoch": row["epoch"],
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "seed": cfg.seed,
        "precision": precision,
        "device": str(device),
        "tumor_free_share": cfg.tumor_free_share,
        "folds": cfg.folds,
        "fold": cfg.fold,
        "init": cfg.init,
        "corrections_only": cfg.corrections_only,
        "loss_weights": cfg.loss.as_dict(),
        "augment": cfg.augment.as_dict(),
        "sequence_subsets": ds.subsets(),  # the sessions' own sequences
        "sequence_dropout": cfg.sequence_dropout,
        "crop": cfg.crop,
        "min_steps": cfg.min_steps,
        "freeze_encoder": cfg.freeze_encoder,
        "freeze_norm": cfg.freeze_norm,
    }
    new.metrics = {k: round(v, 5) for k, v in row.items() if k.startswith("val_")}
    if "val_liver_dice" in row:  # this run measured its anatomy head: the gate is on if the head is good
        new.postprocess = {**new.postprocess, **anatomy_gate(row["val_liver_dice"])}
    return new


def anatomy_gate(liver_dice: float) -> dict:
    """The card's anatomy-gate settings after a run that taught the anatomy head: on (the default share)
    when the head outlined the validation rats' liver with a Dice of at least GATE_MIN_LIVER_DICE, off
    otherwise (a poor liver outline would remove true tumors)."""
    good = liver_dice >= GATE_MIN_LIVER_DICE
    return {"min_liver_share": DEFAULT_MIN_SHARE if good else 0.0, "liver_ring_mm": DEFAULT_RING_MM}


def write_history(path: Path, history: list[dict]) -> None:
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    write_text(path, buf.getvalue())


def publish(best: Path, out: Path, rate: float, seconds: float, epochs_run: int, stopped_early: bool) -> None:
    """Copy the best checkpoint to OUT (never over an existing model), with the run's totals in its card."""
    card = ModelCard.from_json((best / CARD_FILE).read_text(encoding="utf-8"), best / CARD_FILE)
    card.training.update(
        {
            "epochs_run": epochs_run,
            "stopped_early": stopped_early,
            "seconds": round(seconds, 1),
            "train_slices_per_second": round(rate, 2),
        }
    )
    weights = best / WEIGHTS_FILE
    with atomic_path(out / WEIGHTS_FILE, overwrite=False) as tmp:
        tmp.write_bytes(weights.read_bytes())
    write_text(out / CARD_FILE, card.to_json())
