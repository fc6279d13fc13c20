"""Does choosing a lab's sequences from its corrected scans help? (`training/sequence_choice.py`.)

    python benchmarks/sequence_choice.py --model MODEL [--study DEV ...] [--lab LAB ...] --out DIR
        [--margins 0.02 0.05 0.1]

Every session is segmented from each readable subset of its sequences (the card's post-processing, no
TTA) and scored against its truth; the rows go to DIR/subset_dice_STUDY.csv (read again when it exists). Then,
for 1 and 2 corrected scans, the rule (`choose`) picks the subset from the corrected scans' Dice and the
lab's other scans are scored with that subset against the full set:

* `--study` (a `varied` cohort: each rat has its own lab): each rat is a lab; every session (k = 1) or
  every pair of sessions (k = 2) in turn stands for the corrected scans, the rat's other sessions are
  the test scans.
* `--lab` (one lab for every rat): the adaptation curve's split (`evaluation/adaptation_curve.split_lab`):
  the test rats' sessions are the test scans, the corrected scans are drawn from the other rats' as
  `drawn` does, every draw that the candidates allow.

The table gives, per cohort, the test scans' mean Dice with the full set and with the rule's choice,
and how many labs (draws) the choice changed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_hcc.evaluation.adaptation_curve import drawn, split_lab
from napari_hcc.evaluation.protocols import study_refs
from napari_hcc.inference.engine import Engine
from napari_hcc.io.volume import load_volume
from napari_hcc.model.loading import load_model
from napari_hcc.training.sequence_choice import choose, dice_by_subset
from napari_hcc.vocabulary import held_subset, readable_subsets, subset_name


def score_rows(model: str, study: Path, cache: Path) -> list[dict]:
    """Every session's Dice from each readable subset (cached in `cache`)."""
    if cache.exists():
        with open(cache) as f:
            return [{**r, "dice": float(r["dice"])} for r in csv.DictReader(f)]
    engine = Engine(load_model(model), device="cpu")
    rows = []
    for ref in study_refs(study):
        scan = ref.load()
        held = held_subset(scan.stand_ins)
        truth = load_volume(ref.mask, "mask").data > 0
        for subset, value in dice_by_subset(engine.segment, scan, truth, readable_subsets(held)).items():
            rows.append({"study": study.name, "rat": ref.subject, "session": ref.session, "held": held,
                         "read": subset, "dice": round(value, 4)})  # fmt: skip
        print(f"{study.name} {ref.subject}/{ref.session}: {held}", flush=True)
    with open(cache, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def outcome(scans: dict, corrected: list, test: list, margin: float) -> tuple[float, float, str]:
    """(mean test Dice with the full set, with the choice, the subset chosen)."""
    held = scans[corrected[0]]["held"]
    if any(scans[c]["held"] != held for c in corrected):
        held = subset_name(set.intersection(*(set(scans[c]["held"].split("+")) for c in corrected)))
    choice = choose([scans[c]["dice"] for c in corrected], held, margin)
    full = [scans[t]["dice"][scans[t]["held"]] for t in test]
    chosen = [
        scans[t]["dice"].get(_read_as(scans[t]["held"], choice.leave_out), scans[t]["dice"][scans[t]["held"]])
        for t in test
    ]
    return float(np.mean(full)), float(np.mean(chosen)), choice.read


def _read_as(held: str, leave_out: list[str]) -> str:
    kept = [r for r in held.split("+") if r not in leave_out]
    return "+".join(kept) if ("T1w" in kept or "T2w" in kept) else held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--study", action="append", type=Path, default=[])
    ap.add_argument("--lab", action="append", type=Path, default=[])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--margins", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [r for s in args.study + args.lab for r in score_rows(args.model, s, args.out / f"subset_dice_{s.name}.csv")]
    scans: dict = defaultdict(lambda: {"dice": {}})
    for r in rows:
        key = (r["study"], r["rat"], r["session"])
        scans[key]["held"], scans[key]["dice"][r["read"]] = r["held"], r["dice"]

    print(
        "| cohort | margin | corrected scans | draws | test Dice, full set | with the choice | draws changed | changed: full -> choice |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for margin in args.margins:
        for study in args.study + args.lab:
            for k in (1, 2):
                draws = []
                if study in args.study:
                    rats = sorted({key[1] for key in scans if key[0] == study.name})
                    for rat in rats:
                        own = sorted(key for key in scans if key[:2] == (study.name, rat))
                        for corrected in itertools.combinations(own, k):
                            draws.append((list(corrected), [s for s in own if s not in corrected]))
                else:
                    split = split_lab(study)
                    test = [(study.name, r.subject, r.session) for r in split.test]
                    pool = [(study.name, r.subject, r.session) for r in split.candidates]
                    for d in range(len(pool) // k):
                        draws.append((drawn(pool, k, d), test))
                results = [outcome(scans, c, t, margin) for c, t in draws]
                full = np.mean([r[0] for r in results])
                chosen = np.mean([r[1] for r in results])
                changed = [(r, c) for r, (c, _) in zip(results, draws, strict=True) if r[2] != scans[c[0]]["held"]]
                delta = (
                    f"{np.mean([r[0] for r, _ in changed]):.3f} -> {np.mean([r[1] for r, _ in changed]):.3f}"
                    if changed
                    else ""
                )
                print(
                    f"| {study.name} | {margin} | {k} | {len(draws)} | {full:.3f} | {chosen:.3f} | {len(changed)} | {delta} |"
                )


if __name__ == "__main__":
    main()
