"""A scan: T1w, T2w and CE (and a mask) on one voxel grid, loaded from three files with geometry checks.

Sequences that do not share the T1w's voxel grid are resampled onto it on purpose, and the scan says so
in `notes`, or (with `on_mismatch="refuse"`) the load is refused; they are never silently misaligned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.orientation import axcodes, slice_axis, spacing
from napari_hcc.io.volume import Volume, load_volume, overlap_fraction, resample_to, same_grid
from napari_hcc.vocabulary import MISMATCH_POLICIES, MismatchPolicy


@dataclass
class Scan:
    """One MRI session of one animal: three co-registered sequences on one voxel grid."""

    t1w: np.ndarray
    t2w: np.ndarray
    ce: np.ndarray
    affine: np.ndarray  # of the reference (T1w) grid
    header: object  # reference NIfTI header, kept for writing masks back
    mask: np.ndarray | None = None  # uint8 0/1 on the same grid
    mask_kind: str = "tumor"  # layer name: "tumor (truth)", "tumor (manual)", ...
    subject: str | None = None
    session: str | None = None
    arm: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # resampling and other deliberate changes
    alignment: dict[str, dict] = field(default_factory=dict)  # role -> what registration did (when asked)
    stand_ins: dict[str, str] = field(default_factory=dict)  # missing role -> the role whose image stands in
    left_out: tuple[str, ...] = ()  # roles the session has but the model leaves out (inference/subsets.as_read)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.t1w.shape)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return spacing(self.affine)

    @property
    def slice_axis(self) -> int:
        return slice_axis(self.affine)

    @property
    def orientation(self) -> str:
        return axcodes(self.affine)

    @property
    def label(self) -> str:
        if self.subject and self.session:
            return f"sub-{self.subject} ses-{self.session}"
        return self.paths["T1w"].name if "T1w" in self.paths else "scan"

    def channels(self) -> np.ndarray:
        """The sequences stacked in the model's channel order [T1w, T2w, CE]."""
        return np.stack([self.t1w, self.t2w, self.ce])


#: aligns a sequence to the T1w: (T1w, moving, role) -> (moving on the T1w grid, note, record);
#: made by `napari_hcc.registration.align.aligner`
Aligner = Callable[[Volume, Volume, str], tuple[np.ndarray, str, dict]]


def _on_reference(
    vol: Volume, role: str, ref: Volume, on_mismatch: MismatchPolicy, notes: list[str], order: int
) -> np.ndarray:
    if same_grid(vol.data.shape, vol.affine, ref.data.shape, ref.affine):
        return vol.data
    covered = overlap_fraction(ref.data.shape, ref.affine, vol.data.shape, vol.affine)
    if covered < 0.2:
        raise InputError(
            f"{role} file {vol.path} covers only {100 * covered:.0f}% of the T1w field of view ({ref.path.name}); "
            "they do not image the same region and cannot form one scan."
        )
    if on_mismatch == "refuse":
        raise InputError(
            f"{role} file {vol.path} is on a different voxel grid ({vol.grid}) than the T1w {ref.path.name} "
            f"({ref.grid}); resample it onto the T1w grid first, or allow resampling."
        )
    how = "nearest-neighbour" if order == 0 else "linear"
    notes.append(
        f"{role} {vol.path.name} ({vol.grid}) was resampled onto the T1w grid ({ref.grid}) by {how} interpolation."
    )
    return resample_to(vol, ref.data.shape, ref.affine, order)


#: fewer slices than this cannot be read as a volume: the network's 2.5-D context, the 3-D tumor
#: measurements and the resampling of the other sequences all need a slab, not a single image
MIN_SLICES = 3


def _check_slab(vol: Volume, role: str) -> None:
    thin = [n for n in vol.data.shape if n < MIN_SLICES]
    if thin:
        raise InputError(
            f"{role} file {vol.path} has only {thin[0]} slice(s) ({vol.grid}); napari-hcc reads volumes of at least "
            f"{MIN_SLICES} slices and does not measure single 2-D images."
        )


def _binary_mask(mask: np.ndarray, path: Path, notes: list[str]) -> np.ndarray:
    values = np.unique(mask)
    if np.all(np.isin(values, (0, 1))):
        return mask.astype(np.uint8)
    if np.allclose(values, np.round(values)):
        notes.append(
            f"mask {path.name} has labels {', '.join(f'{v:g}' for v in values[:8])}; every non-zero voxel is taken as tumor."
        )
        return (mask != 0).astype(np.uint8)
    notes.append(f"mask {path.name} holds fractional values; voxels >= 0.5 are taken as tumor.")
    return (mask >= 0.5).astype(np.uint8)


def load_scan(
    t1w: str | Path,
    t2w: str | Path,
    ce: str | Path,
    mask: str | Path | None = None,
    *,
    on_mismatch: MismatchPolicy = "resample",
    mask_kind: str = "tumor",
    subject: str | None = None,
    session: str | None = None,
    arm: str | None = None,
    align: Aligner | None = None,
    stand_ins: dict[str, str] | None = None,
) -> Scan:
    """Load three sequences (and an optional mask) as one Scan on the T1w grid.

    With `align`, the T2w and CE are registered to the T1w in world coordinates and resampled once
    through the transform; the scan's notes say so and `alignment` records it."""
    if on_mismatch not in MISMATCH_POLICIES:
        raise ValueError("on_mismatch must be 'resample' or 'refuse'.")
    stand_ins = dict(stand_ins or {})  # a stand-in file is named by the sequence it really is
    ref = load_volume(t1w, stand_ins.get("T1w", "T1w"))
    notes: list[str] = []
    t2 = load_volume(t2w, stand_ins.get("T2w", "T2w"))
    c = load_volume(ce, stand_ins.get("CE", "CE"))
    for vol, role in ((ref, "T1w"), (t2, "T2w"), (c, "CE")):
        _check_slab(vol, role)
    alignment: dict[str, dict] = {}
    data = {}
    for vol, role in ((t2, "T2w"), (c, "CE")):
        if role in stand_ins or (align is not None and "T1w" in stand_ins):
            data[role] = _on_reference(vol, role, ref, on_mismatch, notes, 1)  # one image: nothing to align
            continue
        if align is None:
            data[role] = _on_reference(vol, role, ref, on_mismatch, notes, 1)
            continue
        if on_mismatch == "refuse" and not same_grid(vol.data.shape, vol.affine, ref.data.shape, ref.affine):
            _on_reference(vol, role, ref, on_mismatch, notes, 1)  # raises: refused
        data[role], note, alignment[role] = align(ref, vol, role)
        notes.append(note)
    paths = {"T1w": ref.path, "T2w": t2.path, "CE": c.path}
    mask_data = None
    if mask is not None:
        m = load_volume(mask, "mask")
        mask_data = _binary_mask(_on_reference(m, "mask", ref, on_mismatch, notes, 0), m.path, notes)
        paths["mask"] = m.path
    scan = Scan(
        ref.data,
        data["T2w"],
        data["CE"],
        ref.affine,
        ref.header,
        mask_data,
        mask_kind,
        subject,
        session,
        arm,
        paths,
        notes,
        alignment,
        stand_ins,
    )
    if stand_ins:
        scan.notes.append(missing_note(stand_ins))
    return scan


def stand_ins_for(present: dict) -> dict[str, str] | None:
    """For a session without some sequences: {missing role: the role that stands in for it}; None when
    neither a T1w nor a T2w exists. The CE's stand-in is the T1w (its pre-contrast twin), else the T2w;
    a missing T1w or T2w is stood in for by the other."""
    if "T1w" not in present and "T2w" not in present:
        return None
    out = {}
    if "T1w" not in present:
        out["T1w"] = "T2w"
    if "T2w" not in present:
        out["T2w"] = "T1w"
    if "CE" not in present:
        out["CE"] = "T1w" if "T1w" in present else "T2w"
    return out


def without_sequences(scan: Scan, keep) -> Scan:
    """The scan as a session that has only the roles `keep` (evaluation of a sequence subset): the others
    become stand-ins, as for a session without them (`stand_ins_for`)."""
    keep = set(keep) - set(scan.stand_ins)
    merged = stand_ins_for(dict.fromkeys(keep))
    if merged is None:
        raise ValueError(f"a scan needs a T1w or a T2w; {sorted(keep)} has neither.")
    images = {"T1w": scan.t1w, "T2w": scan.t2w, "CE": scan.ce}
    data = {role: images[merged[role]] if role in merged else images[role] for role in images}
    notes = [n for n in scan.notes if n != missing_note(scan.stand_ins)] + [missing_note(merged)]
    return replace(scan, t1w=data["T1w"], t2w=data["T2w"], ce=data["CE"], stand_ins=merged, notes=notes)


def missing_note(stand_ins: dict[str, str]) -> str:
    """The note a session without some sequence carries when it is opened, before any model reads it (what
    a model makes of it depends on the model: `inference/subsets.py` `scan_notes` puts that in its place)."""
    return (
        f"this session has no {' or '.join(sorted(stand_ins))}: the model reads the sequences it has, and says "
        "when it runs what that costs and whether the response can be read"
    )


def stand_in_note(stand_ins: dict[str, str]) -> str:
    """What a user must know about a scan read with stand-ins for missing sequences."""
    missing = ", ".join(f"{role} (read from the {src})" for role, src in sorted(stand_ins.items()))
    return (
        f"this session has no {' or '.join(sorted(stand_ins))}: the model reads T1w, T2w and CE, so another sequence "
        f"stands in: {missing}. The mask is a rough first draft to correct, and the response (arm, viability, "
        "apoptosis) cannot be read without the missing contrast."
    )


@dataclass(frozen=True)
class ScanRef:
    """Where one scan's files are, before loading."""

    t1w: Path
    t2w: Path
    ce: Path
    mask: Path | None = None
    mask_kind: str = "tumor"
    subject: str | None = None
    session: str | None = None
    arm: str | None = None
    stand_ins: tuple[tuple[str, str], ...] = ()  # (missing role, role standing in)

    def load(self, on_mismatch: MismatchPolicy = "resample", align: Aligner | None = None) -> Scan:
        return load_scan(
            self.t1w,
            self.t2w,
            self.ce,
            self.mask,
            on_mismatch=on_mismatch,
            mask_kind=self.mask_kind,
            subject=self.subject,
            session=self.session,
            arm=self.arm,
            align=align,
            stand_ins=dict(self.stand_ins),
        )


def ref_label(ref: ScanRef) -> str:
    if ref.subject:
        return f"sub-{ref.subject}" + (f" ses-{ref.session}" if ref.session else "")
    return ref.t1w.name
