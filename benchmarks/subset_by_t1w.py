"""Does the T1w help or mislead? Per T1w family, the Dice of each session read with its T1w and T2w
against the T2w alone (and the T1w alone), on development studies.

    python benchmarks/subset_by_t1w.py --model MODEL --study DEV [--study DEV2 ...] [--out DIR]

Every session with a T1w and a T2w is segmented from each readable subset of its sequences
(`evaluation/scoring.score_scans` with subsets, as `evaluate --subsets`); the table groups the sessions by
the pulse-sequence family of their T1w (RARE or FLASH, from the sidecars) and by whether they had a CE.
Writes DIR/subset_by_t1w.csv (one row per session and subset read) when --out is given.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_hcc.evaluation.protocols import study_refs
from napari_hcc.evaluation.scoring import score_scans
from napari_hcc.inference.engine import Engine
from napari_hcc.model.loading import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--study", required=True, action="append", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    engine = Engine(load_model(args.model), device="cpu")
    rows = []
    for study in args.study:
        subsets: list = []
        results = score_scans(engine, study, study_refs(study), 0, None, subsets)
        read = defaultdict(dict)
        for r in results:
            read[(r.rat, r.session)][r.sequences] = r.dice
        for s in subsets:
            read[(s.rat, s.session)][s.read] = s.dice
        for r in results:
            if "T1w" not in r.sequences or "T2w" not in r.sequences:
                continue
            group = f"{r.t1w_sequence} T1w, {'with' if 'CE' in r.sequences else 'no'} CE"
            for subset, dice in read[(r.rat, r.session)].items():
                rows.append({"study": study.name, "scan": f"{r.rat}/{r.session}", "group": group,
                             "has": r.sequences, "read": subset, "dice": round(float(dice), 4)})  # fmt: skip
    table = defaultdict(lambda: defaultdict(list))
    for row in rows:
        table[row["group"]][row["read"]].append(row["dice"])
    print("| T1w of the session | sessions | T1w+T2w+CE | T1w+T2w | T2w | T1w |")
    print("|---|---|---|---|---|---|")
    for group in sorted(table):
        cells = table[group]
        n = max(len(v) for v in cells.values())
        means = [f"{np.mean(cells[k]):.3f}" if k in cells else "" for k in ("T1w+T2w+CE", "T1w+T2w", "T2w", "T1w")]
        print(f"| {group} | {n} | " + " | ".join(means) + " |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "subset_by_t1w.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
