"""The anatomy gate's setting, chosen on development scans: Dice, false-positive volume, mask volume and
missed tumors for each least share of liver around a kept tumor (0 = no gate).

    python benchmarks/anatomy_gate.py --model MODEL --study DEV [--study DEV2] [--week 2]
        [--shares 0 0.1 0.25 0.4] [--thresholds 0.4 0.5] [--ring-mm 1.5] [--out DIR]

Each scan is read once (one plain pass, as `segment`); every setting (share, and tumor probability threshold:
the card's by default) post-processes the same maps.
Writes DIR/anatomy_gate.csv (one row per scan and setting) and prints a table per study.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from napari_hcc.inference.engine import Engine
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.io.orientation import spacing
from napari_hcc.io.study import find_scans, week_of
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import dice
from napari_hcc.model.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--study", required=True, action="append", type=Path)
    ap.add_argument("--week", type=int, default=None, help="only sessions of this week")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.4])
    ap.add_argument("--thresholds", type=float, nargs="+", default=None, help="default: the card's")
    ap.add_argument("--ring-mm", type=float, default=1.5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    model = load_model(args.model)
    engine = Engine(model, device="cpu")
    print(f"{model.card.version} on {engine.device_name} ({engine.backend})")
    settings = [(s, t) for s in args.shares for t in (args.thresholds or [None])]
    rows = []
    for study in args.study:
        for ref in find_scans(study, with_truth=True):
            scan = ref.load()
            if args.week is not None and week_of(scan.paths.get("T1w"), scan.subject, scan.session) != args.week:
                continue
            probability, liver = engine.maps(scan)
            truth = load_volume(ref.mask, "mask").data > 0
            voxel = float(np.prod(spacing(scan.affine)))
            for share, threshold in settings:
                post = PostProcess.from_card(
                    model.card, min_liver_share=share, liver_ring_mm=args.ring_mm, threshold=threshold
                )
                mask = post.apply(probability, scan.affine, liver) > 0
                rows.append(
                    {
                        "study": study.name,
                        "scan": f"sub-{scan.subject}_ses-{scan.session}",
                        "share": share,
                        "threshold": post.threshold,
                        "dice": round(dice(mask, truth), 4),
                        "truth_mm3": round(truth.sum() * voxel, 1),
                        "mask_mm3": round(mask.sum() * voxel, 1),
                        "false_positive_mm3": round((mask & ~truth).sum() * voxel, 1),
                        "missed": int(truth.any() and not (mask & truth).any()),
                    }
                )
            print(rows[-1]["study"], rows[-1]["scan"], [r["dice"] for r in rows[-len(settings) :]], flush=True)
    for study in args.study:
        print(
            f"\n{study.name}\n| least liver share | threshold | mean Dice | false positive, mm^3 (mean) | tumors missed |"
        )
        print("|---|---|---|---|---|")
        for share, threshold in settings:
            mine = [r for r in rows if r["study"] == study.name and r["share"] == share]
            mine = [r for r in mine if threshold is None or r["threshold"] == threshold]
            print(
                f"| {share:g} | {mine[0]['threshold']:g} | {np.mean([r['dice'] for r in mine]):.3f} | "
                f"{np.mean([r['false_positive_mm3'] for r in mine]):.0f} | {sum(r['missed'] for r in mine)} of {len(mine)} |"
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "anatomy_gate.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
