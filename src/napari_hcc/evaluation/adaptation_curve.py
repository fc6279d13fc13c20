"""The adaptation curve: how a model improves on one lab after a radiologist has corrected 1, 2, 4 or 8 of
its scans, and how long each fine-tuning takes (`evaluate --adapt`, `benchmarks/adaptation_curve.py`).

The lab's rats are shuffled once (seed 0): the last quarter are the test rats, every session of them
scored; the corrected scans come from the other rats, one week-2 session per rat (or the rat's last
session), the study's truth standing in for the radiologist's outline, saved through the same
`save_correction` as the review widget. Each count fine-tunes the model as `train --init MODEL
--corrections-only` does (the adaptation setting, `training/adaptation.py`, unless a setting says
otherwise) in a scratch copy of the study, never in the study itself, and scores the new model on the
test rats. The fine-tuned models are not kept.

With `draws` above 1 (`benchmarks/adaptation_curve.py --draws`, to choose the setting), each count is
fine-tuned again from other corrected scans: draw d of count n takes the n candidates after the first
d * n (going round the list), so a point does not hang on one rat's scan.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import dice
from napari_hcc.model.loading import load_model
from napari_hcc.progress import Progress, ProgressFn
from napari_hcc.review.trainingset import save_correction
from napari_hcc.training.config import TrainConfig, adaptation_kwargs
from napari_hcc.training.trainer import train


@dataclass
class CurvePoint:
    setting: str
    corrected_scans: int
    dice: float
    seconds: float
    epochs: int
    draw: int = 0
    read: str = ""  # the sequences the fine-tuned model reads (training/sequence_choice.py); "": all it is given


@dataclass
class LabSplit:
    test_rats: list[str]
    test: list  # ScanRef of every session of the test rats
    candidates: list  # one ScanRef per other rat, in the order corrections are taken


def split_lab(study: Path) -> LabSplit:
    """Test rats (the last quarter of a seeded shuffle) and the scans a radiologist would correct."""
    refs = [r for r in find_scans(study, with_truth=True) if r.subject and r.session]
    rats = sorted({r.subject for r in refs})
    if len(rats) < 2:
        raise InputError(f"{study}: the adaptation curve needs at least 2 rats with masks (it has {len(rats)}).")
    order = [rats[i] for i in np.random.default_rng(0).permutation(len(rats))]
    n_test = max(1, len(rats) // 4)
    test_rats, pool = sorted(order[-n_test:]), order[:-n_test]
    candidates = []
    for rat in pool:
        own = sorted((r for r in refs if r.subject == rat), key=lambda r: r.session)
        candidates.append(next((r for r in own if r.session.endswith("2")), own[-1]))
    return LabSplit(test_rats, [r for r in refs if r.subject in test_rats], candidates)


def mean_dice(model, refs, device: str = "cpu") -> float:
    """Mean Dice of the model's masks (as `predict` makes them) on these scans."""
    engine = Engine(model, device=device)
    return float(np.mean([dice(engine.segment(ref.load()), load_volume(ref.mask, "mask").data > 0) for ref in refs]))


def drawn(candidates: list, n: int, draw: int) -> list:
    """The n corrected scans of draw `draw`: the candidates after the first draw * n, going round."""
    return [candidates[(draw * n + k) % len(candidates)] for k in range(n)]


def _fine_tune(study: Path, model, split: LabSplit, refs: list, name: str, setting: dict, device: str, scratch: Path):
    """Fine-tune on these candidates' truth in a copy of the study; (score on the test rats, seconds, epochs,
    the sequences the new model reads)."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="napari-hcc-adapt-") as tmp:
        copy = Path(tmp) / study.name
        shutil.copytree(study, copy, ignore=shutil.ignore_patterns("derivatives"))
        shutil.copytree(study / "derivatives" / "truth", copy / "derivatives" / "truth")
        for ref in refs:
            truth = load_volume(ref.mask, "mask").data
            save_correction(copy, ref.subject, ref.session, truth, note="adaptation curve")
        cfg = TrainConfig(
            studies=[copy],
            out=Path(tmp) / "model",
            init="default" if model is None else str(model),
            corrections_only=True,
            exclude_rats=[f"{copy.name}/{r}" for r in split.test_rats],
            device=device,
            version=f"adapt-{name}-{len(refs)}",
            **{"val_fraction": 0.0, **setting},
        )
        start = time.perf_counter()
        result = train(cfg)
        seconds = time.perf_counter() - start
        read = (result.sequence_choice or {}).get("read", "")
        return mean_dice(load_model(Path(tmp) / "model"), split.test, device), seconds, result.epochs_run, read


def adaptation_curve(
    study: Path,
    model: str | Path | None,
    counts: list[int],
    settings: dict[str, dict] | None = None,
    device: str = "cpu",
    scratch: Path | None = None,
    progress: ProgressFn | None = None,
    draws: int = 1,
) -> dict:
    """{"test_rats", "test_scans", "corrected_from", "points": [CurvePoint as dict], "beyond_lab"}: the
    unadapted model, then each setting (default: the product's) after each count of corrected scans that
    the lab holds, `draws` times (see the module). Counts above the lab's other rats (one corrected scan
    each) make no point; they are listed in "beyond_lab", with the most the lab holds in
    "most_corrections", for the report to say so."""
    study = Path(study)
    split = split_lab(study)
    settings = settings or {"adaptation": adaptation_kwargs()}  # the product's setting
    most = len(split.candidates)
    beyond = sorted({c for c in counts if c > most})
    counts = sorted({c for c in counts if 0 < c <= most})
    base = load_model(model)
    points = [CurvePoint("none", 0, mean_dice(base, split.test, device), 0.0, 0)]
    jobs = [(name, n, d) for name in settings for n in counts for d in range(max(1, draws))]
    for done, (name, n, d) in enumerate(jobs, 1):
        refs = drawn(split.candidates, n, d)
        score, seconds, epochs, read = _fine_tune(study, model, split, refs, name, settings[name], device, scratch)
        points.append(CurvePoint(name, n, score, round(seconds, 1), epochs, d, read))
        if progress is not None:
            progress(Progress(done, len(jobs), "fine-tuning", asdict(points[-1])))
    return {
        "study": str(study.resolve()),
        "model": base.model_id,
        "test_rats": split.test_rats,
        "test_scans": len(split.test),
        "corrected_from": [f"{r.subject}/{r.session}" for r in split.candidates[: max(counts, default=0)]],
        "points": [asdict(p) for p in points],
        "most_corrections": most,
        "beyond_lab": beyond,
    }
