"""Where predictions are written and in what form: masks, sidecars, probability maps, predictions.csv.

A prediction folder is a BIDS derivative:
`OUT/sub-<id>/ses-<ses>/anat/sub-<id>_ses-<ses>_desc-tumor_mask.nii.gz` (on exactly the T1w grid,
with its affine and header), a JSON sidecar with the scan-level results, `..._desc-leftout_mask.nii.gz`
where the anatomy gate left out something the network called tumor, optionally
`..._label-tumor_probseg.nii.gz`, and `OUT/predictions.csv` with one row per scan. Every file is
written atomically, so a crash or Ctrl-C never leaves a half-written one.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from napari_hcc import __version__
from napari_hcc.io.atomic import save_nifti, write_text
from napari_hcc.io.masks import mask_image
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.scan import Scan

CSV_NAME = "predictions.csv"
CSV_COLUMNS = [
    "subject",
    "session",
    "week",
    "p_control",
    "p_sorafenib",
    "p_nk",
    "p_combination",
    "response_probability",
    "viability",
    "apoptosis",
    "tumor_volume_mm3",
    "longest_diameter_mm",
    "model",
    "device",
    "seconds",
    "mask",
    "predicted_arm",
    "uncertainty",
    "uncertainty_method",
    "tta",
    "precision",
    "backend",
    "readout_sessions",
    "sequences",
    "response_mask",
    "error",
]


def _label(text: str) -> str:
    """A BIDS label: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", text) or "x"


def output_stem(out: Path, subject: str | None, session: str | None, t1w: Path) -> tuple[Path, str]:
    """(folder, file-name stem) for a scan's outputs: BIDS names, or (three files) from the T1w name."""
    if subject:
        sub = f"sub-{_label(subject)}"
        if session:
            ses = f"ses-{_label(session)}"
            return out / sub / ses / "anat", f"{sub}_{ses}"
        return out / sub / "anat", sub
    name = Path(t1w).name
    stem = re.sub(r"\.nii(\.gz)?$", "", name)
    stem = re.sub(r"_T1w$", "", stem)
    return out, stem


def mask_path_for(out: Path, subject: str | None, session: str | None, t1w: Path) -> Path:
    folder, stem = output_stem(Path(out), subject, session, t1w)
    return folder / f"{stem}_desc-tumor_mask.nii.gz"


def write_prediction(
    prediction, scan: Scan, out: str | Path, save_probabilities: bool = False, dicom_seg: bool = False
) -> dict[str, Path]:
    """Write the mask (and sidecar, and optionally the probability map and a DICOM SEG); returns the paths.

    `dicom_seg`: when the scan's T1w (its reference grid) was imported from DICOM, the mask is also written
    as a DICOM Segmentation on that series; for other scans a note says why there is none."""

    out = Path(out)
    folder, stem = output_stem(out, scan.subject, scan.session, scan.paths["T1w"])
    paths = {"mask": folder / f"{stem}_desc-tumor_mask.nii.gz", "sidecar": folder / f"{stem}_desc-tumor_mask.json"}
    if prediction.mask.shape != scan.shape:
        raise ValueError(f"internal error: mask {prediction.mask.shape} is not on the scan grid {scan.shape}")
    save_nifti(mask_image(prediction.mask, scan.affine, scan.header), paths["mask"])
    if prediction.left_out is not None:  # what the anatomy gate left out, for a reviewer to look at and keep
        paths["left_out"] = folder / f"{stem}_desc-leftout_mask.nii.gz"
        save_nifti(mask_image(prediction.left_out, scan.affine, scan.header), paths["left_out"])
    if save_probabilities and prediction.probability is not None:
        paths["probability"] = folder / f"{stem}_label-tumor_probseg.nii.gz"
        img = nib.Nifti1Image(prediction.probability.astype(np.float32), scan.affine, header=scan.header.copy())
        img.set_data_dtype(np.float32)
        img.header.set_slope_inter(1.0, 0.0)
        img.header["descrip"] = b"napari-hcc tumor probability"
        save_nifti(img, paths["probability"])
    sidecar = {
        "Description": "tumor mask predicted by napari-hcc",
        # the files read, by the sequence each is: a missing sequence's stand-in is not a source of its own
        "Sources": {role: str(p) for role, p in scan.paths.items() if role not in scan.stand_ins},
        **prediction.summary(),
    }
    if "left_out" in paths:
        sidecar["LeftOutMask"] = paths["left_out"].name
    if scan.alignment:
        sidecar["SequenceAlignment"] = scan.alignment
    if dicom_seg:
        from napari_hcc.io.dicom_seg import (  # noqa: PLC0415 - lazy: pydicom and highdicom, only for a DICOM SEG
            source_dicom_files,
            write_dicom_seg,
        )

        sources = source_dicom_files(scan.paths["T1w"])
        if sources is None:
            prediction.notes.append("no DICOM SEG: this scan's reference image was not imported from DICOM")
        else:
            paths["dicom_seg"] = write_dicom_seg(
                prediction.mask, scan.affine, sources, folder / f"{stem}_desc-tumor_seg.dcm"
            )
            sidecar["DicomSegmentation"] = paths["dicom_seg"].name
    write_text(paths["sidecar"], json.dumps(sidecar, indent=2) + "\n")
    _dataset_description(out)
    return paths


def _dataset_description(out: Path) -> None:
    path = out / "dataset_description.json"
    if path.exists():
        return

    write_text(
        path,
        json.dumps(
            {
                "Name": "napari-hcc predictions",
                "BIDSVersion": "1.9.0",
                "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "napari-hcc", "Version": __version__}],
            },
            indent=2,
        )
        + "\n",
    )


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else f"{float(value):.6g}"
    return str(value)


def csv_row(prediction, mask_path: Path | None, out: Path) -> dict[str, str]:
    p = prediction.response.arm_probability
    row = {
        "subject": prediction.subject or "",
        "session": prediction.session or "",
        "week": prediction.week,
        "p_control": p["Control"],
        "p_sorafenib": p["Sorafenib"],
        "p_nk": p["NK"],
        "p_combination": p["Combination"],
        "response_probability": prediction.response.response_probability,
        "viability": prediction.response.viability,
        "apoptosis": prediction.response.apoptosis,
        "tumor_volume_mm3": prediction.tumor_volume_mm3,
        "longest_diameter_mm": prediction.longest_diameter_mm,
        "model": prediction.run.model_id,
        "device": prediction.run.device,
        "seconds": round(prediction.run.timings["total"], 4),
        "mask": mask_path.relative_to(out).as_posix() if mask_path is not None else "",
        "predicted_arm": prediction.response.predicted_arm,
        "uncertainty": prediction.uncertainty,
        "uncertainty_method": prediction.uncertainty_method,
        "tta": prediction.run.tta,
        "precision": prediction.run.precision,
        "backend": prediction.run.backend,
        "readout_sessions": " ".join(prediction.response.sessions),
        "sequences": prediction.sequences,
        "response_mask": prediction.response.mask_source,
        "error": "",
    }
    return {k: _fmt(v) for k, v in row.items()}


def failed_row(subject: str | None, session: str | None, error: str) -> dict[str, str]:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(subject=subject or "", session=session or "", error=error)
    return row


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def earlier_rows(out: Path, replaced: set[str]) -> list[dict[str, str]]:
    """Rows of an earlier run into the same folder whose mask still exists and is not being redone."""
    rows = []
    for row in read_rows(out / CSV_NAME):
        mask = row.get("mask", "")
        if mask and mask not in replaced and (out / mask).is_file():
            rows.append({k: row.get(k, "") for k in CSV_COLUMNS})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """predictions.csv, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())
