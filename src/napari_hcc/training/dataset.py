"""The 2-D slice dataset for training: every session of the given studies, in the model's frame.

Per scan: the three sequences through the same `model_slices` as inference (so training and
inference see one frame and one normalisation), the tumor mask in that frame, the arm, the week, and
the histology where it applies. The mask is a reviewer's latest correction under
`derivatives/corrections/` when there is one, otherwise the simulator's truth.

Sessions that lack a sequence are kept: for a model that reads subsets, the missing channel is zeros
and `present` says which sequences are real (sequence dropout only ever drops real ones). Scans from
labs of other grids keep their own grid (a `SliceStore` per array: one array per scan, padded only
when a batch mixes grids); a scan sliced finer than `MIN_SLICE_MM` along the model's slice axis (an axial
reformat of a coronal acquisition has slices one in-plane pixel apart) keeps every k-th slice, so that
one such scan does not outweigh ten axial ones with near-copies.

Arm labels are used only after baseline: at week 0 no treatment has been given, so the images carry
no arm signal and a label there would teach noise. Histology (H&E viability, TUNEL apoptosis) is
measured once per rat, at its `histology_session`; the biomarker targets apply to that scan only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.inference.slices import model_labels, model_mask, model_slices
from napari_hcc.inference.subsets import as_read
from napari_hcc.io import bids
from napari_hcc.io.anatomy_labels import UNKNOWN, anatomy_map
from napari_hcc.io.atomic import sha256_file
from napari_hcc.io.labels import ScanItem, labelled_sessions, simulation_of
from napari_hcc.progress import ProgressFn
from napari_hcc.training.slice_store import SliceStore
from napari_hcc.vocabulary import ANATOMY, SEQUENCE_ROLES, subset_name

#: training keeps slices at least this far apart along the model's slice axis (mm)
MIN_SLICE_MM = 0.9


@dataclass
class SliceDataset:
    x: SliceStore  # (S, 3, H, W) float16, normalised
    y: SliceStore  # (S, H, W) uint8
    scan_of_slice: np.ndarray  # (S,) index into scans
    scans: list[ScanItem]
    fingerprint: str
    sources: list[str] = field(default_factory=list)
    simulations: list[dict] = field(default_factory=list)  # code/simulation.json of simulated studies
    present: np.ndarray | None = None  # (S, 3) bool: which of T1w, T2w, CE the slice's session has
    anatomy: SliceStore | None = None  # (S, H, W) uint8 ANATOMY indices, 255 unknown; None: not asked for

    @property
    def tumor_slices(self) -> np.ndarray:
        return self.y.per_slice(lambda y: y.reshape(len(y), -1).any(1)).astype(bool)

    def rats(self) -> list[str]:
        return sorted({s.rat for s in self.scans})

    def rat_arm(self) -> dict[str, str]:
        return {s.rat: s.arm for s in self.scans}

    def subset(self, rats: set[str]) -> SliceDataset:
        keep_scans = [i for i, s in enumerate(self.scans) if s.rat in rats]
        slices, new_scans = [], []
        for i in keep_scans:
            s = self.scans[i]
            slices.append(np.arange(s.start, s.stop))
            n0 = sum(len(a) for a in slices[:-1])
            new_scans.append(ScanItem(**{**s.__dict__, "start": n0, "stop": n0 + (s.stop - s.start)}))
        idx = np.concatenate(slices) if slices else np.zeros(0, int)
        scan_of = np.concatenate([np.full(len(a), k) for k, a in enumerate(slices)]) if slices else np.zeros(0, int)
        return SliceDataset(
            self.x.select_parts(keep_scans),
            self.y.select_parts(keep_scans),
            scan_of,
            new_scans,
            self.fingerprint,
            self.sources,
            self.simulations,
            self.sequences_present[idx],
            self.anatomy.select_parts(keep_scans) if self.anatomy is not None else None,
        )

    @property
    def sequences_present(self) -> np.ndarray:
        """(S, 3) bool; all True for datasets made without the record."""
        return self.present if self.present is not None else np.ones((len(self.y), len(SEQUENCE_ROLES)), bool)

    def subsets(self) -> dict[str, int]:
        """How many scans have each subset of sequences, e.g. {"T1w+T2w+CE": 90, "T2w": 8}."""
        counts: dict[str, int] = {}
        for s in self.scans:
            name = subset_name(r for r, on in zip(SEQUENCE_ROLES, self.sequences_present[s.start], strict=True) if on)
            counts[name] = counts.get(name, 0) + 1
        return counts


def build_dataset(
    studies: Sequence[str | Path],
    card,
    progress: ProgressFn | None = None,
    corrections_only: bool = False,
    anatomy: bool = False,
) -> SliceDataset:
    """The slice dataset over `labelled_sessions` (see there for which mask is used); with `anatomy`,
    each slice's ANATOMY classes too, from the simulator's tissue map (unknown where a session has none)."""

    xs, ys, owners, scans, digests, present, organs = [], [], [], [], [], [], []
    total = 0
    for item, scan, mask, mask_path in labelled_sessions(studies, corrections_only, progress):
        scan = as_read(card, scan)  # a model adapted to a lab learns without the sequences it leaves out
        x, geometry = model_slices(scan.channels(), scan.affine, card, scan.stand_ins)
        keep = slice(None, None, max(1, int(MIN_SLICE_MM // geometry.display_spacing[0])))
        x, y = x[keep], model_mask(mask, geometry)[keep]
        if anatomy:
            labels = anatomy_map(item.study, item.subject, item.session, mask)
            organs.append(
                model_labels(labels, geometry, len(ANATOMY))[keep]
                if labels is not None
                else np.full(y.shape, UNKNOWN, np.uint8)
            )
        item.start, item.stop = total, total + len(x)
        scans.append(item)
        xs.append(x.astype(np.float16))
        ys.append(y)
        owners.append(np.full(len(x), len(scans) - 1))
        present.append(np.tile([r not in scan.stand_ins for r in SEQUENCE_ROLES], (len(x), 1)))
        total += len(x)
        used = [*(scan.paths[r] for r in SEQUENCE_ROLES if r not in scan.stand_ins), mask_path]
        if anatomy and labels is not None:
            used.append(bids.truth_tissue_path(item.study, item.subject, item.session))
        for p in used:
            digests.append(f"{p.relative_to(item.study.parent)}:{sha256_file(p)}")
    fingerprint = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()
    return SliceDataset(
        SliceStore(xs),
        SliceStore(ys),
        np.concatenate(owners),
        scans,
        fingerprint,
        [str(Path(s).resolve()) for s in studies],
        [sim for s in studies if (sim := simulation_of(s))],
        np.concatenate(present),
        SliceStore(organs) if anatomy else None,
    )


def slice_targets(ds, idx: np.ndarray):
    scans = [ds.scans[i] for i in ds.scan_of_slice[idx]]
    arm = np.array([s.arm_index if s.arm_labelled else -1 for s in scans], dtype=np.int64)
    bio = np.array(
        [[s.viability, s.apoptosis] if s.has_histology else [np.nan, np.nan] for s in scans], dtype=np.float32
    )
    return arm, bio
