"""Studies: finding the scans of a folder, and what a study says about its sessions.

Inputs: a BIDS study, subject or session folder, a NIfTI file of a scan, or the original study's
folder layout (`<Arm>/<AnimalID_date>/` with `*T1W_HR.nii.gz`, `*T2W_HR.nii.gz`, `T1W_PC*.nii.gz`,
`MASK2.nii.gz`), each found as `ScanRef`s (io/scan.py) to load. A session's week comes from the
subject's sessions.tsv (or a `wkN` label), the arm and histology from participants.tsv. Every problem
with an input is an `InputError`: one sentence naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.scan import ScanRef, stand_ins_for
from napari_hcc.io.volume import NIFTI_SUFFIXES
from napari_hcc.vocabulary import SEQUENCE_ROLES

ORIGINAL_PATTERNS = {"T1w": "*T1W_HR*.nii*", "T2w": "*T2W_HR*.nii*", "CE": "T1W_PC*.nii*", "mask": "MASK2*.nii*"}


# ----------------------------------------------------------------------------------------------
# One file


# ----------------------------------------------------------------------------------------------
# Geometry


# ----------------------------------------------------------------------------------------------
# A scan


# ----------------------------------------------------------------------------------------------
# Folders: BIDS sessions, the original study layout, whole studies


def _bids_entities(session_dir: Path) -> tuple[str, str, Path]:
    ses_dir = session_dir
    if not ses_dir.name.startswith("ses-") or not ses_dir.parent.name.startswith("sub-"):
        raise InputError(f"{session_dir} is not a BIDS session folder (expected .../sub-<id>/ses-<label>).")
    return ses_dir.parent.name[4:], ses_dir.name[4:], ses_dir.parent.parent


def study_root_of(t1w: str | Path | None, subject: str | None) -> Path | None:
    """The BIDS study folder holding a subject's T1w file (…/sub-X/ses-Y/anat/file -> …), or None."""
    if not subject or not t1w:
        return None

    # The path as given first: in a DataLad / git-annex study the NIfTI files are symbolic links into
    # an object store, and only the link's own folders are the study's.
    for path in (Path(os.path.abspath(t1w)), Path(t1w).resolve()):
        for parent in path.parents:
            if parent.name == f"sub-{subject}":
                return parent.parent
    return None


def session_weeks(root: Path, subject: str) -> dict[str, int]:
    """{session label: week} from the `week` column of the subject's sessions.tsv (empty without one)."""
    weeks: dict[str, int] = {}
    for row in bids.read_tsv(bids.sessions_tsv(root, subject)):
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
    return {row["participant_id"].removeprefix("sub-"): row for row in bids.read_tsv(Path(root) / "participants.tsv")}


def bids_session(session_dir: str | Path, with_truth: bool = True) -> ScanRef:
    """The scan of one BIDS session folder (`.../sub-<id>/ses-<label>`)."""
    session_dir = Path(session_dir)
    subject, session, root = _bids_entities(session_dir)
    paths = {key: bids.image_path(root, subject, session, key) for key in bids.SEQUENCES}
    present = {key: p for key, p in paths.items() if p.exists()}
    stand_ins = stand_ins_for(present)
    if stand_ins is None:
        missing = [f"{key} ({p.name})" for key, p in paths.items() if key not in present]
        raise InputError(
            f"BIDS session {session_dir} has no {' and no '.join(missing)} in its anat folder; "
            "a scan needs at least a T1w or a T2w."
        )
    full = {key: present.get(key) or present[stand_ins[key]] for key in paths}
    truth = bids.truth_mask_path(root, subject, session)
    arm = read_participants(root).get(subject, {}).get("arm")
    return ScanRef(
        full["T1w"],
        full["T2w"],
        full["CE"],
        truth if with_truth and truth.exists() else None,
        "tumor (truth)",
        subject,
        session,
        arm,
        stand_ins=tuple(sorted(stand_ins.items())),
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
    missing = [r for r in SEQUENCE_ROLES if r not in found]
    if missing:
        want = ", ".join(ORIGINAL_PATTERNS[r] for r in missing)
        raise InputError(f"{folder} has no {' and no '.join(missing)} file (looked for {want}).")
    animal, _, date = folder.name.partition("_")
    return ScanRef(
        found["T1w"],
        found["T2w"],
        found["CE"],
        found.get("mask"),
        "tumor (manual)",
        animal or folder.name,
        date or None,
        folder.parent.name,
    )


def is_bids_session(path: Path) -> bool:
    return (
        path.is_dir()
        and path.name.startswith("ses-")
        and path.parent.name.startswith("sub-")
        and (path / "anat").is_dir()
    )


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
    animals = sorted(
        {p.parent for p in path.glob("*/" + ORIGINAL_PATTERNS["T1w"])}
        | {p.parent for p in path.glob("*/*/" + ORIGINAL_PATTERNS["T1w"])}
    )
    if animals:
        return [original_animal(p) for p in animals]
    raise InputError(
        f"{path} holds no scans: expected a BIDS study (sub-*/ses-*/anat) or the original layout (<Arm>/<Animal>/*T1W_HR.nii.gz)."
    )


def scan_ref_for_file(path: Path, with_truth: bool = True) -> ScanRef:
    """A file that belongs to a scan (a BIDS image or an original-layout file) -> that scan."""
    anat = path.parent
    if anat.name == "anat" and is_bids_session(anat.parent):
        return bids_session(anat.parent, with_truth)
    if is_original_animal(anat):
        return original_animal(anat)
    raise InputError(
        f"{path} is not part of a BIDS session or an original-layout animal folder; give the T1w, T2w and CE files explicitly."
    )


def study_root(ref: ScanRef) -> Path | None:
    """The BIDS study folder a scan belongs to (…/sub-X/ses-Y/anat/file -> …), or None."""
    return study_root_of(ref.t1w, ref.subject)
