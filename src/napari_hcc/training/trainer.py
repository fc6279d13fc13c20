"""Training: `napari-hcc train` and the GUI's fine-tuning both call `train(TrainConfig(...))`.

* Data: `training_data.build_dataset` (every session; corrections take precedence over truth); each
  epoch takes every tumor slice plus a share of tumor-free slices, shuffled with a seed per epoch.
* Rats, never slices, are split: `--folds K --fold I` leaves fold I's rats out entirely, and a
  rat-grouped validation split of the remaining rats drives early stopping and the best checkpoint.
* AdamW, a cosine learning-rate schedule with a warm-up, gradient clipping; mixed precision on a GPU
  (bf16, or fp16 with a gradient scaler), bf16 on CPUs with native bf16, fp32 otherwise.
* Resumable: after every epoch the weights, the optimizer and the history are saved (safetensors +
  JSON, atomically) under `OUT/training/`; running the same command again continues from there.
* Distributed: under `torchrun --nproc-per-node N` each process takes every N-th batch of the epoch
  and DistributedDataParallel averages the gradients (gloo on CPU, NCCL on GPU); rank 0 validates,
  saves and shows the progress bar.
* A new model never overwrites an existing one; `--init MODEL` fine-tunes from a model's weights.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.io.atomic import atomic_path, write_text
from napari_hcc.training.augment import AugmentConfig, augment
from napari_hcc.model.checkpoint import CARD_FILE, WEIGHTS_FILE, load_model, save_model
from napari_hcc.training.losses import LossWeights, multitask_loss
from napari_hcc.model.card import ModelCard
from napari_hcc.training.splits import rat_folds, validation_rats
from napari_hcc.io.study import InputError

STATE_DIR = "training"


@dataclass
class TrainConfig:
    studies: list[Path]
    out: Path
    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    init: str | None = None
    encoder_weights: str | None = None
    folds: int | None = None
    fold: int | None = None
    tumor_free_share: float = 0.3  # tumor-free slices per tumor slice in an epoch
    patience: int = 10
    val_fraction: float = 0.2
    name: str = "hcc-unetpp-effb0"
    version: str = ""
    exclude_rats: list[str] = field(default_factory=list)  # e.g. an evaluation fold, given in-process
    corrections_only: bool = False  # learn only from sessions with a reviewer's saved correction
    leaky_folds: int | None = None  # the paper's slice-level K-fold (evaluation --leaky only)
    leaky_fold: int | None = None
    quiet: bool = False
    loss: LossWeights = field(default_factory=LossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def check(self) -> None:
        if self.epochs < 1:
            raise InputError(f"--epochs must be at least 1 (got {self.epochs}).")
        if self.batch_size < 2:
            raise InputError(f"--batch-size must be at least 2 for training (got {self.batch_size}).")
        if (self.folds is None) != (self.fold is None):
            raise InputError("give --folds K and --fold I together.")
        if self.folds is not None and not 0 <= self.fold < self.folds:
            raise InputError(f"--fold must be between 0 and {self.folds - 1} (got {self.fold}).")
        if (Path(self.out) / WEIGHTS_FILE).exists():
            raise InputError(f"{self.out} already holds a model; choose a new folder (models are never overwritten).")


@dataclass
class TrainResult:
    model_dir: Path
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    cancelled: bool
    seconds: float
    slices_per_second: float
    history: list[dict]
    train_rats: list[str]
    val_rats: list[str]
    test_rats: list[str]


# -- distributed ---------------------------------------------------------------------------------


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _device_for(spec: str, world: int, local_rank: int):
    import torch

    from napari_hcc.model.devices import resolve_device

    device = resolve_device(spec)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1 and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return device


# -- the schedule and the saved state ------------------------------------------------------------


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _save_state(folder: Path, net, optimizer, meta: dict) -> None:
    """Weights + optimizer tensors (safetensors) and everything else (JSON): no pickle."""
    import torch
    from safetensors.torch import save_file

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


def _load_state(folder: Path, net, optimizer) -> dict:
    from safetensors.torch import load_file

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


# -- one epoch's slices --------------------------------------------------------------------------


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


def _targets(ds, idx: np.ndarray):
    scans = [ds.scans[i] for i in ds.scan_of_slice[idx]]
    arm = np.array([s.arm_index if s.arm_labelled else -1 for s in scans], dtype=np.int64)
    bio = np.array([[s.viability, s.apoptosis] if s.has_histology else [np.nan, np.nan] for s in scans], dtype=np.float32)
    return arm, bio


# -- validation ----------------------------------------------------------------------------------


def validate(net, ds, scan_ids: list[int], device, precision: str, weights: LossWeights, batch_size: int = 32) -> dict:
    """Loss and per-scan metrics on un-augmented slices, aggregated like inference does."""
    import torch

    from napari_hcc.model.devices import autocast
    from napari_hcc.inference.engine import aggregate_scan
    from napari_hcc.evaluation.metrics import dice

    net.eval()
    losses, dices, arm_true, arm_prob, bio_err = [], [], [], [], []
    with torch.no_grad():
        for i in scan_ids:
            s = ds.scans[i]
            idx = np.arange(s.start, s.stop)
            probs, arms, bios = [], [], []
            for start in range(0, len(idx), batch_size):
                part = idx[start:start + batch_size]
                x = torch.from_numpy(ds.x[part].astype(np.float32)).to(device).contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(ds.y[part].astype(np.float32))[:, None].to(device)
                arm, bio = _targets(ds, part)
                with autocast(device, precision):
                    m, a, b = net(x)
                loss, _ = multitask_loss(m, a, b, y, torch.from_numpy(arm).to(device), torch.from_numpy(bio).to(device), weights)
                losses.append((float(loss), len(part)))
                probs.append(torch.sigmoid(m.float())[:, 0].cpu().numpy())
                arms.append(torch.softmax(a.float(), 1).cpu().numpy())
                bios.append(torch.sigmoid(b.float()).cpu().numpy())
            prob = np.concatenate(probs)
            mask = prob >= 0.5
            dices.append(dice(mask, ds.y[idx]))
            agg = aggregate_scan(prob, mask, np.concatenate(arms)[None], np.concatenate(bios)[None])
            if s.arm_labelled:
                arm_true.append(s.arm_index)
                arm_prob.append(agg.arm_probabilities)
            if s.has_histology and agg.has_tumor:
                bio_err.append([agg.viability - s.viability, agg.apoptosis - s.apoptosis])
    net.train()
    out = {"val_loss": sum(v * n for v, n in losses) / max(1, sum(n for _, n in losses)), "val_dice": float(np.mean(dices)) if dices else float("nan")}
    if arm_true:
        out["val_arm_accuracy"] = float(np.mean(np.argmax(arm_prob, 1) == np.array(arm_true)))
        from napari_hcc.evaluation.metrics import arm_metrics
        from napari_hcc.simulate.biology import ARMS

        out["val_arm_auroc"] = arm_metrics(np.array(arm_true), np.array(arm_prob), ARMS)["macro_auroc"]
    if bio_err:
        err = np.array(bio_err)
        out["val_viability_rmse"], out["val_apoptosis_rmse"] = (float(v) for v in np.sqrt((err ** 2).mean(0)))
    return out


# -- the loop ------------------------------------------------------------------------------------


def train(cfg: TrainConfig, progress: Callable[[dict], None] | None = None, stop=None) -> TrainResult:
    import torch
    from tqdm import tqdm

    from napari_hcc.model.devices import autocast, choose_precision
    from napari_hcc.model.network import HCCNet, load_encoder_weights
    from napari_hcc.training.dataset import build_dataset

    cfg.check()
    rank, world, local_rank = _dist_env()
    distributed = world > 1
    device = _device_for(cfg.device, world, local_rank)
    if distributed and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    precision = choose_precision(device, cfg.precision)
    if precision == "fp16" and device.type == "cpu":
        precision = "fp32"
    main = rank == 0
    out = Path(cfg.out)
    state_dir = out / STATE_DIR
    started = time.perf_counter()

    base = load_model(cfg.init) if cfg.init else None
    card = copy.deepcopy(base.card) if base else ModelCard()
    card.name = cfg.name if not base else card.name
    card.trained, card.metrics, card.weights, card.created = True, {}, {}, ""

    ds = build_dataset(cfg.studies, card, corrections_only=cfg.corrections_only)
    rat_arm = ds.rat_arm()
    test_rats = sorted(set(cfg.exclude_rats) & set(rat_arm))
    if cfg.folds is not None:
        test_rats = sorted(set(test_rats) | set(rat_folds(rat_arm, cfg.folds, cfg.seed)[cfg.fold]))
    pool = {r: a for r, a in rat_arm.items() if r not in test_rats}
    if not pool:
        raise InputError("no rats are left to train on after the held-out fold.")
    val_rats = validation_rats(pool, cfg.val_fraction, cfg.seed)
    train_rats = sorted(set(pool) - set(val_rats))
    train_scans = [i for i, s in enumerate(ds.scans) if s.rat in train_rats]
    val_scans = [i for i, s in enumerate(ds.scans) if s.rat in val_rats]
    train_slices = np.concatenate([np.arange(ds.scans[i].start, ds.scans[i].stop) for i in train_scans])
    if cfg.leaky_folds is not None:  # slices, not rats, are held out; no validation rats (as in the paper)
        train_rats, val_rats, val_scans = sorted(rat_arm), [], []
        held = set(leaky_holdout(ds, cfg.leaky_folds, cfg.leaky_fold, cfg.seed).tolist())
        train_slices = np.array([i for i in range(len(ds.y)) if i not in held])
    tumor = ds.tumor_slices

    torch.manual_seed(cfg.seed)
    net = HCCNet(card.architecture)
    if base is not None:
        net.load_state_dict(base.state)
    elif cfg.encoder_weights:
        load_encoder_weights(net, cfg.encoder_weights)
    net = net.to(device=device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" and device.type == "cuda" else None

    per_epoch = len(epoch_indices(train_slices, tumor, cfg.tumor_free_share, cfg.seed, 0))
    steps_per_epoch = max(1, math.ceil(per_epoch / (cfg.batch_size * world)))
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))

    history: list[dict] = []
    start_epoch, best_neg_score, best_epoch, since_best = 0, float("inf"), -1, 0
    if (state_dir / "state.json").exists():
        meta = _load_state(state_dir, net, optimizer)
        if meta.get("fingerprint") != ds.fingerprint:
            raise InputError(f"{state_dir} holds an unfinished run on other data; remove it or choose a new --out.")
        start_epoch, best_neg_score, best_epoch, since_best, history = meta["epoch"] + 1, meta["best_neg_score"], meta["best_epoch"], meta["since_best"], meta["history"]
        if main and not cfg.quiet:
            tqdm.write(f"resuming {out} after epoch {start_epoch} of {cfg.epochs}")
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed else net

    seen, train_seconds, cancelled, stopped_early = 0, 0.0, False, False
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        idx = epoch_indices(train_slices, tumor, cfg.tumor_free_share, cfg.seed, epoch)
        need = steps_per_epoch * cfg.batch_size * world
        idx = np.resize(idx, need)  # every rank runs the same number of steps
        mine = idx[rank::world]
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch * 101 + rank)
        torch.manual_seed(cfg.seed * 7919 + epoch * 13 + rank)  # dropout: a resumed run repeats the same epoch
        sums = {"loss": 0.0, "seg": 0.0, "arm": 0.0, "bio": 0.0}
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not main or cfg.quiet, leave=False)
        t_epoch = time.perf_counter()
        for step in range(steps_per_epoch):
            if stop is not None and stop.is_set():
                cancelled = True
                break
            part = mine[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x = torch.from_numpy(ds.x[part].astype(np.float32)).to(device)
            y = torch.from_numpy(ds.y[part].astype(np.float32))[:, None].to(device)
            x, y = augment(x, y, gen, cfg.augment)
            arm, bio = _targets(ds, part)
            for g in optimizer.param_groups:
                g["lr"] = lr_at(epoch * steps_per_epoch + step, total_steps, warmup, cfg.lr)
            with autocast(device, precision):
                m, a, b = model(x.contiguous(memory_format=torch.channels_last))
            loss, parts = multitask_loss(m, a, b, y, torch.from_numpy(arm).to(device), torch.from_numpy(bio).to(device), cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimizer.step()
            for k in sums:
                sums[k] += parts[k]
            seen += len(part) * world
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", seg=f"{parts['seg']:.3f}", arm=f"{parts['arm']:.3f}", bio=f"{parts['bio']:.3f}")
            if progress is not None and main:
                progress({"epoch": epoch + 1, "epochs": cfg.epochs, "batch": step + 1, "batches": steps_per_epoch, **parts})
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds += time.perf_counter() - t_epoch
        if cancelled:
            break
        done = step + 1
        row = {"epoch": epoch + 1, **{k: v / done for k, v in sums.items()}, "lr": optimizer.param_groups[0]["lr"],
               "seconds": round(time.perf_counter() - t_epoch, 2)}
        stop_now = torch.zeros(1)
        if main:
            if val_scans:
                row.update(validate(net, ds, val_scans, device, precision, cfg.loss))
                row["val_score"] = selection_score(row)
                improved = -row["val_score"] < best_neg_score
            else:
                improved = True  # no validation rats (tiny cohort): the last epoch is kept
            if improved:
                best_neg_score, best_epoch, since_best = -row.get("val_score", float("nan")), epoch + 1, 0
                save_model(net, _final_card(card, cfg, ds, train_rats, val_rats, test_rats, row, precision, device), state_dir / "best", overwrite=True,
                           readout=base.readout if base is not None else None)
            else:
                since_best += 1
            history.append(row)
            _save_state(state_dir, net, optimizer, {"epoch": epoch, "best_neg_score": best_neg_score, "best_epoch": best_epoch, "since_best": since_best,
                                                    "history": history, "fingerprint": ds.fingerprint})
            if not cfg.quiet:
                tqdm.write("epoch {epoch}: loss {loss:.4f} (seg {seg:.4f}, arm {arm:.4f}, bio {bio:.4f})".format(**row)
                           + "".join(f", val {k[4:].replace('_', ' ')} {v:.4f}" for k, v in row.items() if k.startswith("val_")))
            if val_scans and since_best >= cfg.patience:
                stop_now[0] = 1
        if distributed:
            torch.distributed.broadcast(stop_now, src=0)
        if stop_now[0] > 0:
            stopped_early = True
            break

    seconds = time.perf_counter() - started
    rate = seen / train_seconds if train_seconds > 0 else 0.0
    if main and not cancelled:
        _write_history(state_dir / "history.csv", history)
        _publish(state_dir / "best", out, rate, seconds, epoch + 1, stopped_early)
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return TrainResult(out, epoch + 1 - start_epoch if not cancelled else epoch - start_epoch, best_epoch, stopped_early, cancelled,
                       seconds, rate, history, train_rats, val_rats, test_rats)


def selection_score(row: dict) -> float:
    """What picks the best epoch: validation Dice + macro arm AUROC (each 0..1, the two headline
    targets). The multi-task validation loss was tried first: the arm and biomarker terms overfit early
    on 24 rats and stopped training while the Dice was still rising (0.90 -> 0.93)."""
    dice = row.get("val_dice", 0.0)
    auroc = row.get("val_arm_auroc", float("nan"))
    return float(dice + (auroc if np.isfinite(auroc) else row.get("val_arm_accuracy", 0.0)))


def _final_card(card: ModelCard, cfg: TrainConfig, ds, train_rats, val_rats, test_rats, row: dict, precision: str, device) -> ModelCard:
    from napari_hcc import __version__

    new = copy.deepcopy(card)
    new.version = cfg.version or time.strftime("%Y.%m.%d-%H%M%S", time.gmtime())
    new.trained = True
    new.description = f"trained by napari-hcc {__version__} train" + (f", fine-tuned from {cfg.init}" if cfg.init else "")
    new.training = {
        "studies": ds.sources, "simulations": ds.simulations, "fingerprint": ds.fingerprint, "scans": len(ds.scans),
        "mask_sources": {k: sum(s.mask_source == k for s in ds.scans) for k in ("truth", "correction")},
        "train_rats": train_rats, "val_rats": val_rats, "held_out_rats": test_rats,
        "epochs": cfg.epochs, "best_epoch": row["epoch"], "batch_size": cfg.batch_size, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "seed": cfg.seed, "precision": precision, "device": str(device), "tumor_free_share": cfg.tumor_free_share,
        "folds": cfg.folds, "fold": cfg.fold, "init": cfg.init, "corrections_only": cfg.corrections_only, "loss_weights": cfg.loss.as_dict(), "augment": cfg.augment.as_dict(),
    }
    new.metrics = {k: round(v, 5) for k, v in row.items() if k.startswith("val_")}
    return new


def _write_history(path: Path, history: list[dict]) -> None:
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    write_text(path, buf.getvalue())


def _publish(best: Path, out: Path, rate: float, seconds: float, epochs_run: int, stopped_early: bool) -> None:
    """Copy the best checkpoint to OUT (never over an existing model), with the run's totals in its card."""
    card = ModelCard.from_json((best / CARD_FILE).read_text(encoding="utf-8"), best / CARD_FILE)
    card.training.update({"epochs_run": epochs_run, "stopped_early": stopped_early, "seconds": round(seconds, 1),
                          "train_slices_per_second": round(rate, 2)})
    weights = best / WEIGHTS_FILE
    with atomic_path(out / WEIGHTS_FILE, overwrite=False) as tmp:
        tmp.write_bytes(weights.read_bytes())
    write_text(out / CARD_FILE, card.to_json())
