"""The response read again from a reviewer's mask (`inference/reread.py`): the same readout and history,
the edited mask's features; the model's own mask gives back the model's own reading."""

import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.reread import reread_response
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.loading import load_model


@pytest.fixture(scope="module")
def follow_up():
    engine = Engine(load_model(None), device="cpu")
    ref = next(r for r in find_scans(sample_study()) if (r.subject, r.session) == ("rat02", "wk2"))
    scan = ref.load()
    return engine, scan, engine.predict(scan, keep_probability=False)


def test_the_models_own_mask_reads_as_the_model_did_and_a_corrected_one_reads_its_own(follow_up):
    engine, scan, prediction = follow_up
    assert prediction.response.source == "readout" and prediction.response.sessions == ["wk0"]
    same = reread_response(engine, prediction, scan, prediction.mask)
    np.testing.assert_allclose(same.response.arm_probabilities, prediction.response.arm_probabilities, atol=1e-9)
    assert same.response.viability == pytest.approx(prediction.response.viability, abs=1e-9)
    assert same.response.mask_source == "edited" and same.response.sessions == ["wk0"]
    assert any("response read again from the edited mask" in n for n in same.notes)
    corrected = prediction.mask.copy()
    corrected[scan.mask > 0] = 1  # the reviewer adds what the model missed of the outline
    corrected[scan.mask == 0] = 0  # and erases what lies outside it
    read = reread_response(engine, prediction, scan, corrected)
    twice = reread_response(engine, read, scan, corrected)  # read again: the notes say each thing once
    assert sum("read again" in n for n in twice.notes) == 1 and sum("earlier sessions" in n for n in twice.notes) == 1
    np.testing.assert_allclose(twice.response.arm_probabilities, read.response.arm_probabilities, atol=1e-12)
    assert abs(read.response.arm_probabilities.sum() - 1) < 1e-6
    assert not np.allclose(read.response.arm_probabilities, prediction.response.arm_probabilities, atol=1e-4)
    # the model's mask and its measurements stay what a saved correction is compared with
    assert np.array_equal(read.mask, prediction.mask) and read.tumor_volume_mm3 == prediction.tumor_volume_mm3


def test_nothing_to_read_again_is_said_in_one_sentence(follow_up):
    engine, scan, prediction = follow_up
    with pytest.raises(InputError, match="holds no tumor"):
        reread_response(engine, prediction, scan, np.zeros_like(prediction.mask))
    unread = type(prediction)(**{**prediction.__dict__, "response": prediction.response.unread("not read here")})
    with pytest.raises(InputError, match=r"not read from its mask \(not read here\)"):
        reread_response(engine, unread, scan, prediction.mask)
    with pytest.raises(InputError, match="not on the scan's grid"):
        reread_response(engine, prediction, scan, prediction.mask[:-1])
