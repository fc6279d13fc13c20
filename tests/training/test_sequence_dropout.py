"""Sequence dropout, crops and the zero channel: one network is taught to read any subset with a T1w or
a T2w, and inference presents a missing sequence exactly as training did."""

import numpy as np
import pytest

from napari_hcc.inference.slices import model_slices, reads_subsets
from napari_hcc.io.study import bids_session
from napari_hcc.model.card import ModelCard
from napari_hcc.training.dataset import build_dataset
from napari_hcc.training.sequence_dropout import crop, crop_windows, kept_sequences
from napari_hcc.vocabulary import READABLE_SUBSETS, SEQUENCE_ROLES, subset_name


def test_dropout_draws_every_readable_subset_and_never_a_missing_sequence():
    rng = np.random.default_rng(0)
    full = np.ones((4000, 3), bool)
    keep = kept_sequences(full, rng, 0.6)
    seen = {subset_name(r for r, on in zip(SEQUENCE_ROLES, row, strict=True) if on) for row in keep}
    assert seen == {subset_name(s) for s in READABLE_SUBSETS}
    assert 0.35 < keep.all(1).mean() < 0.45  # 1 - 0.6 kept whole
    no_ce = np.tile([True, True, False], (2000, 1))
    kept = kept_sequences(no_ce, rng, 0.9)
    assert not kept[:, 2].any() and (kept[:, 0] | kept[:, 1]).all()
    t2w_only = np.tile([False, True, False], (100, 1))
    assert (kept_sequences(t2w_only, rng, 1.0) == t2w_only).all()  # nothing smaller to draw
    assert (kept_sequences(full[:50], rng, 0.0) == full[:50]).all()


def test_crops_hold_the_tumor_and_pad_a_small_canvas():
    rng = np.random.default_rng(1)
    y = np.zeros((30, 192, 192), np.uint8)
    y[:, 150:170, 10:40] = 1
    corners = crop_windows(y, 128, rng)
    cropped = crop(y, corners, 128)
    assert cropped.shape == (30, 128, 128) and (cropped.reshape(30, -1).sum(1) == 600).all()
    assert len(set(corners)) > 1  # placed at random
    small = crop(np.ones((2, 3, 96, 160), np.float16), crop_windows(np.zeros((2, 96, 160)), 128, rng), 128)
    assert small.shape == (2, 3, 128, 128) and small[:, :, 96:].max() == 0


def test_a_missing_sequence_is_zeros_for_a_model_that_reads_subsets(tiny_study):
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    old, new = ModelCard(), ModelCard()
    new.input = {**new.input, "missing_sequences": "zero"}
    assert not reads_subsets(old) and reads_subsets(new)
    x_old, _ = model_slices(scan.channels(), scan.affine, old, {"CE": "T1w"})
    x_new, _ = model_slices(scan.channels(), scan.affine, new, {"CE": "T1w"})
    assert np.array_equal(x_old[:, :2], x_new[:, :2]) and x_old[:, 2].std() > 0.1
    assert not x_new[:, 2].any()


def test_the_dataset_keeps_sessions_without_a_sequence_and_records_which(tiny_study, tmp_path):
    import shutil

    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    anat = study / "sub-rat02" / "ses-wk2" / "anat"
    for f in anat.glob("*T1w*"):  # a T2w-only session: T1w and CE gone
        f.unlink()
    card = ModelCard()
    card.input = {**card.input, "missing_sequences": "zero"}
    ds = build_dataset([study], card)
    assert ds.subsets() == {"T1w+T2w+CE": 7, "T2w": 1}
    item = next(s for s in ds.scans if s.subject == "rat02" and s.session == "wk2")
    assert not ds.x[item.start : item.stop, [0, 2]].any() and ds.x[item.start : item.stop, 1].std() > 0.1
    assert ds.sequences_present[item.start].tolist() == [False, True, False]
    assert ds.sequences_present[ds.scans[0].start].all()
    sub = ds.subset({item.rat})
    assert sub.subsets() == {"T1w+T2w+CE": 1, "T2w": 1}


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_dropout_probability_is_checked(p):
    assert kept_sequences(np.ones((3, 3), bool), np.random.default_rng(0), p).shape == (3, 3)
