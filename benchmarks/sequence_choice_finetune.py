"""The choice of sequences together with the fine-tuning that follows it, where the choice changes something.

    python benchmarks/sequence_choice_finetune.py --model MODEL --study DEV [--study DEV2 ...] --out DIR [--k 1]

In a `varied` development cohort each rat has its own lab. For every rat and every set of k of its sessions
standing for the corrected scans whose choice (`training/sequence_choice.choose`, from
`benchmarks/sequence_choice.py`'s DIR/subset_dice_STUDY.csv) leaves a sequence out, the model is fine-tuned
on them twice, with the adaptation setting with and without the choice (`evaluation/adaptation_curve.py`'s
fine-tuning, in a scratch copy), and scored on the rat's other sessions. Draws whose choice keeps every
sequence fine-tune the same way in both settings and are not run.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
from collections import defaultdict
from pathlib import Path

from napari_hcc.evaluation.adaptation_curve import LabSplit, _fine_tune
from napari_hcc.evaluation.protocols import study_refs
from napari_hcc.training.config import adaptation_kwargs
from napari_hcc.training.sequence_choice import choose


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--study", required=True, action="append", type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--k", type=int, default=1)
    args = ap.parse_args()
    settings = {"with the choice": adaptation_kwargs(), "without": {**adaptation_kwargs(), "choose_sequences": False}}
    rows = []
    for study in args.study:
        dice: dict = defaultdict(dict)
        with open(args.out / f"subset_dice_{study.name}.csv") as f:
            for r in csv.DictReader(f):
                dice[(r["rat"], r["session"])][r["read"]] = float(r["dice"])
        refs = {(r.subject, r.session): r for r in study_refs(study)}
        for rat in sorted({s for s, _ in refs}):
            own = sorted(k for k in refs if k[0] == rat)
            for corrected in itertools.combinations(own, args.k):
                held = max(dice[corrected[0]], key=lambda n: len(n.split("+")))
                picked = choose([dice[c] for c in corrected], held)
                if not picked.leave_out:
                    continue
                split = LabSplit([], [refs[k] for k in own if k not in corrected], [])
                scores = {}
                for name, setting in settings.items():
                    score, seconds, _, read = _fine_tune(
                        study, args.model, split, [refs[c] for c in corrected], name, setting, "cpu", args.out
                    )
                    scores[name] = (score, read, seconds)
                unadapted = statistics.mean(dice[k][held] for k in own if k not in corrected)
                chosen_only = statistics.mean(
                    dice[k].get(picked.read, dice[k][held]) for k in own if k not in corrected
                )
                row = {"study": study.name, "rat": rat, "corrected": "+".join(s for _, s in corrected),
                       "read": picked.read, "unadapted": round(unadapted, 4), "choice_only": round(chosen_only, 4),
                       "finetuned": round(scores["without"][0], 4), "choice_and_finetuned": round(scores["with the choice"][0], 4),
                       "read_by_new_model": scores["with the choice"][1]}  # fmt: skip
                rows.append(row)
                print(row, flush=True)
    with open(args.out / f"choice_finetune_k{args.k}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for key in ("unadapted", "choice_only", "finetuned", "choice_and_finetuned"):
        print(f"{key}: {statistics.mean(r[key] for r in rows):.3f} over {len(rows)} draws")


if __name__ == "__main__":
    main()
