"""`napari-hcc import`: DICOM folders, ParaVision studies and NIfTI files into a BIDS study.

The study is laid out as `simulate` writes it (`sub-<animal>/ses-<date>/anat/sub-*_ses-*_T2w.nii.gz`
with a JSON sidecar of the acquisition read from the headers), so every other command reads it.
Nothing is guessed: each series is mapped to a role by the map (`importing/role_map.py`) or left out
with a reason; two candidates for one role stop the import. Every file is written to a staging folder
inside the study first and moved into place only when all of them are complete, so a failed import
leaves the study as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc import __version__
from napari_hcc.errors import InputError
from napari_hcc.importing.role_map import RoleMap, load_map
from napari_hcc.importing.sessions import SessionPlan, plan_sessions
from napari_hcc.io import bids
from napari_hcc.io.acquisition import Acquisition
from napari_hcc.io.atomic import write_text
from napari_hcc.io.bruker import is_bruker_study, open_bruker_study
from napari_hcc.io.dicom import is_dicom_folder, open_dicom_folder
from napari_hcc.io.json_files import read_sidecar
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.volume import NIFTI_SUFFIXES, load_volume
from napari_hcc.progress import ProgressFn, report


@dataclass
class Imported:
    subject: str
    session: str
    files: dict[str, Path]  # role -> NIfTI written
    sources: dict[str, str]  # role -> the acquisition's name
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    study: Path
    sessions: list[Imported]
    left_out: list[tuple[str, str]]  # (acquisition name, why)


def input_kind(path: Path) -> str:
    """'bruker', 'dicom' or 'nifti' for an input, or an InputError saying what it is not."""
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if is_bruker_study(path):
        return "bruker"
    if path.is_file() and path.name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if is_dicom_folder(path):
        return "dicom"
    raise InputError(
        f"{path} is neither a DICOM folder, a ParaVision study (a folder with 'subject' and numbered scans, "
        "or a zip of one) nor a NIfTI file."
    )


def _nifti_acquisition(path: Path) -> Acquisition:
    vol = load_volume(path, "input")
    name = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    sidecar = read_sidecar(path)
    return Acquisition(source="nifti", name=f"file {path.name}", description=name, subject="", study_date="",
                       shape=vol.data.shape, affine=vol.affine, sidecar=sidecar, files=(path,),
                       reader=lambda: vol.data)  # fmt: skip


@contextlib.contextmanager
def _opened(inputs: list[Path], stack: contextlib.ExitStack):
    acqs: list[Acquisition] = []
    for path in inputs:
        kind = input_kind(path)
        if kind == "bruker":
            acqs += stack.enter_context(open_bruker_study(path))
        elif kind == "dicom":
            acqs += stack.enter_context(open_dicom_folder(path))
        else:
            acqs.append(_nifti_acquisition(path))
    yield acqs


def map_roles(acqs: list[Acquisition], role_map: RoleMap) -> tuple[list[tuple[Acquisition, str, str]], list]:
    mapped, left_out = [], []
    for acq in acqs:
        if acq.left_out:
            left_out.append((acq.name, acq.left_out))
            continue
        role, note = role_map.role_of(acq)
        if role is None:
            left_out.append((acq.name, note))
        else:
            mapped.append((acq, role, note))
    return mapped, left_out


def _image(data: np.ndarray, affine: np.ndarray, description: str) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(np.float32), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)  # scanner coordinates
    img.set_sform(affine, code=1)
    img.header["descrip"] = description.encode("ascii", "replace")[:79]
    return img


def _sidecar(acq: Acquisition, role: str, note: str) -> dict:
    out = dict(acq.sidecar)
    out.update(acq.geometry_fields())
    out["Role"] = role
    out["SourceFormat"] = acq.source
    out["SourceName"] = acq.name
    out["SourceFiles"] = [os.path.abspath(f) for f in acq.files[:1]] + (
        [f"... {len(acq.files)} files"] if len(acq.files) > 1 else []
    )
    if acq.source == "dicom":
        out["SourceDicomFiles"] = [os.path.abspath(f) for f in acq.files]
    if note:
        out["RoleNote"] = note
    out["ImportedBy"] = f"napari-hcc import {__version__}"
    return out


def _tsv_text(rows: list[dict], first: str) -> str:
    """`first`, then every other column in alphabetical order; empty or missing values are "n/a" (BIDS)."""
    columns = [first] + sorted({k for r in rows for k in r} - {first})
    return bids.tsv_text([{c: str(r.get(c, "") or "n/a") for c in columns} for r in rows], columns)


def _staged_session(stage: Path, plan: SessionPlan) -> dict[str, Path]:
    written = {}
    for role, (acq, note) in plan.roles.items():
        target = bids.image_path(stage, plan.subject, plan.session, role)
        target.parent.mkdir(parents=True, exist_ok=True)
        nib.save(_image(acq.read(), acq.affine, f"{role} from {acq.name}"), target)
        bids.sidecar(target).write_text(json.dumps(_sidecar(acq, role, note), indent=2, default=str) + "\n")
        written[role] = target
    return written


def _index_files(out: Path, plans: list[SessionPlan]) -> None:
    """participants.tsv, each subject's sessions.tsv, dataset_description.json: added to, never rewritten."""
    if not (out / "dataset_description.json").exists():
        description = {"Name": out.name, "BIDSVersion": "1.9.0", "DatasetType": "raw",
                       "GeneratedBy": [{"Name": "napari-hcc import", "Version": __version__}]}  # fmt: skip
        write_text(out / "dataset_description.json", json.dumps(description, indent=2) + "\n")
    rows = bids.read_tsv(out / "participants.tsv")
    known = {r["participant_id"] for r in rows}
    for plan in plans:
        if f"sub-{plan.subject}" not in known:
            rows.append({"participant_id": f"sub-{plan.subject}", "animal_id": plan.animal_id})
            known.add(f"sub-{plan.subject}")
    write_text(out / "participants.tsv", _tsv_text(rows, "participant_id"))
    for subject in sorted({p.subject for p in plans}):
        path = bids.sessions_tsv(out, subject)
        rows = bids.read_tsv(path)
        have = {r["session_id"] for r in rows}
        for plan in plans:
            if plan.subject == subject and f"ses-{plan.session}" not in have:
                date = plan.study_date
                iso = dt.date(int(date[:4]), int(date[4:6]), int(date[6:8])).isoformat() if len(date) == 8 else "n/a"
                rows.append({"session_id": f"ses-{plan.session}", "acq_time": iso})
        write_text(path, _tsv_text(rows, "session_id"))


def _refuse_existing(out: Path, plans: list[SessionPlan]) -> None:
    for plan in plans:
        for role in plan.roles:
            target = bids.image_path(out, plan.subject, plan.session, role)
            if target.exists():
                raise InputError(
                    f"{target} already exists; sub-{plan.subject} ses-{plan.session} was imported before "
                    "(import into another --session, or remove it first). Nothing was written."
                )


def import_study(
    inputs: list[str | Path],
    out: str | Path,
    subject: str | None = None,
    session: str | None = None,
    map_path: str | Path | None = None,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Import scanner data into the BIDS study `out` (created when missing). See the module docstring."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder.")
    role_map = load_map(map_path)
    paths = [Path(p) for p in inputs]
    with contextlib.ExitStack() as stack, _opened(paths, stack) as acqs:
        mapped, left_out = map_roles(acqs, role_map)
        nifti = [a for a, _, _ in mapped if a.source == "nifti"]
        if nifti and subject is None:
            raise InputError(f"{nifti[0].files[0]} is a NIfTI file, which names no animal: give --subject.")
        if not mapped:
            why = "; ".join(f"{n}: {r}" for n, r in left_out) or "no series found"
            raise InputError(f"nothing to import from {', '.join(map(str, paths))}: {why}.")
        plans = plan_sessions(mapped, subject, session)
        _refuse_existing(out, plans)
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".import-", dir=out))
        try:
            sessions = []
            for n, plan in enumerate(plans):
                report(progress, n, len(plans), "sessions", session=f"sub-{plan.subject} ses-{plan.session}")
                staged = _staged_session(stage, plan)
                notes = [f"{plan.roles[r][0].name}: {plan.roles[r][1]}" for r in plan.roles if plan.roles[r][1]]
                sessions.append(
                    Imported(plan.subject, plan.session, staged, {r: a.name for r, (a, _) in plan.roles.items()}, notes)
                )
            for item in sessions:
                for role, staged in list(item.files.items()):
                    final = out / staged.relative_to(stage)
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(bids.sidecar(staged), bids.sidecar(final))
                    os.replace(staged, final)
                    item.files[role] = final
            _index_files(out, plans)
            report(progress, len(plans), len(plans), "sessions")
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return ImportReport(out, sessions, left_out)
