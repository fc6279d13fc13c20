"""Registration: the shift the simulator applied is found again, real files stay put, and the
command line and the mask sidecar say what was done."""

import json

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.io.bruker import read_bruker_study
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.registration.align import aligner, register
from napari_hcc.registration.weeks import align_week, resample_through
from napari_hcc.simulate.anatomy import LABEL
from napari_hcc.simulate.cohort import simulate_study


@pytest.fixture(scope="module")
def moved_study(tmp_path_factory):
    """One rat per arm at baseline, the T2w and CE shifted by up to 2 mm against the T1w."""
    return simulate_study(tmp_path_factory.mktemp("moved"), 1, (0,), seed=5, motion_mm=2.0, workers=2)


def test_the_applied_shift_is_recovered_within_0_1_mm(moved_study):
    worst = 0.0
    for ref in find_scans(moved_study):
        t1w = load_volume(ref.t1w)
        truth_file = next(
            (moved_study / "derivatives" / "truth" / f"sub-{ref.subject}").rglob("*_desc-tumor_mask.json")
        )
        applied = json.loads(truth_file.read_text())["motion_applied_vs_reference"]
        for role, path in (("T2w", ref.t2w), ("CE", ref.ce)):
            moving = load_volume(path)
            _, result = register(t1w.data, t1w.affine, moving.data, moving.affine, role)
            want = np.array([*applied[role]["shift_mm"], 0.0])
            assert np.abs(want).max() > 0.1 or role == "CE"  # the cohort does move
            error = np.abs(np.asarray(result.shift_mm) - want).max()
            worst = max(worst, error)
            assert error < 0.1, (ref.subject, role, result.shift_mm, want)
            assert result.accepted and result.nmi_after > result.nmi_before and result.mi_gain > 0.005
            assert result.rotation_deg < 0.5
    assert worst > 0  # a real measurement, not an identity


def test_a_phantom_that_did_not_move_stays_put(realdata):
    """Real files: the ParaVision phantom's 2-D axial T2 RARE against its 3-D T2 RARE, scanned minutes apart on
    different grids; the phantom did not move, so the registration must find (almost) nothing."""
    acqs = read_bruker_study(realdata / "bruker_paravision_phantom" / "study")
    axial_2d, three_d = acqs[3], acqs[5]
    fixed = three_d.read()
    data, result = register(fixed, three_d.affine, axial_2d.read(), axial_2d.affine, "T2w")
    if result.accepted:
        assert np.abs(result.shift_mm).max() < 0.3 and result.rotation_deg < 1.0
    else:  # nothing better than where the scanner put it: the image is left exactly as acquired
        assert "NOT applied" in result.note()
        unmoved, _ = register(fixed, three_d.affine, axial_2d.read(), axial_2d.affine, "T2w")
        np.testing.assert_array_equal(data, unmoved)


def test_check_and_predict_register(moved_study, tmp_path, capsys):
    session = next(moved_study.glob("sub-*/ses-*"))
    assert main(["check", str(session), "--register"]) == 0
    assert capsys.readouterr().out.count("to T1w rigid registration (Mattes MI, SimpleITK) found") == 2
    out = tmp_path / "pred"
    assert main(["predict", "-i", str(session), "-o", str(out), "--register", "--quiet"]) == 0
    sidecar = json.loads(next(out.rglob("*_desc-tumor_mask.json")).read_text())
    record = sidecar["SequenceAlignment"]["T2w"]
    assert record["kind"] == "rigid" and record["accepted"] and len(record["matrix_ras"]) == 4
    assert "Mattes" in record["settings"]["metric"]


def test_a_scan_loaded_with_alignment_keeps_the_t1w_grid(moved_study):
    ref = find_scans(moved_study)[0]
    plain, aligned = ref.load(), ref.load(align=aligner("rigid"))
    assert aligned.shape == plain.shape and np.array_equal(aligned.affine, plain.affine)
    np.testing.assert_array_equal(aligned.t1w, plain.t1w)  # the reference never moves
    assert set(aligned.alignment) == {"T2w", "CE"} and not plain.alignment
    assert (
        sum("registration (Mattes MI, SimpleITK) found" in n and n.endswith("; applied.") for n in aligned.notes) == 2
    )


def test_a_rats_weeks_align_for_the_weekly_view(tiny_study):
    """Between weeks the simulated rat lies rotated and shifted; aligned to week 2, week 0's liver
    overlaps week 2's liver better than as acquired (truth tissue maps, nearest neighbour)."""
    liver = LABEL["liver"]
    gained = []
    for rat in ("rat02", "rat03"):  # the smallest (0.03) and the largest (0.36) gain of the four rats
        wk0, wk2 = (
            find_scans(tiny_study / f"sub-{rat}" / "ses-wk0")[0],
            find_scans(tiny_study / f"sub-{rat}" / "ses-wk2")[0],
        )
        reference, other = wk2.load(), wk0.load()
        week = align_week(reference, other)
        assert week.t1w.shape == reference.shape and week.mask.shape == reference.shape
        tissue = {}
        for ses in ("wk0", "wk2"):
            path = next(
                (tiny_study / "derivatives" / "truth" / f"sub-{rat}" / f"ses-{ses}").rglob("*_desc-tissue_dseg.nii.gz")
            )
            tissue[ses] = np.asarray(nib.load(path).dataobj)
        matrix = week.alignment.matrix_ras if week.alignment.accepted else np.eye(4)
        moved = resample_through(tissue["wk0"], other.affine, matrix, reference.shape, reference.affine, order=0)
        as_acquired = resample_through(
            tissue["wk0"], other.affine, np.eye(4), reference.shape, reference.affine, order=0
        )

        after, before = _liver_dice(moved, tissue["wk2"], liver), _liver_dice(as_acquired, tissue["wk2"], liver)
        gained.append(after - before)
        assert after >= before - 0.005, (rat, week.alignment.note())
    assert np.mean(gained) > 0.01, gained


def _liver_dice(moved, reference, liver):
    a, b = np.rint(moved) == liver, reference == liver
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_affine_is_tried_from_the_rigid_result_and_kept_only_when_better(moved_study):
    ref = find_scans(moved_study)[1]
    t1w, t2w = load_volume(ref.t1w), load_volume(ref.t2w)
    truth_file = next((moved_study / "derivatives" / "truth" / f"sub-{ref.subject}").rglob("*_desc-tumor_mask.json"))
    want = np.array([*json.loads(truth_file.read_text())["motion_applied_vs_reference"]["T2w"]["shift_mm"], 0.0])
    _, result = register(t1w.data, t1w.affine, t2w.data, t2w.affine, "T2w", kind="affine")
    assert result.requested == "affine" and result.kind in ("rigid", "affine") and result.accepted
    assert np.abs(np.asarray(result.shift_mm) - want).max() < 0.1  # the simulator moves rigidly
    if result.kind == "rigid":
        assert "affine tried, not better" in result.note()
