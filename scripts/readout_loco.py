"""Leave-one-cohort-out check of the response readout on development cohorts (how 1.3.0 and 1.4.0 were chosen).

For each cohort: fit the readout on the other cohorts, read this cohort's scans as `predict` does (the
network's own masks, each scan with the rat's earlier sessions), and score arm AUROC / accuracy over the
post-baseline scans and the histology RMSE at the endpoint. A second table gives two references per
cohort for apoptosis: each rat given its arm's mean from the fitting cohorts, and one ridge model per arm
on the simulator's exact composition of the endpoint tumor (what a perfect composition reading would buy).

    python scripts/readout_loco.py --model models/v1 STUDY0 STUDY1 STUDY2 STUDY3

With --fewer K, each held-out cohort is also read by a readout fitted on only K of the other cohorts (the
K that follow it, in the order given), so the table shows what more fitting rats buy (how 1.4.0, the
same readout fitted on eight cohorts instead of four, was chosen).

The scans' features are segmented once and cached in --cache (a pickle of this run's own making).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np


def main() -> None:
    from napari_hcc.inference.engine import Engine
    from napari_hcc.model.loading import load_model
    from napari_hcc.readout.fit import feature_rows, fit_readout
    from napari_hcc.vocabulary import ARMS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--model", default=None, help="whose network segments the scans (default: the shipped model)")
    ap.add_argument("--cache", type=Path, default=Path("readout_loco_rows.pkl"))
    ap.add_argument("--fewer", type=int, default=0, help="also fit on only this many of the other cohorts")
    args = ap.parse_args()
    keys = [str(s.resolve()) for s in args.studies]
    rows = pickle.loads(args.cache.read_bytes()) if args.cache.is_file() else {}
    if any(k not in rows for k in keys):
        engine = Engine(load_model(args.model), device="cpu")
        for k in keys:
            rows.setdefault(k, feature_rows([k], engine=engine))
        args.cache.write_bytes(pickle.dumps(rows))

    print(
        "| held-out cohort | fitted on | arm AUROC | accuracy | viability RMSE | apoptosis RMSE | apoptosis: arm mean | apoptosis: exact composition |"
    )
    print("|---|---|---|---|---|---|---|---|")
    tables: dict[str, list] = {}
    for i, k in enumerate(keys):
        others = [o for o in keys if o != k]
        fits = {f"{len(others)} cohorts": others}
        if 0 < args.fewer < len(others):
            fits[f"{args.fewer} cohorts"] = [others[(i + j) % len(others)] for j in range(args.fewer)]
        for label, fit_keys in fits.items():
            fit = [r for o in fit_keys for r in rows[o]]
            line = _score(fit_readout(fit, ARMS), fit, rows[k])
            tables.setdefault(label, []).append(line)
            print(f"| {Path(k).name} | {label} | " + " | ".join(f"{v:.4f}" for v in line) + " |")
    for label, table in tables.items():
        print(f"| mean | {label} | " + " | ".join(f"{v:.4f}" for v in np.mean(table, 0)) + " |")


def _score(readout, fit, held_out) -> list[float]:
    """[arm AUROC, accuracy, viability RMSE, apoptosis RMSE, apoptosis references] of `held_out`, read as
    `predict` reads it, by a readout fitted on the rows `fit`."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import roc_auc_score

    from napari_hcc.readout.history import history_of
    from napari_hcc.vocabulary import ARMS

    by_rat: dict[str, list] = {}
    for r in held_out:
        by_rat.setdefault(r.rat, []).append(r)
    reading = {
        id(r): readout.read(
            r.features, history_of(r.week, [(o.week, f"wk{o.week}", o.features) for o in by_rat[r.rat] if o is not r])
        )
        for r in held_out
    }
    treated = [r for r in held_out if r.week]
    p = np.stack([reading[id(r)].arm_probabilities for r in treated])
    y = np.array([ARMS.index(r.arm) for r in treated])
    histo = [r for r in held_out if r.apoptosis is not None]
    pred = np.array([[reading[id(r)].viability, reading[id(r)].apoptosis] for r in histo])
    truth = np.array([[r.viability, r.apoptosis] for r in histo])
    rmse = np.sqrt(((pred - truth) ** 2).mean(0))
    # References: the arm's mean from the fitting cohorts, and per-arm ridge on the exact composition.
    fit_histo = [r for r in fit if r.apoptosis is not None and r.composition is not None]
    arm_mean = np.array([np.mean([f.apoptosis for f in fit_histo if f.arm == r.arm]) for r in histo])
    exact = np.zeros(len(histo))
    for arm in ARMS:
        A = [f for f in fit_histo if f.arm == arm]
        idx = [i for i, r in enumerate(histo) if r.arm == arm and r.composition is not None]
        if not A or not idx:
            continue
        X = np.stack([f.composition for f in A])
        mu, sd = X.mean(0), X.std(0) + 1e-9
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit((X - mu) / sd, [f.apoptosis for f in A])
        exact[idx] = model.predict((np.stack([histo[i].composition for i in idx]) - mu) / sd)
    return [
        roc_auc_score(y, p, multi_class="ovr"),
        float((p.argmax(1) == y).mean()),
        *rmse,
        float(np.sqrt(((arm_mean - truth[:, 1]) ** 2).mean())),
        float(np.sqrt(((exact - truth[:, 1]) ** 2).mean())),
    ]


if __name__ == "__main__":
    main()
