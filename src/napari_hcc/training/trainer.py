"""Training: `napari-hcc train` and the GUI's fine-tuning both call `train(TrainConfig(...))`.

* Data: `training.dataset.build_dataset` (every session; corrections take precedence over truth); each
  epoch takes every tumor slice plus a share of tumor-free slices, shuffled with a seed per epoch.
* Rats, never slices, are split: `--folds K --fold I` leaves fold I's rats out entirely, and a
  rat-grouped validation split of the remaining rats drives early stopping and the best checkpoint.
* AdamW, a cosine learning-rate schedule with a warm-up, gradient clipping; mixed precision on a GPU
  (bf16, or fp16 with a gradient scaler), bf16 on CPUs with native bf16, fp32 otherwise.
* Resumable: after every epoch the weights, the optimizer and the history are saved (safetensors +
  JSON, atomically) under `OUT/training/`; running the same command again continues from there.
* Distributed: under `torchrun --nproc-per-node N` each process takes every N-th batch of the epoch
  and DistributedDataParallel averages the gradients (gloo on CPU, NCCL on GPU); rank 0 validates,
  saves and reports progress.
* A new model never overwrites an existing one; `--init MODEL` fine-tunes from a model's weights.
* `--average-from N` publishes the mean of the weights of epochs N..last (`training/averaging.py`),
  validated like an epoch; the epoch validation picked stays in `OUT/training/best`.

The loop is a `Trainer` with hook methods in the manner of nnU-Net's `nnUNetTrainer`: `on_train_start`
(data, splits, network, optimizer, resumed state), `train_epoch` and `train_step`, `on_epoch_end`
(validation, best checkpoint, saved state, early stop) and `on_train_end` (the published model). A
variant overrides a hook. `Trainer.steps()` is the run as a generator of the one progress contract of
`progress.py` (like `Engine.steps`): a `Progress(batch, batches, "batch")` after each step and a
`Progress(epoch, epochs, "epoch")` with the epoch's losses and validation after each epoch; `cancel` is
checked before each step. `train()` drains it into a progress callback.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from napari_hcc.errors import InputError
from napari_hcc.inference.slices import reads_subsets
from napari_hcc.model.card import ModelCard
from napari_hcc.model.checkpoint import build_network, save_model
from napari_hcc.model.devices import autocast, choose_precision
from napari_hcc.model.export import export_graph, export_like
from napari_hcc.model.loading import load_model
from napari_hcc.model.network import HCCNet, add_anatomy_head, drop_anatomy_head, load_encoder_weights
from napari_hcc.progress import CancelFlag, Progress, ProgressFn, drain, is_cancelled
from napari_hcc.training.anatomy import check_anatomy, wants_anatomy
from napari_hcc.training.averaging import WeightMean
from napari_hcc.training.batches import make_batch
from napari_hcc.training.config import TrainConfig, TrainResult
from napari_hcc.training.dataset import build_dataset, slice_targets
from napari_hcc.training.distributed import device_for, dist_env
from napari_hcc.training.losses import multitask_loss
from napari_hcc.training.schedule import lr_at
from napari_hcc.training.sequence_choice import lab_sequences, with_choice
from napari_hcc.training.splits import epoch_indices, leaky_holdout, rat_folds, validation_rats
from napari_hcc.training.state import STATE_DIR, final_card, load_state, publish, save_state, write_history
from napari_hcc.training.validation import selection_score, validate
from napari_hcc.vocabulary import ANATOMY


class Trainer:
    """One training run. `run()` calls the hooks in order and returns a `TrainResult`."""

    def __init__(self, cfg: TrainConfig, cancel: CancelFlag | None = None):
        cfg.check()
        self.cfg = copy.copy(cfg)  # epochs may grow to reach min_steps
        self.cancel = cancel
        self.rank, self.world, local_rank = dist_env()
        self.distributed = self.world > 1
        self.main = self.rank == 0
        self.device = device_for(cfg.device, self.world, local_rank)
        self.out = Path(cfg.out)
        self.state_dir = self.out / STATE_DIR
        self.history: list[dict] = []
        self.start_epoch, self.best_neg_score, self.best_epoch, self.since_best = 0, float("inf"), -1, 0
        self.seen, self.train_seconds, self.cancelled, self.stopped_early = 0, 0.0, False, False

    # -- the hooks ---------------------------------------------------------------------------------

    def on_train_start(self) -> None:
        """Data, the rat-grouped splits, the network, the optimizer and, when resuming, the saved state."""
        cfg = self.cfg
        if self.distributed and not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
        self.precision = choose_precision(self.device, cfg.precision)
        if self.precision == "fp16" and self.device.type == "cpu":
            self.precision = "fp32"
        self.started = time.perf_counter()
        self.base = load_model(cfg.init) if cfg.init else None
        card = copy.deepcopy(self.base.card) if self.base else ModelCard()
        card.name = cfg.name if not self.base else card.name
        card.trained, card.metrics, card.weights, card.created = True, {}, {}, ""
        if cfg.sequence_dropout is None:
            cfg.sequence_dropout = 0.5 if self.base is None or reads_subsets(card) else 0.0
        self.sequence_dropout = cfg.sequence_dropout
        if self.sequence_dropout > 0 or reads_subsets(card):  # from now on, missing sequences are zeros
            card.input = {**card.input, "missing_sequences": "zero"}
        base_has_head = bool(card.architecture.get("anatomy"))
        anatomy = wants_anatomy(cfg.anatomy, card)
        self.sequence_choice = None
        if cfg.choose_sequences and self.base is not None and reads_subsets(card):  # before the data: it is read so
            self.sequence_choice = lab_sequences(self.base, cfg.studies, cfg.exclude_rats, str(self.device))
            card.input = with_choice(card.input, self.sequence_choice)
        self.card = card
        self.ds = build_dataset(cfg.studies, card, corrections_only=cfg.corrections_only, anatomy=anatomy)
        if anatomy:
            check_anatomy(self.ds, base_has_head, cfg.studies)
        self._split_rats()

        torch.manual_seed(cfg.seed)
        net = build_network(self.base) if self.base is not None else HCCNet(card.architecture)
        if anatomy and not net.has_anatomy:  # a new model, or an older one, learns anatomy too
            add_anatomy_head(net, ANATOMY)
        elif not anatomy and net.has_anatomy:  # --no-anatomy
            drop_anatomy_head(net)
        card.architecture = dict(net.architecture)  # the card describes the network it will be saved with
        if self.base is None and cfg.encoder_weights:
            load_encoder_weights(net, cfg.encoder_weights)
        self.net = net.to(device=self.device, memory_format=torch.channels_last)
        if cfg.freeze_encoder:
            for p in self.net.net.encoder.parameters():
                p.requires_grad_(False)
        self._train_mode()
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        fp16_on_gpu = self.precision == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if fp16_on_gpu else None

        per_epoch = len(epoch_indices(self.train_slices, self.ds.tumor_slices, cfg.tumor_free_share, cfg.seed, 0))
        self.steps_per_epoch = max(1, math.ceil(per_epoch / (cfg.batch_size * self.world)))
        if cfg.min_steps > self.steps_per_epoch * cfg.epochs:  # a few scans: their slices go round again
            self.steps_per_epoch = math.ceil(cfg.min_steps / cfg.epochs)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        if (self.state_dir / "state.json").exists():
            self._resume()
        self.mean = WeightMean.load(self.state_dir)  # empty unless a run with --average-from resumes
        self.model = torch.nn.parallel.DistributedDataParallel(self.net) if self.distributed else self.net

    def train_epoch(self, epoch: int) -> Generator[Progress, None, dict | None]:
        """One epoch of steps, yielding `Progress` after each (on the main rank); returns the epoch's mean
        losses, or None when cancelled."""
        cfg = self.cfg
        idx = epoch_indices(self.train_slices, self.ds.tumor_slices, cfg.tumor_free_share, cfg.seed, epoch)
        idx = np.resize(idx, self.steps_per_epoch * cfg.batch_size * self.world)  # every rank runs the same steps
        mine = idx[self.rank :: self.world]
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch * 101 + self.rank)
        self.draws = np.random.default_rng([cfg.seed, epoch, self.rank, 17])  # crops and sequence dropout
        torch.manual_seed(cfg.seed * 7919 + epoch * 13 + self.rank)  # dropout: a resumed run repeats the same epoch
        sums: dict[str, float] = {}
        self._train_mode()  # validation left the network in eval mode
        t_epoch = time.perf_counter()
        step = -1
        for step in range(self.steps_per_epoch):
            if is_cancelled(self.cancel):
                self.cancelled = True
                break
            part = mine[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            parts = self.train_step(part, gen, epoch * self.steps_per_epoch + step)
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            self.seen += len(part) * self.world
            if self.main:
                detail = {"epoch": epoch + 1, "epochs": cfg.epochs, "batch": step + 1, "batches": self.steps_per_epoch}
                yield Progress(step + 1, self.steps_per_epoch, "batch", {**detail, **parts})
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.train_seconds += time.perf_counter() - t_epoch
        if self.cancelled:
            return None
        done = step + 1
        return {
            "epoch": epoch + 1,
            **{k: v / done for k, v in sums.items()},
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - t_epoch, 2),
        }

    def train_step(self, part: np.ndarray, gen: torch.Generator, global_step: int) -> dict:
        """One optimiser step on the slices `part`: crop, augment, drop sequences, forward, multi-task loss,
        backward, clip."""
        cfg, device, ds = self.cfg, self.device, self.ds
        batch = make_batch(
            ds,
            part,
            crop_px=cfg.crop,
            draws=self.draws,
            gen=gen,
            device=device,
            augment_cfg=cfg.augment,
            sequence_dropout=self.sequence_dropout,
            zero_missing=reads_subsets(self.card),
        )
        x, y, organ_t = batch.x, batch.mask, batch.organs
        arm, bio = slice_targets(ds, part)
        for g in self.optimizer.param_groups:
            g["lr"] = lr_at(global_step, self.total_steps, self.warmup, cfg.lr)
        with autocast(device, self.precision):
            m, a, b, *organ_logits = self.model(x.contiguous(memory_format=torch.channels_last))
        arm_t, bio_t = torch.from_numpy(arm).to(device), torch.from_numpy(bio).to(device)
        organ_logits = organ_logits[0] if organ_logits else None
        loss, parts = multitask_loss(m, a, b, y, arm_t, bio_t, cfg.loss, organ_logits, organ_t)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
            self.optimizer.step()
        return parts

    def on_epoch_end(self, epoch: int, row: dict) -> bool:
        """Validate, keep the best checkpoint, save the resumable state, report; True to stop early."""
        cfg = self.cfg
        stop_now = torch.zeros(1)
        if self.main:
            if self.val_scans:
                row.update(self._validation(self.net))
                improved = -row["val_score"] < self.best_neg_score
            else:
                improved = True  # no validation rats (tiny cohort): the last epoch is kept
            if improved:
                self.best_neg_score, self.best_epoch, self.since_best = (
                    -row.get("val_score", float("nan")),
                    epoch + 1,
                    0,
                )
                self._save_checkpoint(self.net, row, self.state_dir / "best")
            else:
                self.since_best += 1
            self.history.append(row)
            if cfg.average_from is not None and epoch + 1 >= cfg.average_from:
                self.mean.add(self.net, epoch + 1)
                self.mean.save(self.state_dir)  # before the state: a resume never loses an epoch of the mean
            meta = {
                "epoch": epoch,
                "best_neg_score": self.best_neg_score,
                "best_epoch": self.best_epoch,
                "since_best": self.since_best,
                "history": self.history,
                "fingerprint": self.ds.fingerprint,
            }
            save_state(self.state_dir, self.net, self.optimizer, meta)
            if self.val_scans and self.since_best >= cfg.patience:
                stop_now[0] = 1
        if self.distributed:
            torch.distributed.broadcast(stop_now, src=0)
        return bool(stop_now[0] > 0)

    def on_train_end(self, last_epoch: int) -> TrainResult:
        """Publish the best checkpoint (unless cancelled) and tear the process group down."""
        seconds = time.perf_counter() - self.started
        rate = self.seen / self.train_seconds if self.train_seconds > 0 else 0.0
        mean_row: dict = {}
        if self.main and not self.cancelled:
            write_history(self.state_dir / "history.csv", self.history)
            chosen = self.state_dir / "best"
            if self.mean.count:  # --average-from: the mean of the last epochs' weights, validated like an epoch
                mean_net = self.mean.network(self.net)
                mean_row = {"epoch": self.mean.epochs[-1]}
                if self.val_scans:
                    mean_row.update(self._validation(mean_net))
                chosen = self.state_dir / "mean"
                self._save_checkpoint(mean_net, mean_row, chosen, averaged=self.mean.epochs)
            publish(chosen, self.out, rate, seconds, last_epoch + 1, self.stopped_early)
            # the CPU backends' graph: the graph of a model built alike, reweighted in seconds, else traced
            # (a minute; a new architecture, e.g. the first model with an anatomy head). A trace that fails
            # leaves the model without a graph: predict then says so and runs torch.
            if self.cfg.export_graph:
                with contextlib.suppress(InputError):
                    export_like(self.out, self.cfg.init) or export_graph(self.out)
        if self.distributed:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        epochs_run = last_epoch + 1 - self.start_epoch if not self.cancelled else last_epoch - self.start_epoch
        return TrainResult(
            self.out,
            epochs_run,
            self.best_epoch,
            self.stopped_early,
            self.cancelled,
            seconds,
            rate,
            self.history,
            self.train_rats,
            self.val_rats,
            self.test_rats,
            list(self.mean.epochs),
            {k: v for k, v in mean_row.items() if k.startswith("val_")},
            self.sequence_choice.as_dict() if self.sequence_choice else None,
        )

    # -- the run -----------------------------------------------------------------------------------

    def steps(self) -> Generator[Progress, None, TrainResult]:
        """The run as a generator: yields `Progress` after each step ("batch") and each epoch ("epoch",
        with the epoch's losses and validation as detail) on the main rank; returns the `TrainResult`."""
        self.on_train_start()
        if self.start_epoch and self.main:
            yield Progress(self.start_epoch, self.cfg.epochs, "epoch", {"resumed": True, "out": str(self.out)})
        epoch = self.start_epoch - 1
        for epoch in range(self.start_epoch, self.cfg.epochs):
            row = yield from self.train_epoch(epoch)
            if row is None:
                break
            stop = self.on_epoch_end(epoch, row)
            if self.main:
                yield Progress(epoch + 1, self.cfg.epochs, "epoch", row)
            if stop:
                self.stopped_early = True
                break
        return self.on_train_end(epoch)

    # -- helpers -----------------------------------------------------------------------------------

    def _train_mode(self) -> None:
        """Training mode, except a frozen encoder, whose BatchNorm keeps its running statistics, and,
        with `freeze_norm`, every BatchNorm layer."""
        self.net.train()
        if self.cfg.freeze_encoder:
            self.net.net.encoder.eval()
        if self.cfg.freeze_norm:
            for module in self.net.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def _validation(self, net) -> dict:
        """The validation figures of `net` on the validation rats (and with T2w alone, for a model that
        reads subsets), and the score that picks the best epoch."""
        cfg = self.cfg
        row = validate(net, self.ds, self.val_scans, self.device, self.precision, cfg.loss)
        if reads_subsets(self.card):  # the subset a T2w-only lab reads, on the same rats
            t2w = validate(net, self.ds, self.val_scans, self.device, self.precision, cfg.loss, only=("T2w",))
            row["val_dice_t2w"] = t2w["val_dice"]
        row["val_score"] = selection_score(row, readout=self.base is not None and self.base.readout is not None)
        return row

    def _save_checkpoint(self, net, row: dict, folder: Path, averaged: list[int] | None = None) -> None:
        """`net` as a model in `folder`, its card describing this run and the validation `row`."""
        cfg = self.cfg
        card = final_card(
            self.card, cfg, self.ds, self.train_rats, self.val_rats, self.test_rats, row, self.precision, self.device
        )
        if averaged:
            card.training.update({"best_epoch": self.best_epoch, "averaged_epochs": list(averaged)})
        readout = self.base.readout if self.base is not None else None
        subsets = self.base.subset_readouts if self.base is not None else None
        save_model(net, card, folder, overwrite=True, readout=readout, subset_readouts=subsets)

    def _split_rats(self) -> None:
        """Held-out rats (an evaluation fold), validation rats and training rats; or, for the paper's
        leaky protocol, held-out slices and no validation rats."""
        cfg, ds = self.cfg, self.ds
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
        self.val_scans = [i for i, s in enumerate(ds.scans) if s.rat in val_rats]
        self.train_slices = np.concatenate([np.arange(ds.scans[i].start, ds.scans[i].stop) for i in train_scans])
        if cfg.leaky_folds is not None:  # slices, not rats, are held out; no validation rats (as in the paper)
            train_rats, val_rats, self.val_scans = sorted(rat_arm), [], []
            held = set(leaky_holdout(ds, cfg.leaky_folds, cfg.leaky_fold, cfg.seed).tolist())
            self.train_slices = np.array([i for i in range(len(ds.y)) if i not in held])
        self.train_rats, self.val_rats, self.test_rats = train_rats, val_rats, test_rats

    def _resume(self) -> None:
        meta = load_state(self.state_dir, self.net, self.optimizer)
        if meta.get("fingerprint") != self.ds.fingerprint:
            raise InputError(
                f"{self.state_dir} holds an unfinished run on other data; remove it or choose a new --out."
            )
        self.start_epoch = meta["epoch"] + 1
        self.best_neg_score, self.best_epoch = meta["best_neg_score"], meta["best_epoch"]
        self.since_best, self.history = meta["since_best"], meta["history"]


def train(cfg: TrainConfig, progress: ProgressFn | None = None, cancel: CancelFlag | None = None) -> TrainResult:
    """Train (or fine-tune, with `cfg.init`) a model; see the module's docstring."""
    return drain(Trainer(cfg, cancel).steps(), progress)
