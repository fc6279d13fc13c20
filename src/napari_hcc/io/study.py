"""Scans and studies: load T1w, T2w and CE (and a mask) as one `Scan`, with geometry checks.

Inputs: a BIDS session folder, three explicit files, or the original study's folder layout
(`<Arm>/<AnimalID_date>/` with `*T1W_HR.nii.gz`, `*T2W_HR.nii.gz`, `T1W_PC*.nii.gz`, `MASK2.nii.gz`).
Sequences that do not share the T1w's voxel grid are resampled onto it on purpose, and the scan
says so in `notes`, or (with `on_mismatch="refuse"`) the load is refused; they are never silently
misaligned. Every problem with an input is an `InputError`: one sentence naming the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.orientation import axcodes, slice_axis, spacing

ROLES = ("T1w", "T2w", "CE")
ORIGINAL_PATTERNS = {"T1w": "*T1W_HR*.nii*", "T2w": "*T2W_HR*.nii*", "CE": "T1W_PC*.nii*", "mask": "MASK2*.nii*"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


class InputError(ValueError):
    """A problem with an input file or folder, told in one sentence that names it."""


@dataclass
class Volume:
    data: np.ndarray  # float32, 3-D
    affine: np.ndarray
    header: object  # nibabel Nifti1Header
    path: Path

    @property
    def grid(self) -> str:
        return describe_grid(self.data.shape, self.affine)


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


def describe_grid(shape, affine) -> str:
    sp = spacing(affine)
    return f"{'x'.join(str(int(n)) for n in shape)} voxels of {'x'.join(f'{v:.2f}' for v in sp)} mm, {axcodes(affine)}"


# ----------------------------------------------------------------------------------------------
# One file


def load_volume(path: str | Path, role: str = "image") -> Volume:
    """Load one NIfTI file as a 3-D float32 volume, or raise an InputError saying what is wrong."""
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise InputError(f"{role} file not found: {path}")
    if path.is_dir():
        raise InputError(f"{role} {path} is a folder, not a NIfTI file.")
    if path.stat().st_size == 0:
        raise InputError(f"{role} file {path} is empty (0 bytes).")
    try:
        img = nib.load(str(path))
        if not hasattr(img, "affine") or img.affine is None:
            raise InputError(f"{role} file {path} has no spatial affine.")
        shape = img.shape
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            what = {2: "2-D", 4: "4-D", 5: "5-D"}.get(len(shape), f"{len(shape)}-D")
            raise InputError(f"{role} file {path} is {what} ({'x'.join(map(str, img.shape))}); one 3-D volume is needed.")
        if min(shape) < 1:
            raise InputError(f"{role} file {path} has an empty dimension ({'x'.join(map(str, img.shape))}).")
        if np.iscomplexobj(np.empty(0, dtype=img.get_data_dtype())) or img.get_data_dtype().names:
            raise InputError(f"{role} file {path} holds complex or RGB values; a real-valued magnitude image is needed.")
        data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(shape)
    except InputError:
        raise
    except Exception as exc:  # nibabel, gzip and zlib raise many kinds; the user needs one sentence
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{role} file {path} could not be read as NIfTI ({reason}).") from None
    affine = np.asarray(img.affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{role} file {path} has an invalid affine (singular or not finite); its geometry is unknown.")
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(
            f"{role} file {path} contains {int(bad.sum())} NaN or infinite voxels ({100 * bad.mean():.2g}%); "
            "replace them (e.g. with 0) before loading."
        )
    if role != "mask" and float(data.max()) == float(data.min()):
        raise InputError(f"{role} file {path} is blank (every voxel is {float(data.min()):g}).")
    return Volume(data, affine, img.header.copy(), path)


# ----------------------------------------------------------------------------------------------
# Geometry


def same_grid(shape_a, affine_a, shape_b, affine_b, tol_mm: float = 1e-3) -> bool:
    """True when two volumes share one voxel grid (same shape, affines equal within `tol_mm`)."""
    if tuple(shape_a) != tuple(shape_b):
        return False
    corners = np.array([[i, j, k, 1.0] for i in (0, shape_a[0] - 1) for j in (0, shape_a[1] - 1) for k in (0, shape_a[2] - 1)])
    return bool(np.max(np.abs((corners @ np.asarray(affine_a).T) - (corners @ np.asarray(affine_b).T))) <= tol_mm)


def _world_box(shape, affine) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)])
    world = (corners @ np.asarray(affine).T)[:, :3]
    return world.min(axis=0), world.max(axis=0)


def overlap_fraction(ref_shape, ref_affine, shape, affine) -> float:
    """Share of the reference's field of view (bounding box in the world) covered by the other."""
    lo_a, hi_a = _world_box(ref_shape, ref_affine)
    lo_b, hi_b = _world_box(shape, affine)
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0, None)
    return float(np.prod(inter) / np.prod(hi_a - lo_a))


def resample_to(vol: Volume, shape, affine, order: int) -> np.ndarray:
    """Resample `vol` onto the grid (shape, affine) in world coordinates (nibabel + scipy)."""
    import nibabel as nib
    from nibabel.processing import resample_from_to

    img = nib.Nifti1Image(vol.data, vol.affine)
    out = resample_from_to(img, (tuple(shape), np.asarray(affine)), order=order, mode="constant", cval=0.0)
    return np.asarray(out.dataobj, dtype=np.float32)


def _on_reference(vol: Volume, role: str, ref: Volume, on_mismatch: str, notes: list[str], order: int) -> np.ndarray:
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
    notes.append(f"{role} {vol.path.name} ({vol.grid}) was resampled onto the T1w grid ({ref.grid}) by {how} interpolation.")
    return resample_to(vol, ref.data.shape, ref.affine, order)


def _binary_mask(mask: np.ndarray, path: Path, notes: list[str]) -> np.ndarray:
    values = np.unique(mask)
    if np.all(np.isin(values, (0, 1))):
        return mask.astype(np.uint8)
    if np.allclose(values, np.round(values)):
        notes.append(f"mask {path.name} has labels {', '.join(f'{v:g}' for v in values[:8])}; every non-zero voxel is taken as tumor.")
        return (mask != 0).astype(np.uint8)
    notes.append(f"mask {path.name} holds fractional values; voxels >= 0.5 are taken as tumor.")
    return (mask >= 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# A scan


def load_scan(
    t1w: str | Path,
    t2w: str | Path,
    ce: str | Path,
    mask: str | Path | None = None,
    *,
    on_mismatch: str = "resample",
    mask_kind: str = "tumor",
    subject: str | None = None,
    session: str | None = None,
    arm: str | None = None,
) -> Scan:
    """Load three sequences (and an optional mask) as one Scan on the T1w grid."""
    if on_mismatch not in ("resample", "refuse"):
        raise ValueError("on_mismatch must be 'resample' or 'refuse'.")
    ref = load_volume(t1w, "T1w")
    notes: list[str] = []
    t2 = load_volume(t2w, "T2w")
    c = load_volume(ce, "CE")
    data = {"T2w": _on_reference(t2, "T2w", ref, on_mismatch, notes, 1), "CE": _on_reference(c, "CE", ref, on_mismatch, notes, 1)}
    paths = {"T1w": ref.path, "T2w": t2.path, "CE": c.path}
    mask_data = None
    if mask is not None:
        m = load_volume(mask, "mask")
        mask_data = _binary_mask(_on_reference(m, "mask", ref, on_mismatch, notes, 0), m.path, notes)
        paths["mask"] = m.path
    return Scan(ref.data, data["T2w"], data["CE"], ref.affine, ref.header, mask_data, mask_kind, subject, session, arm, paths, notes)


# ----------------------------------------------------------------------------------------------
# Folders: BIDS sessions, the original study layout, whole studies


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

    def load(self, on_mismatch: str = "resample") -> Scan:
        return load_scan(
            self.t1w, self.t2w, self.ce, self.mask, on_mismatch=on_mismatch, mask_kind=self.mask_kind,
            subject=self.subject, session=self.session, arm=self.arm,
        )


def _bids_entities(session_dir: Path) -> tuple[str, str, Path]:
    ses_dir = session_dir
    if not ses_dir.name.startswith("ses-") or not ses_dir.parent.name.startswith("sub-"):
        raise InputError(f"{session_dir} is not a BIDS session folder (expected .../sub-<id>/ses-<label>).")
    return ses_dir.parent.name[4:], ses_dir.name[4:], ses_dir.parent.parent


def study_root_of(t1w: str | Path | None, subject: str | None) -> Path | None:
    """The BIDS study folder holding a subject's T1w file (…/sub-X/ses-Y/anat/file -> …), or None."""
    if not subject or not t1w:
        return None
    import os

    # The path as given first: in a DataLad / git-annex study the NIfTI files are symbolic links into
    # an object store, and only the link's own folders are the study's.
    for path in (Path(os.path.abspath(t1w)), Path(t1w).resolve()):
        for parent in path.parents:
            if parent.name == f"sub-{subject}":
                return parent.parent
    return None


def session_weeks(root: Path, subject: str) -> dict[str, int]:
    """{session label: week} from the `week` column of the subject's sessions.tsv (empty without one)."""
    path = Path(root) / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"
    weeks: dict[str, int] = {}
    if path.is_file():
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                label = (row.get("session_id") or "").removeprefix("ses-")
                if label not in weeks and (row.get("week") or "").strip().isdigit():
                    weeks[label] = int(row["week"])
    return weeks


def week_in(weeks: dict[str, int], session: str) -> int | None:
    """A session's week from a `session_weeks` table, else from a `wkN` label; None when neither says."""
    if session in weeks:
        return weeks[session]
    if session.startswith("wk") and session[2:].isdigit():
        return int(session[2:])
    return None


def session_week(root: Path, subject: str, session: str) -> int | None:
    """The week of a session: the `week` column of the subject's sessions.tsv, else a `wkN` label."""
    return week_in(session_weeks(root, subject), session)


def week_of(t1w: str | Path | None, subject: str | None, session: str | None) -> int | None:
    """The week of the session whose T1w file this is, in its BIDS study (0 = baseline, before
    treatment); None outside a BIDS study or without a known week."""
    root = study_root_of(t1w, subject)
    return session_week(root, subject, session) if root is not None and session else None


def read_participants(root: Path) -> dict[str, dict[str, str]]:
    """participants.tsv as {subject label: row}; empty when the study has none."""
    path = Path(root) / "participants.tsv"
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["participant_id"].removeprefix("sub-"): row for row in csv.DictReader(fh, delimiter="\t")}


def bids_session(session_dir: str | Path, with_truth: bool = True) -> ScanRef:
    """The scan of one BIDS session folder (`.../sub-<id>/ses-<label>`)."""
    session_dir = Path(session_dir)
    subject, session, root = _bids_entities(session_dir)
    paths = {key: bids.image_path(root, subject, session, key) for key in bids.SEQUENCES}
    missing = [f"{key} ({p.name})" for key, p in paths.items() if not p.exists()]
    if missing:
        raise InputError(f"BIDS session {session_dir} has no {' and no '.join(missing)} in its anat folder.")
    truth = bids.truth_mask_path(root, subject, session)
    arm = read_participants(root).get(subject, {}).get("arm")
    return ScanRef(
        paths["T1w"], paths["T2w"], paths["CE"], truth if with_truth and truth.exists() else None, "tumor (truth)", subject, session, arm
    )


def original_animal(folder: str | Path) -> ScanRef:
    """The scan of one animal folder of the original study (`<Arm>/<AnimalID_date>/`)."""
    folder = Path(folder)
    found = {}
    for role, pattern in ORIGINAL_PATTERNS.items():
        hits = sorted(p for p in folder.glob(pattern) if p.name.endswith(NIFTI_SUFFIXES))
        if role == "T1w":  # `*T1W_HR*` must not pick the post-contrast file
            hits = [p for p in hits if not p.name.startswith("T1W_PC")]
        if len(hits) > 1:
            raise InputError(f"{folder} holds more than one {role} file ({', '.join(p.name for p in hits)}); keep one.")
        if hits:
            found[role] = hits[0]
    missing = [r for r in ROLES if r not in found]
    if missing:
        want = ", ".join(ORIGINAL_PATTERNS[r] for r in missing)
        raise InputError(f"{folder} has no {' and no '.join(missing)} file (looked for {want}).")
    animal, _, date = folder.name.partition("_")
    return ScanRef(found["T1w"], found["T2w"], found["CE"], found.get("mask"), "tumor (manual)", animal or folder.name, date or None, folder.parent.name)


def is_bids_session(path: Path) -> bool:
    return path.is_dir() and path.name.startswith("ses-") and path.parent.name.startswith("sub-") and (path / "anat").is_dir()


def is_original_animal(path: Path) -> bool:
    return path.is_dir() and any(path.glob(ORIGINAL_PATTERNS["T1w"]))


def find_scans(path: str | Path, with_truth: bool = True) -> list[ScanRef]:
    """Every scan under `path`: a study root, a subject, a session, or original-layout folders."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist.")
    if path.is_file():
        return [scan_ref_for_file(path, with_truth)]
    if is_bids_session(path):
        return [bids_session(path, with_truth)]
    if is_original_animal(path):
        return [original_animal(path)]
    sessions = sorted(p for p in path.glob("sub-*/ses-*") if is_bids_session(p))
    sessions += sorted(p for p in path.glob("ses-*") if is_bids_session(p))
    if sessions:
        return [bids_session(p, with_truth) for p in sessions]
    animals = sorted({p.parent for p in path.glob("*/" + ORIGINAL_PATTERNS["T1w"])} | {p.parent for p in path.glob("*/*/" + ORIGINAL_PATTERNS["T1w"])})
    if animals:
        return [original_animal(p) for p in animals]
    raise InputError(f"{path} holds no scans: expected a BIDS study (sub-*/ses-*/anat) or the original layout (<Arm>/<Animal>/*T1W_HR.nii.gz).")


def scan_ref_for_file(path: Path, with_truth: bool = True) -> ScanRef:
    """A file that belongs to a scan (a BIDS image or an original-layout file) -> that scan."""
    anat = path.parent
    if anat.name == "anat" and is_bids_session(anat.parent):
        return bids_session(anat.parent, with_truth)
    if is_original_animal(anat):
        return original_animal(anat)
    raise InputError(f"{path} is not part of a BIDS session or an original-layout animal folder; give the T1w, T2w and CE files explicitly.")
