"""The reading order of a study, and a subject's weekly course.

* `summarize_scans` runs the model over scans one at a time (a generator: the GUI shows progress and
  can stop it) and keeps only scan-level numbers: uncertainty, response probability, tumor volume.
* `review_order` puts the scans a reader should look at first on top: not yet corrected, least
  certain first; scans that already have a saved correction go last.
* `siblings` are a subject's other sessions, for the weekly plot of volume and response.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.scan import ScanRef, ref_label
from napari_hcc.io.study import study_root, week_of
from napari_hcc.progress import CancelFlag, is_cancelled

if TYPE_CHECKING:  # the engine is given, never built here: no torch on the Qt thread that lists a study
    from napari_hcc.inference.engine import Engine


@dataclass
class ScanSummary:
    ref: ScanRef
    week: int | None
    uncertainty: float
    response_probability: float
    tumor_volume_mm3: float
    predicted_arm: str
    reviewed: bool  # a complete correction is saved for this session
    error: str | None = None

    @property
    def label(self) -> str:

        return ref_label(self.ref)


def is_reviewed(ref: ScanRef, corrections_root: Path | None = None) -> bool:
    """A complete correction of this session is saved (in `corrections_root`, default the study)."""
    root = corrections_root or study_root(ref)
    return bool(root and ref.session and bids.correction_versions(root, ref.subject, ref.session))


def summarize_scans(
    refs: Iterable[ScanRef], engine: Engine, cancel: CancelFlag | None = None, corrections_root: Path | None = None
) -> Iterator[ScanSummary]:
    """One summary per scan, in the given order (no TTA: the entropy of the probability map is the
    uncertainty). A scan that cannot be read gets a summary with its error instead of stopping."""
    for ref in refs:
        if is_cancelled(cancel):
            return
        try:
            p = engine.predict(ref.load(), tta=False, keep_probability=False)
        except InputError as exc:
            yield ScanSummary(
                ref,
                week_of(ref.t1w, ref.subject, ref.session),
                float("nan"),
                float("nan"),
                float("nan"),
                "",
                is_reviewed(ref, corrections_root),
                str(exc),
            )
            continue
        yield ScanSummary(
            ref,
            p.week,
            p.uncertainty,
            p.response.response_probability,
            p.tumor_volume_mm3,
            p.response.predicted_arm,
            is_reviewed(ref, corrections_root),
        )


def review_order(summaries: list[ScanSummary]) -> list[ScanSummary]:
    """Unreviewed scans first, least certain first; then reviewed ones; unreadable scans last."""

    def key(s: ScanSummary):
        return (s.error is not None, s.reviewed, -(s.uncertainty if s.uncertainty == s.uncertainty else -1.0), s.label)

    return sorted(summaries, key=key)


def siblings(refs: list[ScanRef], ref: ScanRef) -> list[ScanRef]:
    """The other sessions of the same subject in the same study."""
    if not ref.subject:
        return []
    root = study_root(ref)
    return [r for r in refs if r.subject == ref.subject and r.session != ref.session and study_root(r) == root]
