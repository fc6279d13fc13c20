"""How each scan was acquired, for figures per protocol: the sequences the session has, the slice plane,
the field, and the T1w and T2w sequence types, read from the BIDS sidecars and the NIfTI affine (so
imported studies group as simulated ones do); and the Dice of every readable sequence subset of a
scan, read as a session that has only that subset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hcc.io.json_files import read_sidecar
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.orientation import axcodes
from napari_hcc.io.scan import ScanRef
from napari_hcc.training.sequence_choice import dice_by_subset
from napari_hcc.vocabulary import held_subset, readable_subsets

#: the factors a report groups Dice by (ScanResult fields)
FACTORS = ("sequences", "plane", "field_t", "t1w_sequence", "t2w_sequence")
PLANES = {"S": "axial", "I": "axial", "A": "coronal", "P": "coronal", "L": "sagittal", "R": "sagittal"}


def _sequence_type(meta: dict) -> str:
    kind = str(meta.get("PulseSequenceType") or meta.get("ScanningSequence") or "unknown")
    return kind + (" FS" if "FS" in str(meta.get("ScanOptions", "")) else "")


def acquisition_of(ref: ScanRef) -> dict:
    """{"sequences", "plane", "field_t", "t1w_sequence", "t2w_sequence"} of one session."""
    sequences = held_subset(dict(ref.stand_ins))
    present = sequences.split("+")
    paths = {"T1w": ref.t1w, "T2w": ref.t2w, "CE": ref.ce}
    metas = {r: read_sidecar(paths[r]) for r in present}
    reference = paths[present[0]]
    meta = metas[present[0]]
    plane = meta.get("SlicePlane")
    if not plane:  # from the voxel axis the slices were stacked along (the NIfTI's third)
        plane = PLANES.get(axcodes(nib.load(str(reference)).affine)[2], "oblique")
    field = meta.get("MagneticFieldStrength")
    return {
        "sequences": sequences,
        "plane": str(plane),
        "field_t": float(field) if isinstance(field, int | float) else None,
        "t1w_sequence": _sequence_type(metas["T1w"]) if "T1w" in metas else "none",
        "t2w_sequence": _sequence_type(metas["T2w"]) if "T2w" in metas else "none",
    }


@dataclass
class SubsetResult:
    rat: str
    session: str
    sequences: str  # what the session has
    read: str  # the subset the model was given
    dice: float


def subset_scores(engine, scan, truth: np.ndarray, rat: str, session: str, present: str) -> list[SubsetResult]:
    """Dice of every readable subset smaller than the session's own sequences (each one mask, no TTA)."""
    smaller = [name for name in readable_subsets(present) if name != present]
    scores = dice_by_subset(engine.segment, scan, truth, smaller)
    return [SubsetResult(rat, session, present, name, value) for name, value in scores.items()]


def by_factor(results, factors=FACTORS) -> dict:
    """{factor: {value: {"dice", "scans", "rats"}}} over the scan results."""
    out = {}
    for factor in factors:
        groups: dict[str, list] = {}
        for r in results:
            value = getattr(r, factor, None)
            key = "unknown" if value is None or value == "" else (f"{value:g} T" if factor == "field_t" else str(value))
            groups.setdefault(key, []).append(r)
        out[factor] = {
            k: {"dice": float(np.mean([r.dice for r in v])), "scans": len(v), "rats": len({r.rat for r in v})}
            for k, v in sorted(groups.items())
        }
    return out


def by_subset(results, subset_rows: list[SubsetResult]) -> dict:
    """{subset read: {"dice", "scans", "rats", "dice_all_sequences"}}: each subset against the same scans
    read with all their sequences (paired), plus the sessions' own subsets as they are."""
    own = {(r.rat, r.session): r for r in results}
    groups: dict[str, list[tuple[float, float, str]]] = {}
    for r in results:
        groups.setdefault(r.sequences, []).append((r.dice, r.dice, r.rat))
    for row in subset_rows:
        full = own.get((row.rat, row.session))
        if full is not None:
            groups.setdefault(row.read, []).append((row.dice, full.dice, row.rat))
    return {
        name: {
            "dice": float(np.mean([d for d, _, _ in rows])),
            "dice_all_sequences": float(np.mean([f for _, f, _ in rows])),
            "scans": len(rows),
            "rats": len({g for _, _, g in rows}),
        }
        for name, rows in sorted(groups.items(), key=lambda kv: -len(kv[0]))
    }
