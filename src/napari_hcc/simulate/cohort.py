"""Write a simulated preclinical cohort as a BIDS-shaped study (`napari-hcc simulate`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.atomic import save_nifti, write_text
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.progress import ProgressFn, report
from napari_hcc.simulate import physics
from napari_hcc.simulate.anatomy import TISSUES, build_anatomy, draw_anatomy, draw_body_scale
from napari_hcc.simulate.biology import Rat, draw_cohort, tumor_state
from napari_hcc.simulate.details import TUMOR_SITES, draw_details
from napari_hcc.simulate.labs import draw_lab, fit_to_animal, with_drawn_artifacts
from napari_hcc.simulate.pathology import sample_histology
from napari_hcc.simulate.protocol import PLANES, STUDY_PROTOCOL, Protocol
from napari_hcc.simulate.render import draw_pose, render_session
from napari_hcc.simulate.sidecars import sequence_sidecar
from napari_hcc.simulate.trunk import draw_trunk
from napari_hcc.simulate.tumor import draw_tumor_shape
from napari_hcc.vocabulary import ARMS

SIMULATOR_VERSION = "2.3"
VARIED = "varied"
DAYS_BASELINE = 6  # baseline scan: six days after implantation, before treatment


LOBES = ("lll", "ml", "rll", "cau")  # the order of `Anatomy.liver_lobes`


def session_label(week: int) -> str:
    return f"wk{week}"


def _nifti(data: np.ndarray, affine: np.ndarray, description: str):

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)  # scanner coordinates
    img.set_sform(affine, code=1)
    img.header["descrip"] = description.encode()[:79]
    if np.issubdtype(data.dtype, np.integer):
        img.header.set_slope_inter(1.0, 0.0)
    return img


def protocol_of_rat(protocol: Protocol | str, seed: int, rat: Rat, index: int, plane: str | None = None) -> Protocol:
    """The lab that scans `rat`: a fixed protocol, a fixed one with its artifacts drawn per rat, or (`varied`)
    a lab drawn at random per rat (scanning in `plane` when given). Draws depend only on (seed, rat index)."""
    if protocol == VARIED:
        return fit_to_animal(draw_lab(np.random.default_rng([seed, 7, index]), plane), body_scale(rat))
    if protocol.draw_artifacts:
        return with_drawn_artifacts(protocol, np.random.default_rng([seed, 7, index]))
    return protocol


def body_scale(rat: Rat) -> float:
    """A `varied` rat's body scale (`anatomy.draw_body_scale`), from a generator of its own."""
    return draw_body_scale(np.random.default_rng([rat.seed, 8]))


def _render_and_write(task: tuple) -> dict:
    """Render one session and write its files. Runs in a worker process; deterministic."""
    root, rat, week, is_endpoint, protocol = task
    rng = np.random.default_rng(rat.seed)
    anatomy_params = draw_anatomy(rng)
    anatomy_params["details"] = draw_details(np.random.default_rng([rat.seed, 5]), protocol.source == VARIED)
    anatomy_params["trunk"] = draw_trunk(np.random.default_rng([rat.seed, 6]), anatomy_params["size"])
    if protocol.source == VARIED:
        anatomy_params["scale"] = body_scale(rat)
    lobe = anatomy_params["details"].get("tumor_lobe", "lll")
    lobes = build_anatomy(anatomy_params).liver_lobes
    shape = draw_tumor_shape(rng, lobes[LOBES.index(lobe)], TUMOR_SITES[lobe])
    fingers = anatomy_params["details"].get("margin_fingers")
    if fingers:
        shape.fine_dirs, shape.fine_amps = np.asarray(fingers["dirs"]), np.asarray(fingers["amps"])
    session_rng = np.random.default_rng([rat.seed, 2, week])
    state = tumor_state(rat, week)
    pose = draw_pose(session_rng, week, protocol)
    texture_rng = np.random.default_rng([rat.seed, 4, week])
    quick = protocol.source != "study"
    out = render_session(rat, anatomy_params, shape, state, pose, session_rng, protocol, texture_rng, quick)

    sub, ses = rat.participant_id, session_label(week)
    for role, image in out.images.items():
        path = bids.image_path(root, sub, ses, role)
        save_nifti(_nifti(image, out.affines[role], f"napari-hcc simulated {bids.SEQUENCES[role]}"), path)
        meta = sequence_sidecar(
            role, protocol.sequences[role], protocol.field_strength_t, out.acquisition[role]["receiver_scale"]
        )
        write_text(bids.sidecar(path), json.dumps(meta, indent=2) + "\n")
    mask_path = bids.truth_mask_path(root, sub, ses)
    save_nifti(_nifti(out.mask, out.affine, "whole tumor incl. necrosis"), mask_path)
    reference = bids.image_path(root, sub, ses, protocol.reference_role)
    truth = out.truth | {
        "acquisition": out.acquisition,
        "protocol": json.loads(protocol.to_json()),
        "Sources": [str(reference.relative_to(root))],
    }
    write_text(bids.sidecar(mask_path), json.dumps(truth, indent=2) + "\n")
    for name, frac in out.fractions.items():
        save_nifti(
            _nifti(frac, out.affine, f"volume fraction of {name} tumor tissue"),
            bids.truth_fraction_path(root, sub, ses, name),
        )
    tissue_path = bids.truth_tissue_path(root, sub, ses)
    save_nifti(_nifti(out.tissue, out.affine, "tissue labels"), tissue_path)
    write_text(
        tissue_path.with_name(tissue_path.name.replace(".nii.gz", ".tsv")),
        "index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in enumerate(TISSUES)),
    )

    result = {"participant_id": sub, "session": ses, "week": week, "tumor_volume_mm3": truth["tumor_volume_mm3_mask"]}
    if is_endpoint:
        spacing = tuple(float(v) for v in np.linalg.norm(out.affine[:3, :3], axis=0))
        result["histology"] = sample_histology(out.fractions, spacing, np.random.default_rng([rat.seed, 3]))
    return result


def check_arguments(rats_per_arm: int, weeks: Sequence[int]) -> list[int]:
    """Validate the cohort's size and weeks; return the weeks sorted and unique."""
    weeks = sorted(set(int(w) for w in weeks))
    if rats_per_arm < 1:
        raise ValueError("rats per arm must be at least 1.")
    if not weeks or weeks[0] < 0:
        raise ValueError("weeks must be one or more numbers >= 0 (0 = baseline, before treatment).")
    return weeks


def simulate_study(
    out: str | os.PathLike,
    rats_per_arm: int = 8,
    weeks: Sequence[int] = (0, 1, 2, 3),
    seed: int = 0,
    protocol: Protocol | str = STUDY_PROTOCOL,
    motion_mm: float | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    plane: str | None = None,
) -> Path:
    """Simulate `rats_per_arm` rats in each of the four arms, scanned at `weeks` with `protocol` (a
    Protocol, or "varied": a lab drawn per rat); return the root. `motion_mm`, if given, replaces the
    largest shift of every sequence against the reference. `plane`, with "varied" only, makes every lab
    scan in that plane (`labs.draw_lab`).

    The same arguments give byte-identical files, whatever the number of workers.
    """
    root = Path(out)
    weeks = check_arguments(rats_per_arm, weeks)
    if plane is not None and (protocol != VARIED or plane not in PLANES):
        raise ValueError(f"a plane ({', '.join(PLANES)}) is given to the varied world only, not {plane!r}.")
    if motion_mm is not None and protocol != VARIED:
        protocol = replace(
            protocol,
            sequences={
                r: replace(s, motion_mm=0.0 if r == protocol.reference_role else motion_mm)
                for r, s in protocol.sequences.items()
            },
        )
    root.mkdir(parents=True, exist_ok=True)
    rats = draw_cohort(seed, rats_per_arm)
    labs = [protocol_of_rat(protocol, seed, rat, i, plane) for i, rat in enumerate(rats)]
    tasks = [(root, rat, w, w == weeks[-1], lab) for rat, lab in zip(rats, labs) for w in weeks]
    workers = workers or min(len(tasks), os.cpu_count() or 1)
    results = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(_render_and_write, tasks):
                results.append(r)
                report(progress, len(results), len(tasks), "scan")
    else:
        for task in tasks:
            results.append(_render_and_write(task))
            report(progress, len(results), len(tasks), "scan")
    _write_study_files(root, rats, labs, weeks, results, seed, protocol, rats_per_arm, plane)
    return root


def _write_study_files(
    root: Path, rats: list[Rat], labs, weeks, results, seed, protocol, rats_per_arm, plane=None
) -> None:
    histology = {r["participant_id"]: r["histology"] for r in results if "histology" in r}
    participants = [
        {
            "participant_id": f"sub-{rat.participant_id}",
            "arm": rat.arm,
            "strain": rat.strain,
            "species": "Rattus norvegicus",
            "histology_viability": f"{histology[rat.participant_id]['viability']:.4f}",
            "histology_apoptosis": f"{histology[rat.participant_id]['apoptosis']:.4f}",
            "histology_session": f"ses-{session_label(weeks[-1])}",
        }
        for rat in rats
    ]
    columns = [
        "participant_id",
        "arm",
        "strain",
        "species",
        "histology_viability",
        "histology_apoptosis",
        "histology_session",
    ]
    write_text(root / "participants.tsv", bids.tsv_text(participants, columns))
    write_text(root / "participants.json", json.dumps(PARTICIPANTS_JSON, indent=2) + "\n")
    for rat in rats:
        rows = [
            {"session_id": f"ses-{session_label(w)}", "week": w, "days_after_implantation": DAYS_BASELINE + 7 * w}
            for w in weeks
        ]
        write_text(
            bids.sessions_tsv(root, rat.participant_id),
            bids.tsv_text(rows, ["session_id", "week", "days_after_implantation"]),
        )
    description = {
        "Name": "napari-hcc simulated preclinical HCC cohort (rats; Control, Sorafenib, NK, Combination)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0",
        "GeneratedBy": [{"Name": "napari-hcc simulate", "Version": SIMULATOR_VERSION}],
        "HowToAcknowledge": "Simulated data; see docs/simulator.md of napari-hcc for the model and its sources.",
    }
    write_text(root / "dataset_description.json", json.dumps(description, indent=2) + "\n")
    truth_description = description | {"Name": "Ground truth of the simulation", "DatasetType": "derivative"}
    write_text(
        root / "derivatives" / bids.TRUTH_PIPELINE / "dataset_description.json",
        json.dumps(truth_description, indent=2) + "\n",
    )
    params = {
        "simulator_version": SIMULATOR_VERSION,
        "seed": seed,
        "rats_per_arm": rats_per_arm,
        "arms": list(ARMS),
        "weeks": list(weeks),
        "protocol": protocol if protocol == VARIED else json.loads(protocol.to_json()),
        **({"plane": plane} if plane else {}),
        "rats": [asdict(r) | {"protocol": json.loads(lab.to_json())} for r, lab in zip(rats, labs)],
        "mri": physics.describe(),
    }
    write_text(root / "code" / "simulation.json", json.dumps(params, indent=2) + "\n")
    write_text(root / "README", README_TEXT)


PARTICIPANTS_JSON = {
    "arm": {
        "Description": "Treatment arm, started right after the baseline session (ses-wk0)",
        "Levels": {
            "Control": "no treatment",
            "Sorafenib": "systemic sorafenib",
            "NK": "NK-cell immunotherapy through the hepatic artery",
            "Combination": "sorafenib and NK cells",
        },
    },
    "strain": {"Description": "Rat strain (random effect on growth and tumor relaxation)"},
    "histology_viability": {"Description": "H&E viable tumor fraction at the endpoint", "Units": "fraction"},
    "histology_apoptosis": {
        "Description": "TUNEL apoptotic index at the endpoint (apoptotic among cellular tumor)",
        "Units": "fraction",
    },
    "histology_session": {"Description": "Session after which tissue was harvested"},
}

README_TEXT = """Simulated preclinical cohort written by `napari-hcc simulate`.

Rats with an orthotopic HCC in the left liver lobe, scanned weekly with T1w, T2w and
contrast-enhanced T1w MRI (7 T model). Raw images are in sub-*/ses-*/anat; the ground truth the
images were rendered from (whole-tumor masks, tissue-composition fractions, tissue labels) is in
derivatives/truth. code/simulation.json holds every parameter. See docs/simulator.md of napari-hcc.
"""
