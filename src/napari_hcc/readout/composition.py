"""What the response readout's first stage learns to estimate: the tumor's tissue composition.

The TUNEL index varies between rats of one arm with how strongly each rat responds, and a rat's response
shows in its tumor's make-up: oedema and immune infiltrate at the rim under NK cells, treatment necrosis,
the perfusion of what is still viable (docs/simulator.md). The readout therefore first estimates four
numbers from a scan's tumor features, and reads histology from those estimates over the rat's sessions
(readout/stored.py). The four are fitted against the simulator's truth, which every simulated
session carries in its tumor mask's sidecar (`derivatives/truth/.../*_desc-tumor_mask.json`):

* necrosis: volume fraction of the whole tumor;
* oedema: volume fraction of oedema and immune infiltrate;
* apoptotic index: apoptotic among cellular (viable + apoptotic) tissue, what TUNEL counts;
* viable perfusion: contrast uptake of the viable tissue relative to untreated tumor.

A study without that truth (a real one) cannot fit this stage; the readout then reads apoptosis from the
scan's features alone, as model 1.2 did.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_hcc.io import bids

TARGETS = ("necrosis", "oedema", "apoptotic_index", "viable_perfusion")


def truth_composition_targets(root: Path, subject: str, session: str) -> np.ndarray | None:
    """The TARGETS of one simulated session from its truth sidecar; None when it has none (a real study)."""
    path = bids.sidecar(bids.truth_mask_path(Path(root), subject, session))
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
        c = truth["composition"]
        cellular = float(c["viable"]) + float(c["apoptosis"])
        values = [
            float(c["necrosis"]),
            float(c["edema"]),
            float(c["apoptosis"]) / cellular if cellular > 0 else 0.0,
            float(truth["viable_perfusion"]),
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return np.asarray(values, np.float64) if np.isfinite(values).all() else None
