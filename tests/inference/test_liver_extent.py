"""A scan unlike the world the model learned from: the anatomy head finds far more liver than any training
rat had. The output says so and reads no response; the healthy real rat of ../shared/realdata is such a scan."""

import numpy as np
import pytest

from napari_hcc.inference.engine import Engine
from napari_hcc.inference.liver_extent import UNLIKE_FACTOR, UNLIKE_WORLD, liver_cm3, unlike_world_note
from napari_hcc.io.study import find_scans
from napari_hcc.model.loading import load_model


def test_only_a_liver_far_beyond_the_largest_in_training_is_flagged():
    liver = np.zeros((10, 100, 100), np.float32)
    liver[:, :50] = 0.8  # 50,000 voxels of 0.2 x 0.2 x 1 mm = 2 cm^3
    assert liver_cm3(liver, np.diag([0.2, 0.2, 1.0, 1.0])) == pytest.approx(2.0)
    assert unlike_world_note(2.0 * 39.0, 39.0) is None  # twice the largest: a big rat, still read
    note = unlike_world_note(128.0, 39.0)
    assert "unlike the rats the model learned from" in note and "128 cm^3" in note and "39 cm^3" in note
    assert "response is not read" in note
    assert unlike_world_note(1e6, None) is None  # a card that records no largest liver: no judgement
    assert UNLIKE_FACTOR == 2.0


def test_the_shipped_model_records_the_largest_training_liver():
    largest = load_model(None).card.postprocess["largest_liver_cm3"]
    assert 20.0 < largest < 60.0  # a rat's liver, from the simulator's tissue maps (scripts/card_liver.py)


def test_the_healthy_real_rat_is_flagged_and_gets_no_response(realdata, tmp_path):
    from napari_hcc.importing.importer import import_study

    import_study([realdata / "ucsf_rat_abdomen_dicom"], tmp_path / "rat")
    (ref,) = find_scans(tmp_path / "rat", with_truth=False)
    prediction = Engine(load_model(None), device="cpu").predict(ref.load(), keep_probability=False)
    (note,) = [n for n in prediction.notes if "unlike the rats the model learned from" in n]
    assert "response is not read" in note
    assert np.isnan(prediction.response.arm_probabilities).all()
    assert np.isnan(prediction.response.viability) and np.isnan(prediction.response.apoptosis)
    assert prediction.response.unread_because == UNLIKE_WORLD  # what the review panel says instead of numbers
    assert prediction.response.tumor_features is None  # nothing read, nothing kept for the rat's later sessions
