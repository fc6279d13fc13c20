"""File names of a napari-hcc study (BIDS-shaped). The one place that knows the layout."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

#: Sequence key -> BIDS suffix (with entities) of the raw image, in the model's channel order.
SEQUENCES = {"T1w": "T1w", "T2w": "T2w", "CE": "ce-gd_T1w"}
TRUTH_PIPELINE = "truth"
#: corrected masks saved by reviewers (the training set): derivatives/corrections/.../*_desc-correctionNNN_mask.nii.gz
CORRECTIONS_PIPELINE = "corrections"


def prefix(subject: str, session: str) -> str:
    return f"sub-{subject}_ses-{session}"


def anat_dir(root: Path, subject: str, session: str, pipeline: str | None = None) -> Path:
    base = Path(root) / "derivatives" / pipeline if pipeline else Path(root)
    return base / f"sub-{subject}" / f"ses-{session}" / "anat"


def image_path(root: Path, subject: str, session: str, key: str) -> Path:
    return anat_dir(root, subject, session) / f"{prefix(subject, session)}_{SEQUENCES[key]}.nii.gz"


def reference_image_path(root: Path, subject: str, session: str) -> Path:
    """The image whose grid a session's masks lie on: the T1w, or the T2w in a session without a T1w."""
    t1w = image_path(root, subject, session, "T1w")
    t2w = image_path(root, subject, session, "T2w")
    return t2w if not t1w.exists() and t2w.exists() else t1w


def truth_mask_path(root: Path, subject: str, session: str) -> Path:
    return anat_dir(root, subject, session, TRUTH_PIPELINE) / f"{prefix(subject, session)}_desc-tumor_mask.nii.gz"


def truth_fraction_path(root: Path, subject: str, session: str, component: str) -> Path:
    return (
        anat_dir(root, subject, session, TRUTH_PIPELINE)
        / f"{prefix(subject, session)}_label-{component}_probseg.nii.gz"
    )


def truth_tissue_path(root: Path, subject: str, session: str) -> Path:
    return anat_dir(root, subject, session, TRUTH_PIPELINE) / f"{prefix(subject, session)}_desc-tissue_dseg.nii.gz"


def sessions_tsv(root: Path, subject: str) -> Path:
    return Path(root) / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"


def read_tsv(path: Path) -> list[dict[str, str]]:
    """The rows of a BIDS .tsv file (participants.tsv, sessions.tsv); [] when there is none."""
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def tsv_text(rows: list[dict], columns: Sequence[str]) -> str:
    """Rows as the text of a BIDS .tsv file with these columns (keys not among them are left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), delimiter="\t", lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def sidecar(path: Path) -> Path:
    name = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    return path.with_name(name + ".json")


def correction_path(root: Path, subject: str, session: str, version: int) -> Path:
    return (
        anat_dir(root, subject, session, CORRECTIONS_PIPELINE)
        / f"{prefix(subject, session)}_desc-correction{version:03d}_mask.nii.gz"
    )


def _versions_in(root: Path, subject: str, session: str, kinds: str) -> dict[int, set[str]]:
    """Version number -> the kinds of file present ("correction", "prediction", "json")."""

    folder = anat_dir(root, subject, session, CORRECTIONS_PIPELINE)
    if not folder.is_dir():
        return {}
    pattern = re.compile(re.escape(prefix(subject, session)) + rf"_desc-({kinds})(\d{{3,}})_mask\.(nii\.gz|json)$")
    found: dict[int, set[str]] = {}
    for p in folder.iterdir():
        if m := pattern.match(p.name):
            found.setdefault(int(m.group(2)), set()).add("json" if m.group(3) == "json" else m.group(1))
    return found


def correction_versions(root: Path, subject: str, session: str) -> list[int]:
    """The complete saved versions of a session's corrected mask, oldest first.

    A version is complete when its mask and its JSON sidecar (written last) are both there; a save
    killed half-way leaves no complete version behind and is ignored. Versions are never overwritten.
    """
    found = _versions_in(root, subject, session, "correction")
    return sorted(v for v, kinds in found.items() if {"correction", "json"} <= kinds)


def next_correction_version(root: Path, subject: str, session: str) -> int:
    """The number a new save takes: above every version any file already uses, complete or not."""
    found = _versions_in(root, subject, session, "correction|prediction")
    return max(found, default=0) + 1


def latest_correction(root: Path, subject: str, session: str) -> Path | None:
    """The newest complete corrected mask of a session, or None."""
    versions = correction_versions(root, subject, session)
    return correction_path(root, subject, session, versions[-1]) if versions else None
