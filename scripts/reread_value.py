"""How much better the shipped readout reads the arm from a corrected mask than from the network's, on
the development cohorts (what "Read the response from this mask" in the review widget is worth).

    python scripts/reread_value.py --data /work/data --cache rows.pkl --truth-cache rows_truth.pkl

For each follow-up session with all three sequences and an arm, the shipped model's readout reads the
arm (and histology) three ways: from the network's masks (this scan and its rat's earlier sessions),
from the scan's own outline with the earlier sessions still the network's (a reviewer corrected this
scan), and from every session's outline. The outlines are the simulator's; the features come from
`scripts/readout_variants.py`'s caches (made with and without --truth-masks), or are computed here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from readout_variants import DEV, _rows
from sklearn.metrics import roc_auc_score

from napari_hcc.model.loading import load_model
from napari_hcc.readout.history import history_of
from napari_hcc.vocabulary import ARMS

WAYS = {"network's masks": ("net", "net"), "this scan's outline": ("truth", "net"), "every outline": ("truth", "truth")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="features on the network's masks")
    ap.add_argument("--truth-cache", type=Path, required=True, help="features on the simulator's outlines")
    args = ap.parse_args()
    rows = {"net": _rows(args.data, None, args.cache, False), "truth": _rows(args.data, None, args.truth_cache, True)}
    readout = load_model(None).readout
    print(
        "| development cohort | follow-ups | "
        + " | ".join(f"arm AUROC, {w}" for w in WAYS)
        + " | viability RMSE (same) |"
    )
    print("|---" * (3 + len(WAYS)) + "|")
    means = {w: [] for w in WAYS}
    for study in DEV:
        by = {k: {(r.rat, r.week): r for r in rows[k][study] if r.sequences == "T1w+T2w+CE"} for k in rows}
        keys = [k for k in by["net"] if k in by["truth"] and by["net"][k].arm in ARMS and k[1]]
        cells, rmse = [], []
        for way, (this, earlier) in WAYS.items():
            p, y, err = [], [], []
            for rat, week in keys:
                before = [(w, f"wk{w}", by[earlier][r, w].features) for r, w in by[earlier] if r == rat and w < week]
                row = by[this][rat, week]
                reading = readout.read(row.features, history_of(week, before))
                p.append(reading.arm_probabilities)
                y.append(ARMS.index(row.arm))
                if row.viability is not None and np.isfinite(row.viability):
                    err.append(reading.viability - row.viability)
            auc = roc_auc_score(y, np.stack(p), multi_class="ovr") if len(set(y)) == len(ARMS) else float("nan")
            means[way].append(auc)
            cells.append(f"{auc:.3f}")
            rmse.append(f"{np.sqrt(np.mean(np.square(err))):.3f}" if err else "")
        print(f"| `{study}` | {len(keys)} | " + " | ".join(cells) + " | " + " / ".join(rmse) + " |")
    print("| mean | | " + " | ".join(f"{np.nanmean(v):.3f}" for v in means.values()) + " | |")


if __name__ == "__main__":
    main()
