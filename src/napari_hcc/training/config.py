"""The options of a training run and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.model.catalog import WEIGHTS_FILE
from napari_hcc.training.adaptation import ADAPTATION
from napari_hcc.training.augment import AugmentConfig
from napari_hcc.training.losses import LossWeights
from napari_hcc.vocabulary import Precision


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
    precision: Precision = "auto"
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
    #: chance that a slice is shown with fewer sequences than its session has (training/sequence_dropout.py);
    #: None: 0.5 for a new model or one that reads subsets, 0 (the stand-in behaviour) for an older --init
    sequence_dropout: float | None = None
    crop: int | None = 128  # training window in pixels (None: whole slices)
    #: at least this many optimiser steps: on a small set (a few corrected scans) each epoch goes round its
    #: slices again until the epochs hold this many steps (one checkpoint per epoch, not per pass)
    min_steps: int = 0
    #: train the anatomy head (liver, kidney, gut, ... from the simulator's tissue maps; training/anatomy.py).
    #: None: as the model it starts from (a new model: no); False removes the head of a model that has one
    anatomy: bool | None = None
    #: make the CPU backends' graph at the end (False: a transient model, e.g. an evaluation fold's,
    #: that is scored with torch and never shipped; predict on it says it has no graph and runs torch)
    export_graph: bool = True
    #: publish the mean of the weights of epochs N..last (training/averaging.py) instead of the epoch that
    #: validation picks (kept in OUT/training/best); None: the pick
    average_from: int | None = None
    freeze_encoder: bool = False  # train only the decoder and heads (the encoder's BatchNorm statistics too)
    #: every BatchNorm layer keeps its running statistics (decoder and heads too); a few scans' batches
    #: would otherwise replace the statistics the network was trained with
    freeze_norm: bool = False
    #: adapting to a lab (--init, --corrections-only): its corrected scans choose which of its sequences the
    #: new model reads (training/sequence_choice.py); a sequence that misleads the model is left out
    choose_sequences: bool = False
    loss: LossWeights = field(default_factory=LossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def check(self) -> None:
        if self.epochs < 1:
            raise InputError(f"--epochs must be at least 1 (got {self.epochs}).")
        if self.batch_size < 2:
            raise InputError(f"--batch-size must be at least 2 for training (got {self.batch_size}).")
        if self.sequence_dropout is not None and not 0.0 <= self.sequence_dropout <= 1.0:
            raise InputError(f"--sequence-dropout must be between 0 and 1 (got {self.sequence_dropout}).")
        if not 0.0 <= self.augment.p_coil <= 1.0:
            raise InputError(f"--surface-coil must be between 0 and 1 (got {self.augment.p_coil}).")
        if not 0.0 <= self.warmup_epochs <= self.epochs:
            raise InputError(f"--warmup-epochs must be between 0 and {self.epochs} (got {self.warmup_epochs}).")
        if self.tumor_free_share < 0:
            raise InputError(f"--tumor-free-share must be 0 or more (got {self.tumor_free_share}).")
        if self.loss.slice_dice < 0:
            raise InputError(f"--slice-dice must be 0 or more (got {self.loss.slice_dice}).")
        if self.crop is not None and (self.crop < 32 or self.crop % 32):
            raise InputError(f"--crop must be a multiple of 32 pixels (got {self.crop}).")
        if self.average_from is not None and not 1 <= self.average_from <= self.epochs:
            raise InputError(f"--average-from must be an epoch from 1 to {self.epochs} (got {self.average_from}).")
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
    averaged_epochs: list[int] = field(default_factory=list)  # the published mean's epochs (none: the pick)
    mean_validation: dict = field(default_factory=dict)  # the mean's validation figures
    sequence_choice: dict | None = None  # with choose_sequences: training/sequence_choice.SequenceChoice as a dict


def adaptation_kwargs() -> dict:
    """The adaptation setting (training/adaptation.py) as TrainConfig keywords: what `train --init
    --corrections-only`, the review widget's "Improve the model" and `evaluate --adapt` all fine-tune with."""
    return {
        "epochs": ADAPTATION["epochs"],
        "lr": ADAPTATION["lr"],
        "warmup_epochs": ADAPTATION["warmup_epochs"],
        "min_steps": ADAPTATION["min_steps"],
        "freeze_encoder": ADAPTATION["freeze_encoder"],
        "freeze_norm": ADAPTATION["freeze_norm"],
        "sequence_dropout": ADAPTATION["sequence_dropout"],
        "choose_sequences": ADAPTATION["choose_sequences"],
        "val_fraction": ADAPTATION["val_fraction"],
        "augment": AugmentConfig(p_contrast=ADAPTATION["p_contrast"]),
    }
