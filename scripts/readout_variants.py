"""Arm readouts that might hold across protocols, against the shipped one (issue 17, item 3), on development
cohorts only.

Each variant is a multinomial logistic regression on the standardised, clipped inputs, its C chosen by
rat-grouped CV log loss as `fit-readout` does, each follow-up pooled with the rat's earlier treated scans.
Two scores: rat-grouped 5-fold CV inside the fitting studies, split by world (`study` and `varied` cohorts),
and the development cohorts read by a readout fitted on all the fitting studies, each scan beside its rat's
own sessions. Variants:

- plain: the readout's features of the scan (what 2.0 ships);
- change: plain, and the features minus the rat's baseline (week 0) where it has one; the same lab scanned
  both, so its contrast partly cancels;
- invariant: what a lab's contrast factor cannot change: per map, std/mean, (p90-p10)/p50, (p75-p25)/p50,
  rim/core and each shell over the shells' mean; and the log volume;
- protocol: plain and the acquisition from the session's sidecars (log field strength, T2w TE and TR,
  T2w RARE or bSSFP, fat suppression, a FLASH T1w), what a real lab's headers give too.

    python scripts/readout_variants.py --data /work/data --cache rows.pkl

The features are taken on the masks of --model (default: the shipped model), or with --truth-masks on the
simulator's outlines (how far better masks would carry the readout), and cached in --cache (a pickle of
this script's own making).
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from napari_hcc.inference.engine import Engine
from napari_hcc.io.json_files import read_sidecar
from napari_hcc.model.loading import load_model
from napari_hcc.readout.features import FEATURE_NAMES, MAPS, subset_feature_names
from napari_hcc.readout.fit import _grouped_folds, _pooled_rows, _proba, _standardisation, choose_arm_c, feature_rows
from napari_hcc.readout.stored import _standardised
from napari_hcc.vocabulary import ARMS

FIT = ("train_study_s101", "train_varied_s100", "readout_study_s601", "readout_varied_s600")
DEV = ("dev_varied_s500", "dev_study_s501", "heldout_dev_s300", "dev_sagittal_s502")
READOUTS = ("T1w+T2w+CE", "T2w")
VARIANTS = ("plain", "change", "invariant", "protocol")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the folder holding the development cohorts")
    ap.add_argument("--model", default=None)
    ap.add_argument("--truth-masks", action="store_true", help="features on the outlines, not the network's masks")
    ap.add_argument("--cache", type=Path, default=Path("readout_variant_rows.pkl"))
    args = ap.parse_args()
    rows = _rows(args.data, args.model, args.cache, args.truth_masks)
    for readout in READOUTS:
        print(f"\n{readout} readout\n")
        print("| variant | CV `study` | CV `varied` | " + " | ".join(DEV) + " | development mean |")
        print("|---" * (4 + len(DEV)) + "|")
        for variant in VARIANTS:
            print(_line(rows, readout, Inputs(variant, readout, args.data)), flush=True)


def _rows(data: Path, model, cache: Path, truth_masks: bool) -> dict:
    rows = pickle.loads(cache.read_bytes()) if cache.is_file() else {}
    missing = [s for s in FIT + DEV if s not in rows]
    if missing:
        engine = None if truth_masks else Engine(load_model(model), device="cpu")
        for s in missing:
            rows[s] = feature_rows([data / s], engine=engine)
            cache.write_bytes(pickle.dumps(rows))
    return rows


class Inputs:
    """What a variant reads of a scan (None: this variant cannot read it; the plain model answers)."""

    def __init__(self, variant: str, readout: str, data: Path):
        self.variant, self.readout, self.data, self.names = variant, readout, data, list(FEATURE_NAMES)
        self.cols = [FEATURE_NAMES.index(n) for n in subset_feature_names(readout)]
        self.maps = [m for m in MAPS if any(FEATURE_NAMES[c].startswith(m + "_") for c in self.cols)]
        self._protocols: dict = {}

    def __call__(self, row, baseline) -> np.ndarray | None:
        f = row.features[self.cols]
        if self.variant == "change":
            return None if baseline is None else np.concatenate([f, f - baseline.features[self.cols]])
        if self.variant == "invariant":
            return self._invariant(row.features)
        if self.variant == "protocol":
            return np.concatenate([f, self._protocol(row.rat, row.week)])
        return f

    def _invariant(self, full: np.ndarray) -> np.ndarray:
        def g(m, k):
            return full[self.names.index(f"{m}_{k}")]

        def ratio(a, b):
            return a / (b if abs(b) > 1e-6 else 1e-6)

        out = [full[self.names.index("log_volume_mm3")]]
        for m in self.maps:
            med = g(m, "p50")
            out += [ratio(g(m, "std"), g(m, "mean")), ratio(g(m, "p90") - g(m, "p10"), med)]
            out += [ratio(g(m, "p75") - g(m, "p25"), med), ratio(g(m, "rim"), g(m, "core"))]
            shells = [g(m, f"shell{i + 1}") for i in range(5)]
            out += [ratio(v, float(np.mean(shells))) for v in shells]
        return np.asarray(out)

    def _protocol(self, rat: str, week: int) -> np.ndarray:
        if (rat, week) not in self._protocols:
            study, subject = rat.split("/")
            anat = self.data / study / f"sub-{subject}" / f"ses-wk{week}" / "anat"
            t2, t1 = (read_sidecar(anat / f"sub-{subject}_ses-wk{week}_{name}.nii.gz") for name in ("T2w", "T1w"))
            seq = str(t2.get("PulseSequenceType", "")).upper()
            self._protocols[rat, week] = np.array(
                [
                    np.log(t2.get("MagneticFieldStrength", 7.0)),
                    1000 * t2.get("EchoTime", 0.05),
                    t2.get("RepetitionTime", 2.5),
                    float(seq == "RARE"),
                    float("SSFP" in seq or "FIESTA" in seq),
                    float("FS" in str(t2.get("ScanOptions", ""))),
                    float(t1.get("ScanningSequence") == "GR"),
                ]
            )
        return self._protocols[rat, week]


class ArmModel:
    """Standardised, clipped inputs; C by rat-grouped CV log loss, as fit-readout chooses it."""

    def __init__(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray):
        self.mean, self.scale, self.low, self.high = _standardisation(X)
        Z = _standardised(X, self.mean, self.scale, self.low, self.high)
        c, _ = choose_arm_c(Z, y, groups, len(ARMS))
        self.model = LogisticRegression(C=c, max_iter=5000).fit(Z, y)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _proba(self.model, _standardised(x[None], self.mean, self.scale, self.low, self.high), len(ARMS))[0]


def _baselines(rows) -> dict:
    return {r.rat: r for r in rows if r.week == 0}


def _fit(rows, inputs: Inputs):
    """(the plain model, the variant's model) on the post-baseline rows with an arm."""
    arm_rows = [r for r in rows if r.arm in ARMS and r.week]
    base = _baselines(rows)
    plain_inputs = Inputs("plain", inputs.readout, inputs.data)

    def model(read):
        usable = [(r, x) for r in arm_rows if (x := read(r, base.get(r.rat))) is not None]
        y = np.array([ARMS.index(r.arm) for r, _ in usable])
        return ArmModel(np.stack([x for _, x in usable]), y, np.array([r.rat for r, _ in usable]))

    return (model(plain_inputs), plain_inputs), (model(inputs), inputs)


def _read(models, rows) -> dict:
    """Each follow-up's arm probabilities, pooled with the rat's earlier treated scans as fit-readout pools them."""
    (plain, plain_inputs), (variant, inputs) = models
    base = _baselines(rows)
    alone = []
    for r in rows:
        x = inputs(r, base.get(r.rat))
        alone.append(variant(x) if x is not None else plain(plain_inputs(r, None)))
    pooled = _pooled_rows(rows, np.asarray(alone))
    return {id(r): p for r, p in zip(rows, pooled) if r.week}


def _auroc(rows, pooled) -> tuple[float, int]:
    scored = [r for r in rows if r.arm in ARMS and r.week and id(r) in pooled]
    y = np.array([ARMS.index(r.arm) for r in scored])
    if len(set(y)) < 4:
        return float("nan"), len(scored)
    return roc_auc_score(y, np.stack([pooled[id(r)] for r in scored]), multi_class="ovr"), len(scored)


def _line(rows: dict, readout: str, inputs: Inputs) -> str:
    def keep(r):
        return r.sequences == readout if "+" in readout else readout in r.sequences.split("+")

    fit = {s: [r for r in rows[s] if keep(r)] for s in FIT}
    pooled_fit = [r for s in FIT for r in fit[s]]
    groups = np.array([r.rat for r in pooled_fit])
    out_of_fold = {}
    for tr, te in _grouped_folds(groups):
        models = _fit([pooled_fit[i] for i in tr], inputs)
        out_of_fold |= _read(models, [pooled_fit[i] for i in te])
    cv = [_auroc([r for s in FIT if world in s for r in fit[s]], out_of_fold) for world in ("study", "varied")]
    models = _fit(pooled_fit, inputs)
    dev = [_auroc(d, _read(models, d)) for d in ([r for r in rows[s] if keep(r)] for s in DEV)]
    cells = [f"{a:.3f} ({n})" for a, n in cv + dev]
    return f"| {inputs.variant} | " + " | ".join(cells) + f" | {np.nanmean([a for a, _ in dev]):.3f} |"


if __name__ == "__main__":
    main()
