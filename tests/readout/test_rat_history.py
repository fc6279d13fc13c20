"""A rat's earlier sessions, which the response readout reads beside a scan, are found in its study by
their weeks; a scan outside a study, or a baseline, has none."""

import shutil

import numpy as np
import pytest

from napari_hcc.io.study import find_scans
from napari_hcc.readout.history import earlier_sessions, history_of


def test_earlier_sessions_are_the_rats_own_sessions_before_this_one(tiny_study, tmp_path):
    wk2 = next(r for r in find_scans(tiny_study) if r.subject == "rat03" and r.session == "wk2")
    found = earlier_sessions(wk2.t1w, wk2.subject, wk2.session)
    assert [(w, ref.subject, ref.session) for w, ref in found] == [(0, "rat03", "wk0")]
    assert found[0][1].t1w.is_file() and found[0][1].mask is None  # read as predict reads it: no truth
    assert earlier_sessions(found[0][1].t1w, "rat03", "wk0") == []  # the baseline has nothing before it
    loose = tmp_path / "loose.nii.gz"
    shutil.copy(wk2.t1w, loose)
    assert earlier_sessions(loose, None, None) == []  # outside a study: read alone


def test_history_sorts_sessions_and_skips_those_without_a_tumor():
    f0, f1, f3 = np.zeros(3), np.ones(3), np.full(3, 3.0)
    h = history_of(2, [(1, "wk1", f1), (0, "wk0", f0), (3, "wk3", f3), (1, "wk1b", None)])
    assert h.treated and h.baseline is f0 and len(h.earlier) == 1 and h.earlier[0] is f1
    assert h.sessions == ["wk0", "wk1"]  # later sessions and tumor-free ones are not read
    assert not history_of(0, []).treated


def test_an_unreadable_earlier_session_is_left_out_with_a_note(tiny_study, tmp_path):
    from napari_hcc.inference.engine import Engine
    from napari_hcc.model.loading import default_model

    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    wk0 = next(r for r in find_scans(study) if r.subject == "rat03" and r.session == "wk0")
    wk0.t1w.write_bytes(b"not a NIfTI file")  # a broken download, say
    wk2 = next(r for r in find_scans(study) if r.subject == "rat03" and r.session == "wk2").load()
    engine = Engine(default_model(), device="cpu")
    pred = engine.predict(wk2)
    assert pred.response.source == "readout" and pred.response.sessions == []
    assert any(n.startswith("the rat's earlier session wk0 could not be read") for n in pred.notes)
    assert 0 <= pred.response.apoptosis <= 1 and abs(pred.response.arm_probabilities.sum() - 1) < 1e-6
    # Mended on disk, the session is read at the next prediction (the broken file was not cached).
    shutil.copy(next(r for r in find_scans(tiny_study) if r.subject == "rat03" and r.session == "wk0").t1w, wk0.t1w)
    assert engine.predict(wk2).response.sessions == ["wk0"]


def test_the_mask_can_come_before_the_earlier_sessions_are_read(tiny_study):
    from napari_hcc.inference.engine import Engine
    from napari_hcc.model.loading import default_model

    wk2 = next(r for r in find_scans(tiny_study) if r.subject == "rat03" and r.session == "wk2").load()
    engine = Engine(default_model(), device="cpu")
    steps = engine.steps(wk2, read_history=False)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            first = done.value
            break
    assert first.response.pending and first.response.sessions == [] and first.mask.any()
    complete = engine.complete_response(first, wk2)
    full = Engine(default_model(), device="cpu").predict(wk2)  # the usual one-call reading, on a fresh engine
    assert not complete.response.pending and complete.response.sessions == full.response.sessions == ["wk0"]
    np.testing.assert_allclose(complete.response.arm_probabilities, full.response.arm_probabilities, atol=1e-9)
    assert complete.response.apoptosis == pytest.approx(
        full.response.apoptosis
    ) and complete.response.viability == pytest.approx(full.response.viability)
    np.testing.assert_array_equal(complete.mask, first.mask)
    assert engine.complete_response(complete, wk2) is complete  # nothing left to read
