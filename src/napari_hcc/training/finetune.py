"""Improve a model with a study's saved corrections: `train --init MODEL --corrections-only`, with
some corrected rats held out to show the Dice before and after.

    result = fine_tune(study, base=None, epochs=10, progress=callback, cancel=event)

* Which scans: every session of the study with a complete saved correction (`trainingset`).
* Held out: with corrections on two or more rats, a quarter of those rats (at least one) are kept out
  of training and scored with the old and the new model against their corrections. With one rat
  only, nothing can be held out; the Dice is then measured on the training corrections and
  `independent` is False (the GUI says so).
* Where the new model goes: a new folder under the user models folder (`model.catalog.user_models_folder`);
  the base model, shipped or not, is never touched. A `finetune.json` beside it records the scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.io import bids
from napari_hcc.io.atomic import write_text
from napari_hcc.io.scan import ref_label
from napari_hcc.io.study import find_scans, study_root
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import dice
from napari_hcc.model.catalog import WEIGHTS_FILE, default_model_folder, user_models_folder
from napari_hcc.model.loading import load_model
from napari_hcc.progress import CancelFlag, Progress, ProgressFn, drain
from napari_hcc.training.adaptation import ADAPTATION
from napari_hcc.training.config import TrainConfig, adaptation_kwargs
from napari_hcc.training.sequence_choice import SequenceChoice
from napari_hcc.training.trainer import Trainer


@dataclass
class FineTuneResult:
    model_dir: Path | None  # None when stopped before the end
    base_model: str
    new_model: str | None
    trained_scans: list[str]
    held_out_scans: list[str]
    independent: bool  # the before/after scans were not trained on
    dice_before: dict[str, float] = field(default_factory=dict)
    dice_after: dict[str, float] = field(default_factory=dict)
    epochs_run: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    sequences: SequenceChoice | None = None  # which of the lab's sequences the new model reads, and why

    @property
    def mean_before(self) -> float:
        return float(np.mean(list(self.dice_before.values()))) if self.dice_before else float("nan")

    @property
    def mean_after(self) -> float:
        return float(np.mean(list(self.dice_after.values()))) if self.dice_after else float("nan")


def corrected_sessions(study: str | Path) -> list:
    """The study's scans that have a complete saved correction."""
    root = Path(study)
    return [
        r
        for r in find_scans(root, with_truth=False)
        if r.subject and r.session and bids.correction_versions(root, r.subject, r.session)
    ]


def held_out_rats(rats: list[str], seed: int = 0) -> list[str]:
    rats = sorted(set(rats))
    if len(rats) < 2:
        return []
    n = max(1, round(len(rats) / 4))
    rng = np.random.default_rng(seed)
    return sorted(rats[i] for i in rng.permutation(len(rats))[:n])


def new_model_folder(base_name: str) -> Path:

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = user_models_folder() / f"{base_name}-finetuned-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = user_models_folder() / f"{base_name}-finetuned-{stamp}-{n}"
    return folder


def _base_spec(base: str | Path | None) -> str:

    if base is not None:
        return str(base)
    folder = default_model_folder()
    if not (folder / WEIGHTS_FILE).exists():
        raise InputError("there is no trained default model to fine-tune; choose a model file.")
    return str(folder)


def dice_on(refs, models: list, device: str = "auto") -> list[dict[str, float]]:
    """Dice of each model's masks against each scan's newest saved correction (one dict per model);
    every scan and correction is read once, whatever the number of models."""

    engines = [Engine(model, device=device) for model in models]
    out: list[dict[str, float]] = [{} for _ in models]
    for ref in refs:
        truth = load_volume(bids.latest_correction(study_root(ref), ref.subject, ref.session), "mask").data > 0
        scan = ref.load()
        for scores, engine in zip(out, engines):
            scores[ref_label(ref)] = round(float(dice(engine.predict(scan, keep_probability=False).mask > 0, truth)), 4)
    return out


def fine_tune(
    study: str | Path,
    base: str | Path | None = None,
    out: str | Path | None = None,
    epochs: int = ADAPTATION["epochs"],
    lr: float = ADAPTATION["lr"],
    device: str = "auto",
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: CancelFlag | None = None,
    choose_sequences: bool = ADAPTATION["choose_sequences"],
) -> FineTuneResult:
    """Fine-tune `base` (None = the shipped default) on the corrected sessions of `study`; see `fine_tune_steps`."""
    return drain(fine_tune_steps(study, base, out, epochs, lr, device, seed, cancel, choose_sequences), progress)


def fine_tune_steps(
    study: str | Path,
    base: str | Path | None = None,
    out: str | Path | None = None,
    epochs: int = ADAPTATION["epochs"],
    lr: float = ADAPTATION["lr"],
    device: str = "auto",
    seed: int = 0,
    cancel: CancelFlag | None = None,
    choose_sequences: bool = ADAPTATION["choose_sequences"],
) -> Generator[Progress, None, FineTuneResult]:
    """`fine_tune` as a generator (for the GUI's worker): training's `Progress`, then one
    `Progress(0, scans, "scan", {"phase": "scoring"})` while the old and new models are scored."""

    root = Path(study)
    refs = corrected_sessions(root)
    if not refs:
        raise InputError(f"{root} has no saved corrections yet; correct a mask and press Save correction first.")
    base_spec = _base_spec(base)
    base_model = load_model(base_spec)
    held = held_out_rats([r.subject for r in refs], seed)
    train_refs = [r for r in refs if r.subject not in held]
    test_refs = [r for r in refs if r.subject in held] or train_refs
    out = Path(out) if out is not None else new_model_folder(base_model.card.name)
    version = f"{base_model.card.version or '0'}+ft{time.strftime('%Y%m%d%H%M%S')}"
    cfg = TrainConfig(
        studies=[root],
        out=out,
        **{**adaptation_kwargs(), "epochs": epochs, "lr": lr, "choose_sequences": choose_sequences},
        seed=seed,
        device=device,
        init=base_spec,
        corrections_only=True,
        exclude_rats=[f"{root.name}/{rat}" for rat in held],  # the trainer names a rat by study and subject
        patience=max(3, epochs),
        version=version,
    )
    started = time.perf_counter()
    result = FineTuneResult(
        None,
        base_model.model_id,
        None,
        [ref_label(r) for r in train_refs],
        [ref_label(r) for r in test_refs],
        bool(held),
    )
    trained = yield from Trainer(cfg, cancel).steps()
    result.epochs_run, result.cancelled = trained.epochs_run, trained.cancelled
    result.sequences = SequenceChoice(**trained.sequence_choice) if trained.sequence_choice else None
    if trained.cancelled:
        result.seconds = time.perf_counter() - started
        return result
    new_model = load_model(out)
    yield Progress(0, len(test_refs), "scan", {"phase": "scoring"})
    result.dice_before, result.dice_after = dice_on(test_refs, [base_model, new_model], device)
    result.model_dir, result.new_model = out, new_model.model_id
    result.seconds = time.perf_counter() - started
    record = {
        "base_model": result.base_model,
        "new_model": result.new_model,
        "study": str(root.resolve()),
        "trained_scans": result.trained_scans,
        "held_out_scans": result.held_out_scans,
        "independent": result.independent,
        "dice_before": result.dice_before,
        "dice_after": result.dice_after,
        "epochs": result.epochs_run,
        "seconds": round(result.seconds, 1),
        "sequences": result.sequences.as_dict() if result.sequences else None,
    }
    write_text(out / "finetune.json", json.dumps(record, indent=2) + "\n")
    return result
