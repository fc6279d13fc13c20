"""The training set: versioned corrections that never overwrite, provenance, concurrent saves, geometry
checks; and the mask-editing helpers."""

import json
import shutil
import threading

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.inference.postprocess import fill_holes, remove_small_islands
from napari_hcc.io import bids
from napari_hcc.review.mask_edit import interpolate_between
from napari_hcc.review.trainingset import list_corrections, save_correction


@pytest.fixture()
def study(tiny_study, tmp_path):
    root = tmp_path / "study"
    shutil.copytree(tiny_study, root)
    return root


def _masks(root):
    truth = nib.load(bids.truth_mask_path(root, "rat01", "wk2"))
    pred = np.asarray(truth.dataobj).astype(np.uint8)
    corr = pred.copy()
    corr[60:70, 60:70, 7] = 1
    return truth, pred, corr


def test_each_save_is_a_new_version_and_earlier_ones_stay(study):
    truth, pred, corr = _masks(study)
    first = save_correction(study, "rat01", "wk2", corr, pred, model_id="m@1", annotator="ann")
    before = first.mask.read_bytes()
    corr2 = corr.copy()
    corr2[10:12, 10:12, 3] = 1
    second = save_correction(study, "rat01", "wk2", corr2, pred, model_id="m@1", annotator="bob")
    assert (first.version, second.version) == (1, 2)
    assert first.mask.read_bytes() == before  # version 1 untouched
    assert first.mask.name == "sub-rat01_ses-wk2_desc-correction001_mask.nii.gz"
    assert second.prediction.name == "sub-rat01_ses-wk2_desc-prediction002_mask.nii.gz"
    saved = nib.load(second.mask)
    assert saved.shape == truth.shape and np.array_equal(saved.affine, truth.affine)
    assert np.array_equal(np.asarray(saved.dataobj), corr2)
    prov = json.loads(second.sidecar.read_text())
    assert prov["annotator"] == "bob" and prov["model"] == "m@1" and prov["previous_version"] == 1
    assert prov["voxels_added"] == int(((corr2 > 0) & (pred == 0)).sum()) and prov["voxels_removed"] == 0
    assert 0 < prov["dice_prediction_vs_correction"] < 1 and len(prov["sources"]["T1w"]["sha256"]) == 64
    assert [r.version for r in list_corrections(study, "rat01", "wk2")] == [1, 2]
    assert bids.latest_correction(study, "rat01", "wk2") == second.mask


def test_two_annotators_saving_at_once_both_keep_their_work(study):
    _, pred, corr = _masks(study)
    results, errors = [], []

    def save(name):
        try:
            results.append(save_correction(study, "rat01", "wk2", corr, pred, annotator=name))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(f"a{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(r.version for r in results) == [1, 2, 3, 4]
    annotators = {json.loads(r.sidecar.read_text())["annotator"] for r in results}
    assert annotators == {"a0", "a1", "a2", "a3"}


def test_empty_masks_need_confirmation_and_wrong_grids_are_refused(study):
    _, pred, _ = _masks(study)
    with pytest.raises(InputError, match="is empty; confirm"):
        save_correction(study, "rat01", "wk2", np.zeros_like(pred), pred)
    assert save_correction(study, "rat01", "wk2", np.zeros_like(pred), pred, allow_empty=True).version == 1
    with pytest.raises(InputError, match="the mask is 160x160x14 but the T1w grid"):
        save_correction(study, "rat01", "wk2", pred[:, :, :14], None)
    assert [r.version for r in list_corrections(study, "rat01", "wk2")] == [1]


def test_interpolation_between_two_drawn_slices():
    m = np.zeros((7, 40, 40), np.uint8)
    m[0, 10:20, 10:20] = 1  # a 10-pixel square ...
    m[6, 10:30, 10:30] = 1  # ... growing to 20 pixels
    out = interpolate_between(m, 0, 6, axis=0)
    areas = out.reshape(7, -1).sum(1)
    assert areas[0] == 100 and areas[6] == 400 and all(areas[k] < areas[k + 1] for k in range(6))
    assert out[3, 15, 15] == 1 and out[3, 35, 35] == 0
    with pytest.raises(InputError, match="one of them is empty"):
        interpolate_between(m, 0, 4)


def test_islands_and_holes():
    m = np.zeros((5, 30, 30), np.uint8)
    m[1:4, 5:15, 5:15] = 1
    m[2, 8:11, 8:11] = 0  # a hole
    m[2, 25, 25] = 1  # a one-voxel island
    cleaned = remove_small_islands(m, voxel_mm3=0.1, min_mm3=0.5)
    assert cleaned[2, 25, 25] == 0 and cleaned[1, 5, 5] == 1
    filled = fill_holes(cleaned, axis=0)
    assert filled[2, 9, 9] == 1 and filled.sum() == 300
