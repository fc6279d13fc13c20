"""The measurement floor of histology: how far endpoint H&E and TUNEL stand from the tumor itself.

Histology reads a few high-power fields in a few sections and carries reader and staining noise
(simulate/pathology.py), so even a reader who knew the tumor's exact composition, voxel by voxel,
would miss the measured value by some amount. For a simulated study that exact composition is on disk
(the simulator's `label-<component>_probseg` maps under `derivatives/truth`), so the floor can be
computed: the RMSE between the whole tumor's composition and the measured histology, over the rats.
No model that reads images can be expected to beat it; evaluate reports it beside the model's RMSE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.vocabulary import COMPONENTS


def truth_composition(root: Path, subject: str, session: str) -> tuple[float, float] | None:
    """(viable fraction of the whole tumor, apoptotic fraction of its cellular part) from the simulator's
    truth maps of one session, the quantities H&E and TUNEL estimate; None when the maps are not there."""

    paths = {c: bids.truth_fraction_path(root, subject, session, c) for c in COMPONENTS}
    if not all(p.is_file() for p in paths.values()):
        return None
    try:
        sums = {c: float(np.asarray(nib.load(p).dataobj, np.float64).sum()) for c, p in paths.items()}
    except Exception:  # noqa: BLE001 - an unreadable map: no floor for this rat, the evaluation goes on
        return None
    total, cellular = sum(sums.values()), sums["viable"] + sums["apoptosis"]
    if total <= 0 or cellular <= 0:
        return None
    return sums["viable"] / total, sums["apoptosis"] / cellular
