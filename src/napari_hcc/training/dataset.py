"""The 2-D slice dataset for training: every session of the given studies, in the model's frame.

Per scan: the three sequences through the same `model_slices` as inference (so training and
inference see one frame and one normalisation), the tumor mask in that frame, the arm, the week, and
the histology where it applies. The mask is a reviewer's latest correction under
`derivatives/corrections/` when there is one, otherwise the simulator's truth.

Arm labels are used only after baseline: at week 0 no treatment has been given, so the images carry
no arm signal and a label there would teach noise. Histology (H&E viability, TUNEL apoptosis) is
measured once per rat, at its `histology_session`; the biomarker targets apply to that scan only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.model.checkpoint import sha256_file
from napari_hcc.simulate.biology import ARMS
from napari_hcc.io.study import InputError, Scan, find_scans, load_volume, read_participants, session_week


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


@dataclass
class SliceDataset:
    x: np.ndarray  # (S, 3, H, W) float16, normalised
    y: np.ndarray  # (S, H, W) uint8
    scan_of_slice: np.ndarray  # (S,) index into scans
    scans: list[ScanItem]
    fingerprint: str
    sources: list[str] = field(default_factory=list)
    simulations: list[dict] = field(default_factory=list)  # code/simulation.json of simulated studies

    @property
    def tumor_slices(self) -> np.ndarray:
        return self.y.reshape(len(self.y), -1).any(1)

    def rats(self) -> list[str]:
        return sorted({s.rat for s in self.scans})

    def rat_arm(self) -> dict[str, str]:
        return {s.rat: s.arm for s in self.scans}

    def subset(self, rats: set[str]) -> SliceDataset:
        keep_scans = [i for i, s in enumerate(self.scans) if s.rat in rats]
        slices, new_scans = [], []
        for new_index, i in enumerate(keep_scans):
            s = self.scans[i]
            slices.append(np.arange(s.start, s.stop))
            n0 = sum(len(a) for a in slices[:-1])
            new_scans.append(ScanItem(**{**s.__dict__, "start": n0, "stop": n0 + (s.stop - s.start)}))
        idx = np.concatenate(slices) if slices else np.zeros(0, int)
        scan_of = np.concatenate([np.full(len(a), k) for k, a in enumerate(slices)]) if slices else np.zeros(0, int)
        return SliceDataset(self.x[idx], self.y[idx], scan_of, new_scans, self.fingerprint, self.sources, self.simulations)


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def labelled_sessions(studies: Sequence[str | Path], corrections_only: bool = False,
                      progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[ScanItem, Scan, np.ndarray, Path]]:
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
                raise InputError(f"{ref.t1w} is not in a BIDS session; training needs BIDS studies (napari-hcc simulate writes them).")
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
                raise InputError(f"mask {mask_path} is {mask.data.shape}, its scan {scan.shape}; they must share the T1w grid.")
            row = participants.get(ref.subject, {})
            histology_here = row.get("histology_session", "").removeprefix("ses-") == ref.session
            item = ScanItem(
                root, ref.subject, ref.session, session_week(root, ref.subject, ref.session), row.get("arm") or ref.arm,
                _float(row.get("histology_viability")) if histology_here else None,
                _float(row.get("histology_apoptosis")) if histology_here else None,
                "correction" if correction else "truth", 0, 0,
            )
            found += 1
            yield item, scan, mask.data > 0, mask_path
        if progress is not None:
            progress(n + 1, len(refs))
    if not found:
        what = "a saved correction" if corrections_only else "a tumor mask (truth or correction)"
        raise InputError(f"no session of the given studies has {what} to learn from.")


def build_dataset(studies: Sequence[str | Path], card, progress: Callable[[int, int], None] | None = None,
                  corrections_only: bool = False) -> SliceDataset:
    """The slice dataset over `labelled_sessions` (see there for which mask is used)."""
    from napari_hcc.inference.slices import model_mask, model_slices

    xs, ys, owners, scans, digests = [], [], [], [], []
    total = 0
    for item, scan, mask, mask_path in labelled_sessions(studies, corrections_only, progress):
        x, geometry = model_slices(scan.channels(), scan.affine, card)
        item.start, item.stop = total, total + len(x)
        scans.append(item)
        xs.append(x.astype(np.float16))
        ys.append(model_mask(mask, geometry))
        owners.append(np.full(len(x), len(scans) - 1))
        total += len(x)
        for p in (scan.paths["T1w"], scan.paths["T2w"], scan.paths["CE"], mask_path):
            digests.append(f"{p.relative_to(item.study.parent)}:{sha256_file(p)}")
    fingerprint = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()
    return SliceDataset(np.concatenate(xs), np.concatenate(ys), np.concatenate(owners), scans, fingerprint,
                        [str(Path(s).resolve()) for s in studies], [sim for s in studies if (sim := simulation_of(s))])


def simulation_of(study: str | Path) -> dict | None:
    """How a simulated study was made (seed, rats per arm, weeks, simulator version), or None."""
    import json

    path = Path(study) / "code" / "simulation.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {k: meta.get(k) for k in ("simulator_version", "seed", "rats_per_arm", "weeks")}
