"""What a study says about each session: the tumor outline to learn from (a reviewer's latest correction,
else the simulator's truth), the arm, the week and the histology; and how a simulated study was made.

Arm labels count only after baseline: at week 0 no treatment has been given. Histology (H&E viability,
TUNEL apoptosis) is measured once per rat, at its `histology_session`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.scan import Scan
from napari_hcc.io.study import find_scans, read_participants, session_week
from napari_hcc.io.volume import load_volume
from napari_hcc.progress import ProgressFn, report
from napari_hcc.vocabulary import ARMS


@dataclass
class ScanItem:
    study: Path
    subject: str
    session: str
    week: int | None
    arm: str | None
    viability: float | None  # only on the histology session
    apoptosis: float | None
    mask_source: str  # "correction" or "truth"
    start: int  # first slice in the dataset's arrays
    stop: int

    @property
    def rat(self) -> str:
        """A rat's identity across studies (two studies may both have a rat01)."""
        return f"{self.study.name}/{self.subject}"

    @property
    def arm_index(self) -> int:
        return ARMS.index(self.arm) if self.arm in ARMS else -1

    @property
    def arm_labelled(self) -> bool:
        return self.arm_index >= 0 and self.week is not None and self.week > 0

    @property
    def has_histology(self) -> bool:
        return self.viability is not None and self.apoptosis is not None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def labelled_sessions(
    studies: Sequence[str | Path], corrections_only: bool = False, progress: ProgressFn | None = None
) -> Iterator[tuple[ScanItem, Scan, np.ndarray, Path]]:
    """Every session of the studies that has a tumor mask (a reviewer's latest correction, else the
    truth; with `corrections_only`, only corrected sessions): (labels, scan, mask, mask file).
    The labels' start/stop are left at 0 for the caller."""
    refs = []
    for study in studies:
        root = Path(study)
        if not root.is_dir():
            raise InputError(f"study {root} is not a folder.")
        participants = read_participants(root)
        for ref in find_scans(root, with_truth=True):
            if not ref.subject or not ref.session:
                raise InputError(
                    f"{ref.t1w} is not in a BIDS session; training needs BIDS studies (napari-hcc simulate writes them)."
                )
            refs.append((root, participants, ref))
    if not refs:
        raise InputError("the given studies hold no scans.")
    found = 0
    for n, (root, participants, ref) in enumerate(refs):
        correction = bids.latest_correction(root, ref.subject, ref.session)
        mask_path = correction or (None if corrections_only else ref.mask)
        if mask_path is not None:  # a session nobody has outlined cannot teach anything
            scan = ref.load()
            mask = load_volume(mask_path, "mask")
            if mask.data.shape != scan.shape:
                raise InputError(
                    f"mask {mask_path} is {mask.data.shape}, its scan {scan.shape}; they must share the T1w grid."
                )
            row = participants.get(ref.subject, {})
            histology_here = row.get("histology_session", "").removeprefix("ses-") == ref.session
            item = ScanItem(
                root,
                ref.subject,
                ref.session,
                session_week(root, ref.subject, ref.session),
                row.get("arm") or ref.arm,
                _float(row.get("histology_viability")) if histology_here else None,
                _float(row.get("histology_apoptosis")) if histology_here else None,
                "correction" if correction else "truth",
                0,
                0,
            )
            found += 1
            yield item, scan, mask.data > 0, mask_path
        report(progress, n + 1, len(refs), "scan")
    if not found:
        what = "a saved correction" if corrections_only else "a tumor mask (truth or correction)"
        raise InputError(f"no session of the given studies has {what} to learn from.")


def simulation_of(study: str | Path) -> dict | None:
    """How a simulated study was made (seed, rats per arm, weeks, simulator version), or None."""

    path = Path(study) / "code" / "simulation.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: meta.get(k) for k in ("simulator_version", "seed", "rats_per_arm", "weeks")}
