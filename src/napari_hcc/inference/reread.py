"""The response read again from a reviewer's mask: the same readout, on the tumor features of the mask
the reviewer corrected instead of the network's, beside the rat's earlier sessions as the engine reads
them (segmented by the network, each once per engine).

The readout reads the tumor it is given, so a better outline gives a better reading: on the development
cohorts the shipped readout read the arm at a mean macro AUROC of 0.731 from the network's masks and
0.833 with each follow-up's own outline in their place (0.858 with every session's; docs/model.md,
"Reading the response from a corrected mask"). The prediction's mask, volume and diameter stay the
model's: they are what a saved correction is compared with.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.inference.measure import volume_mm3
from napari_hcc.inference.prediction import Prediction
from napari_hcc.inference.subsets import as_read
from napari_hcc.io import bids
from napari_hcc.io.scan import Scan
from napari_hcc.io.study import study_root_of
from napari_hcc.io.volume import load_volume
from napari_hcc.progress import CancelFlag
from napari_hcc.readout.features import tumor_features

EARLIER_NOTE = "response read with the rat's earlier sessions"
AGAIN_NOTE = "response read again from"


def reread_response(
    engine,
    prediction: Prediction,
    scan: Scan,
    mask: np.ndarray,
    cancel: CancelFlag | None = None,
    source: str = "the edited mask",
):
    """`prediction` with its arm and histology read from `mask` (uint8 on the scan's grid) by `engine`'s
    readout; `source` names the mask in the note. Raises InputError, in one sentence, where there is
    nothing to read again."""

    response, scan = prediction.response, as_read(engine.card, scan)
    readout = engine.readout_for(scan)
    if response.unread_because or response.source != "readout" or readout is None:
        why = response.unread_because or "this model reads it with its network's heads, not from the mask"
        raise InputError(f"The response of this scan is not read from its mask ({why}); nothing to read again.")
    if engine.model.model_id != prediction.run.model_id:
        raise InputError(
            f"The model was changed since this prediction ({prediction.run.model_id}); press Run before reading again."
        )
    if mask.shape != scan.shape:
        raise InputError(f"The mask {mask.shape} is not on the scan's grid {scan.shape}.")
    features = tumor_features(scan, mask)
    if features is None:
        raise InputError(
            f"{source[0].upper()}{source[1:]} holds no tumor: there is no tumor to read the response from."
        )
    notes = [n for n in prediction.notes if not n.startswith((EARLIER_NOTE, AGAIN_NOTE))]  # said again below
    reading = readout.read(features, engine.history(scan, prediction.week, notes, cancel))
    if reading.sessions:
        notes.append(f"{EARLIER_NOTE} {', '.join(reading.sessions)}")
    notes.append(f"{AGAIN_NOTE} {source} ({volume_mm3(mask, scan.affine):.1f} mm^3)")
    read = response.with_reading(reading, tumor_features=features, mask_source="edited")
    return replace(prediction, response=read, notes=notes)


def from_saved_correction(engine, prediction: Prediction, scan: Scan) -> Prediction:
    """`prediction` with its response read from the session's newest saved correction, where its BIDS study
    holds one (`predict --read-corrections`); as it is otherwise, with a note where a correction was found
    but could not be read."""
    root = study_root_of(scan.paths.get("T1w"), scan.subject)
    path = bids.latest_correction(root, scan.subject, scan.session) if root and scan.session else None
    if path is None:
        return prediction
    try:
        mask = (load_volume(path, "mask").data > 0).astype(np.uint8)
        return reread_response(engine, prediction, scan, mask, source=f"the saved correction {path.name}")
    except InputError as exc:
        return replace(prediction, notes=[*prediction.notes, f"the saved correction {path.name} was not read: {exc}"])
