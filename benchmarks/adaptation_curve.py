"""The adaptation curve: how a model improves on a lab it was not trained for, after a radiologist has
corrected 1, 2, 4 or 8 of the lab's scans, and how long each fine-tuning takes.

    python benchmarks/adaptation_curve.py --model MODEL --lab STUDY --out DIR [--counts 0 1 2 4 8]
        [--setting NAME:lr=3e-4,steps=60,freeze=0 ...]

STUDY is a simulated study of one lab (e.g. `napari-hcc simulate --protocol benchmarks/labs/heldout_dev.json`).
Its rats are shuffled once (seed 0): the last quarter are the test rats, every session of them scored;
the corrected scans come from the other rats, one week-2 session per rat (the truth stands in for the
radiologist's correction, saved through the same `save_correction` as the review widget). Each count
fine-tunes the model with `train --init MODEL --corrections-only` (TrainConfig) under each setting and
scores the new model on the test rats. Writes DIR/adaptation.csv and DIR/adaptation.md.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import dice
from napari_hcc.model.loading import load_model
from napari_hcc.review.trainingset import save_correction
from napari_hcc.training.config import TrainConfig
from napari_hcc.training.trainer import train


def parse_setting(text: str) -> tuple[str, dict]:
    name, _, spec = text.partition(":")
    values = dict(item.split("=") for item in spec.split(",") if item)
    return name, {
        "lr": float(values.get("lr", 3e-4)),
        "min_steps": int(values.get("steps", 60)),
        "freeze_encoder": values.get("freeze", "0") == "1",
        "epochs": int(values.get("epochs", 1)),
    }


def test_dice(model, refs) -> float:
    engine = Engine(model, device="cpu")
    scores = [dice(engine.segment(ref.load()), load_volume(ref.mask, "mask").data > 0) for ref in refs]
    return float(np.mean(scores))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--lab", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--counts", type=int, nargs="+", default=[0, 1, 2, 4, 8])
    ap.add_argument("--setting", action="append", default=None, help="NAME:lr=..,steps=..,freeze=0|1,epochs=..")
    args = ap.parse_args()
    settings = dict(parse_setting(s) for s in (args.setting or ["default:lr=3e-4,steps=60,freeze=0"]))
    torch.set_num_threads(max(1, torch.get_num_threads()))

    refs = [r for r in find_scans(args.lab, with_truth=True) if r.subject and r.session]
    rats = sorted({r.subject for r in refs})
    order = [rats[i] for i in np.random.default_rng(0).permutation(len(rats))]
    n_test = max(1, len(rats) // 4)
    test_rats, pool = set(order[-n_test:]), order[:-n_test]
    test = [r for r in refs if r.subject in test_rats]
    candidates = [next(r for r in refs if r.subject == rat and r.session.endswith("2")) for rat in pool]
    base = load_model(args.model)
    rows = [{"setting": "base", "corrected_scans": 0, "dice": test_dice(base, test), "seconds": 0.0, "epochs": 0}]
    print(f"base: Dice {rows[0]['dice']:.3f} on {len(test)} scans of {len(test_rats)} test rats", flush=True)
    for name, setting in settings.items():
        for n in [c for c in args.counts if c > 0]:
            if n > len(candidates):
                continue
            with tempfile.TemporaryDirectory(dir=args.out.parent if args.out.parent.exists() else None) as tmp:
                study = Path(tmp) / args.lab.name
                shutil.copytree(args.lab, study, ignore=shutil.ignore_patterns("derivatives"))
                shutil.copytree(args.lab / "derivatives" / "truth", study / "derivatives" / "truth")
                for ref in candidates[:n]:
                    truth = load_volume(ref.mask, "mask").data
                    save_correction(study, ref.subject, ref.session, truth, note="adaptation benchmark")
                cfg = TrainConfig(
                    studies=[study],
                    out=Path(tmp) / "model",
                    init=args.model,
                    corrections_only=True,
                    val_fraction=0.0,
                    exclude_rats=[f"{study.name}/{r}" for r in sorted(test_rats)],
                    device="cpu",
                    warmup_epochs=0.5,
                    version=f"adapt-{name}-{n}",
                    **setting,
                )
                t = time.perf_counter()
                result = train(cfg)
                seconds = time.perf_counter() - t
                score = test_dice(load_model(Path(tmp) / "model"), test)
            rows.append({"setting": name, "corrected_scans": n, "dice": score, "seconds": seconds,
                         "epochs": result.epochs_run})  # fmt: skip
            print(f"{name} n={n}: Dice {score:.3f}, {seconds:.0f} s, {result.epochs_run} epochs", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "adaptation.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        f"Model `{base.model_id}` on `{args.lab.name}`: {len(test)} test scans of {len(test_rats)} rats; "
        f"corrected scans from {len(pool)} other rats (one week-2 session each).",
        "",
        "| setting | corrected scans | mean Dice | fine-tuning (s) | epochs |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['setting']} | {r['corrected_scans']} | {r['dice']:.3f} | {r['seconds']:.0f} | {r['epochs']} |"
        for r in rows
    ]
    timed = [r["seconds"] for r in rows if r["corrected_scans"] == 1]
    if timed:
        lines += ["", f"One corrected scan: median fine-tuning {statistics.median(timed):.0f} s on this machine."]
    (args.out / "adaptation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
