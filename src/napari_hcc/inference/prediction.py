"""What inference gives back for one scan: the `Prediction`, made of its natural parts.

* `Response`: the reading of treatment (arm probabilities, response, viability, apoptosis), where it
  comes from (the tumor-feature readout or the network's heads) and which earlier sessions it read;
* `SliceTable`: the per-slice numbers behind the plots (tumor probability, area, uncertainty, the
  network's arm head on each slice);
* `RunInfo`: how the run went (model, device, precision, batch, TTA, post-processing, seconds, events).

The JSON summary (`Prediction.summary`, the sidecar beside each mask) keeps one flat shape. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

#: where the arm and histology figures come from: the tumor-feature readout or the network's own heads
ResponseSource = Literal["readout", "network"]
#: how the mask's uncertainty was measured: the spread over TTA flips, or the entropy of one pass
UncertaintyMethod = Literal["tta-std", "entropy"]

BASELINE_NOTE = (
    "week 0 is the baseline scan, taken before treatment: no image can show the arm yet, so the arm "
    "probabilities and the response are not a reading of treatment (the tumor mask and its size are)"
)


def left_out_note(mm3: float, kept_mm3: float) -> str:
    """What a prediction says when the anatomy gate left something out (`Prediction.left_out`)."""
    note = (
        f"{mm3:.1f} mm^3 the network took for tumor lies off the liver its anatomy head found and was left out "
        "(written as *_desc-leftout_mask.nii.gz and shown in cyan by the review widget; --liver-gate 0 keeps it)"
    )
    if mm3 > kept_mm3:  # the mouse of ../shared/realdata: its tumor left out, a remnant kept
        note += (
            f"; that is more than the mask keeps ({kept_mm3:.1f} mm^3), so the response read from the mask may be "
            "of the wrong tissue: if the left-out part is the tumor, keep it and read the response from that mask"
        )
    return note


@dataclass
class Response:
    """The scan's reading of treatment."""

    arms: list[str]
    arm_probabilities: np.ndarray  # (4,), sums to 1
    viability: float  # H&E viable fraction of the tumor (nan without a tumor)
    apoptosis: float  # TUNEL apoptotic fraction (nan without a tumor)
    arm_uncertainty: np.ndarray  # (4,) spread of the arm probabilities over TTA (zeros without TTA)
    source: ResponseSource = "network"
    #: the rat's earlier sessions the readout read beside this scan (readout/history.py)
    sessions: list[str] = field(default_factory=list)
    #: True while the arm and histology are this scan's alone and the rat's earlier sessions are still to
    #: be read (`Engine.steps(read_history=False)`; `Engine.complete_response` reads them)
    pending: bool = False
    #: the readout's tumor features of this scan (FEATURE_NAMES), kept for `complete_response`
    tumor_features: np.ndarray | None = field(default=None, repr=False)
    #: why the arm and histology were not read, in a few words ("" when they were)
    unread_because: str = ""
    #: the mask the readout read: the model's ("model") or a reviewer's edit of it ("edited"; reread.py)
    mask_source: str = "model"

    def unread(self, because: str) -> Response:
        """This response with no arm or histology read (NaN), and why."""
        nothing = np.full(len(self.arms), np.nan)
        return replace(self, arm_probabilities=nothing, viability=float("nan"), apoptosis=float("nan"),
                       arm_uncertainty=nothing, pending=False, unread_because=because)  # fmt: skip

    def with_reading(self, reading, **changes) -> Response:
        """This response with a readout's reading (readout/stored.py `Reading`) in place of its numbers."""
        return replace(self, arm_probabilities=reading.arm_probabilities, viability=reading.viability,
                       apoptosis=reading.apoptosis, sessions=list(reading.sessions), pending=False, **changes)  # fmt: skip

    @property
    def response_probability(self) -> float:
        """1 - P(Control): the probability that the tumor responds to a treatment."""
        return float(1.0 - self.arm_probabilities[0])

    @property
    def arm_probability(self) -> dict[str, float]:
        return {arm: float(p) for arm, p in zip(self.arms, self.arm_probabilities)}

    @property
    def predicted_arm(self) -> str:
        """The most probable arm; empty when the arm was not read (a scan without the sequences it needs)."""
        if not np.all(np.isfinite(self.arm_probabilities)):
            return ""
        return self.arms[int(np.argmax(self.arm_probabilities))]


@dataclass
class SliceTable:
    """Per axial slice, in display order (inferior to superior)."""

    index: np.ndarray  # the source voxel index of each slice
    tumor_probability: np.ndarray  # highest pixel probability on the slice
    tumor_area_mm2: np.ndarray
    arm_probabilities: np.ndarray  # (slices, 4): the network's arm head on the slice alone
    uncertainty: np.ndarray


@dataclass
class RunInfo:
    """How the prediction was made."""

    model_id: str
    device: str
    precision: str
    batch_size: int
    tta: bool
    postprocess: dict
    timings: dict  # seconds: preprocess, network, postprocess, total (and earlier_sessions)
    events: list[str] = field(default_factory=list)  # out-of-memory fallbacks and the like
    backend: str = "torch"  # torch, openvino or onnxruntime


@dataclass
class Prediction:
    """Everything one scan's inference produced; arrays are on the scan's source voxel grid."""

    subject: str | None
    session: str | None
    #: the session's week in its BIDS study (0 = baseline, before treatment); None when unknown
    week: int | None
    mask: np.ndarray  # uint8, source grid
    probability: np.ndarray | None  # float32 tumor probability, source grid (None when not kept)
    tumor_volume_mm3: float
    longest_diameter_mm: float
    uncertainty: float
    uncertainty_method: UncertaintyMethod
    response: Response
    slices: SliceTable
    run: RunInfo
    notes: list[str] = field(default_factory=list)  # resampling and other deliberate changes
    sequences: str = "T1w+T2w+CE"  # the sequences the model read (a session may lack some)
    #: uint8, source grid: what the network called tumor and the anatomy gate left out as off the liver
    #: (None when it left out nothing); the review widget shows it for the reviewer to keep or ignore
    left_out: np.ndarray | None = None

    @property
    def before_treatment(self) -> bool:
        """A baseline scan: no treatment given yet, so no image can show the arm."""
        return self.week == 0

    def summary(self) -> dict:
        """JSON-ready scan-level results (no voxel arrays)."""

        def num(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 6)

        r, s, run = self.response, self.slices, self.run
        return {
            "subject": self.subject,
            "session": self.session,
            "week": self.week,
            "before_treatment": self.before_treatment,
            "arm_probabilities": {a: num(p) for a, p in r.arm_probability.items()},
            "predicted_arm": r.predicted_arm,
            "response_probability": num(r.response_probability),
            "viability": num(r.viability),
            "apoptosis": num(r.apoptosis),
            "tumor_volume_mm3": num(self.tumor_volume_mm3),
            "longest_diameter_mm": num(self.longest_diameter_mm),
            "uncertainty": num(self.uncertainty),
            "uncertainty_method": self.uncertainty_method,
            "arm_uncertainty": {a: num(u) for a, u in zip(r.arms, r.arm_uncertainty)},
            "slices": [
                {
                    "index": int(i),
                    "tumor_probability": num(p),
                    "tumor_area_mm2": num(a),
                    "uncertainty": num(u),
                    # the network's arm head on this slice alone, not the scan's reading (which may be the readout's)
                    "network_head_arm_probabilities": {arm: num(q) for arm, q in zip(r.arms, qs)},
                }
                for i, p, a, u, qs in zip(
                    s.index, s.tumor_probability, s.tumor_area_mm2, s.uncertainty, s.arm_probabilities
                )
            ],
            "model": run.model_id,
            "device": run.device,
            "precision": run.precision,
            "backend": run.backend,
            "batch_size": run.batch_size,
            "tta": run.tta,
            "postprocess": run.postprocess,
            "response_source": r.source,
            "readout_sessions": list(r.sessions),
            "sequences_read": self.sequences,
            "response_mask": r.mask_source,  # the model's mask, or a reviewer's ("edited")
            "timings_s": {k: round(v, 4) for k, v in run.timings.items()},
            "events": run.events,
            "notes": self.notes,
        }
