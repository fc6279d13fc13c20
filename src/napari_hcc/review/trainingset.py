"""The training set on disk: reviewers' corrected masks, versioned, never overwritten.

For a session `sub-X/ses-Y` of a study, each save adds version N under
`derivatives/corrections/sub-X/ses-Y/anat/`:

* `sub-X_ses-Y_desc-correctionNNN_mask.nii.gz`: the corrected mask, on exactly the T1w grid;
* `sub-X_ses-Y_desc-predictionNNN_mask.nii.gz`: what the model proposed before the edits;
* `sub-X_ses-Y_desc-correctionNNN_seg.dcm`: the same mask as a DICOM Segmentation on the source series,
  when the scan was imported from DICOM;
* `sub-X_ses-Y_desc-correctionNNN_mask.json`: provenance (annotator, time, model, hashes of the source
  images, Dice between prediction and correction, voxels added and removed).

Writes are atomic (temporary file, fsync, rename; `overwrite=False`), and a file lock serialises
saves, so two annotators saving at once get versions N and N+1 and both keep their work. The sidecar
is written last: a save killed half-way leaves no complete version (`bids.correction_versions`
ignores it), never a damaged one, and the next save takes the next free number. Training
(`io.labels.labelled_sessions`, behind `training.dataset.build_dataset`) uses the newest version.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.atomic import atomic_path, sha256_file, write_text
from napari_hcc.io.dicom_seg import source_dicom_files, write_dicom_seg
from napari_hcc.io.masks import mask_image
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.volume import load_volume, same_grid
from napari_hcc.metrics import dice

LOCK_NAME = ".corrections.lock"


@dataclass
class CorrectionRecord:
    version: int
    mask: Path
    prediction: Path | None
    sidecar: Path
    provenance: dict


def list_corrections(root: str | Path, subject: str, session: str) -> list[CorrectionRecord]:
    root = Path(root)
    out = []
    for v in bids.correction_versions(root, subject, session):
        mask = bids.correction_path(root, subject, session, v)
        sidecar = bids.sidecar(mask)
        prov = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        pred = mask.with_name(mask.name.replace(f"desc-correction{v:03d}", f"desc-prediction{v:03d}"))
        out.append(CorrectionRecord(v, mask, pred if pred.exists() else None, sidecar, prov))
    return out


def save_correction(
    root: str | Path,
    subject: str,
    session: str,
    corrected: np.ndarray,
    prediction: np.ndarray | None = None,
    model_id: str | None = None,
    annotator: str | None = None,
    note: str = "",
    allow_empty: bool = False,
    lock_timeout: float = 60.0,
) -> CorrectionRecord:
    """Add a new version of a session's corrected mask (source-grid arrays, same shape as the T1w)."""

    root = Path(root)
    t1w_path = bids.reference_image_path(root, subject, session)
    if not t1w_path.exists():
        raise InputError(f"cannot save the correction: {t1w_path} (the scan's T1w) does not exist.")
    t1w = load_volume(t1w_path, "T1w")  # the reference grid: the T1w, or the T2w where there is no T1w
    corrected = np.asarray(corrected)
    if corrected.shape != t1w.data.shape:
        raise InputError(
            f"cannot save the correction: the mask is {'x'.join(map(str, corrected.shape))} but the T1w grid of "
            f"sub-{subject} ses-{session} is {'x'.join(map(str, t1w.data.shape))}."
        )
    if prediction is not None and np.asarray(prediction).shape != corrected.shape:
        raise InputError(
            "cannot save the correction: the model's prediction is not on the same grid as the correction."
        )
    corrected = (corrected > 0).astype(np.uint8)
    if not corrected.any() and not allow_empty:
        raise InputError(
            f"the corrected mask of sub-{subject} ses-{session} is empty; confirm to save an empty mask (no tumor)."
        )
    folder = bids.anat_dir(root, subject, session, bids.CORRECTIONS_PIPELINE)
    folder.mkdir(parents=True, exist_ok=True)
    sources = {key: bids.image_path(root, subject, session, key) for key in bids.SEQUENCES}
    try:
        with FileLock(str(folder / LOCK_NAME), timeout=lock_timeout):
            _remove_stale_temporaries(folder)
            versions = bids.correction_versions(root, subject, session)
            version = bids.next_correction_version(root, subject, session)
            mask_path = bids.correction_path(root, subject, session, version)
            pred_path = None
            if prediction is not None:
                pred = (np.asarray(prediction) > 0).astype(np.uint8)
                pred_path = mask_path.with_name(mask_path.name.replace("desc-correction", "desc-prediction"))
                _save_new(mask_image(pred, t1w.affine, t1w.header), pred_path)
            changed = {}
            if prediction is not None:
                changed = {
                    "dice_prediction_vs_correction": round(dice(pred, corrected), 6),
                    "voxels_added": int(((corrected > 0) & (pred == 0)).sum()),
                    "voxels_removed": int(((corrected == 0) & (pred > 0)).sum()),
                }
            provenance = {
                "Description": "tumor mask corrected by a reviewer in napari-hcc",
                "version": version,
                "previous_version": versions[-1] if versions else None,
                "annotator": annotator or getpass.getuser(),
                "time": datetime.now(UTC).isoformat(timespec="seconds"),
                "model": model_id,
                "note": note,
                "sources": {
                    k: {"path": str(p.relative_to(root)), "sha256": sha256_file(p)}
                    for k, p in sources.items()
                    if p.exists()
                },
                "voxels": int(corrected.sum()),
                **changed,
                "prediction": pred_path.name if pred_path else None,
            }
            _save_new(mask_image(corrected, t1w.affine, t1w.header), mask_path)
            provenance["dicom_seg"] = _dicom_seg(corrected, t1w, mask_path)
            sidecar = bids.sidecar(mask_path)
            write_text(sidecar, json.dumps(provenance, indent=2) + "\n")
    except Timeout:
        raise InputError(
            f"another save of sub-{subject} ses-{session} has held the lock for {lock_timeout:.0f} s; try again."
        ) from None

    check = nib.load(str(mask_path))  # header only: the geometry that was really written
    if not same_grid(check.shape, check.affine, t1w.data.shape, t1w.affine):
        raise InputError(f"internal error: {mask_path} was not written on the T1w grid.")
    return CorrectionRecord(version, mask_path, pred_path, sidecar, provenance)


def _dicom_seg(corrected: np.ndarray, reference, mask_path: Path) -> str | None:
    """The correction as a DICOM SEG beside it when the scan came from DICOM (its file name), else None."""
    sources = source_dicom_files(reference.path)
    if sources is None:
        return None
    seg_path = mask_path.with_name(mask_path.name.replace("_mask.nii.gz", "_seg.dcm"))
    try:
        write_dicom_seg(corrected, reference.affine, sources, seg_path, manual=True,
                        description="tumor mask corrected by a reviewer")  # fmt: skip
    except InputError as exc:
        return f"not written: {exc}"
    return seg_path.name


def _remove_stale_temporaries(folder: Path) -> None:
    """Hidden temporary files left by a save that was killed: every saver holds the lock, so while
    we hold it no temporary file here belongs to a save in progress."""
    for tmp in folder.glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)


def _save_new(img, path: Path) -> None:

    with atomic_path(path, overwrite=False) as tmp:
        nib.save(img, tmp)
