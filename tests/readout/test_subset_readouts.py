"""Readouts per sequence subset: each reads only the features its sequences give, travels in the model's
file, and reads the response only where cross-validation says its sequences carry the arm."""

import numpy as np
import pytest

from napari_hcc.inference.subsets import subset_readout, unread_response_note
from napari_hcc.model.checkpoint import build_network, save_model, untrained_model
from napari_hcc.model.loading import load_model
from napari_hcc.readout.build import _subset_readouts
from napari_hcc.readout.features import FEATURE_NAMES, subset_feature_names
from napari_hcc.readout.fit import FeatureRow, fit_readout
from napari_hcc.vocabulary import ARMS

CE_COLUMNS = ("ce_mean", "ce_std", "ce_p10", "ce_p25")  # the arm shows in the contrast uptake only


def _rows(n_rats: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_rats):
        k = i % 4
        for week in (1, 2, 3):
            f = rng.normal(size=len(FEATURE_NAMES))
            f[FEATURE_NAMES.index(CE_COLUMNS[k])] += 6.0
            histology = week == 3
            rows.append(FeatureRow(f"r{i}", week, ARMS[k], 0.5 if histology else None, 0.04 if histology else None, f))
    return rows


def test_subset_features_leave_out_the_maps_a_subset_cannot_give():
    assert subset_feature_names("T1w+T2w+CE") == list(FEATURE_NAMES)
    no_ce = subset_feature_names("T1w+T2w")
    assert "t1_mean" in no_ce and "t2_shell5" in no_ce and "log_volume_mm3" in no_ce
    assert not any(n.startswith(("ce_", "enhancement_")) for n in no_ce)
    assert {n.split("_")[0] for n in subset_feature_names("T2w+CE")} == {"t2", "ce", "log"}


def test_a_subset_reads_the_response_only_where_its_sequences_carry_the_arm(tmp_path):
    rows = _rows()
    full = fit_readout(rows, ARMS)
    subsets = _subset_readouts(rows, ARMS)
    assert set(subsets) == {"T1w+T2w", "T2w+CE", "T2w", "T1w"}
    assert subsets["T2w+CE"].info["reads_response"] and subsets["T2w+CE"].features == subset_feature_names("T2w+CE")
    assert not subsets["T1w+T2w"].info["reads_response"] and not subsets["T2w"].info["reads_response"]
    assert subsets["T1w+T2w"].info["cross_validation"]["arm_macro_auroc_pooled"] < 0.7

    base = untrained_model()
    base.card.input = {**base.card.input, "missing_sequences": "zero"}
    save_model(build_network(base), base.card, tmp_path / "m", readout=full, subset_readouts=subsets)
    model = load_model(tmp_path / "m")
    assert set(model.subset_readouts) == set(subsets) and "subsets" in model.card.readout
    f = rows[4].features
    np.testing.assert_allclose(
        model.subset_readouts["T2w+CE"].arm_probabilities(f), subsets["T2w+CE"].arm_probabilities(f), atol=1e-5
    )
    assert subset_readout(model, {"T1w": "T2w"}) is model.subset_readouts["T2w+CE"]
    assert subset_readout(model, {"CE": "T1w"}) is None  # no contrast agent: the arm cannot be read here
    note = unread_response_note(model, {"CE": "T1w"})
    assert note.startswith("the response (arm, viability, apoptosis) is not read from T1w+T2w")
    assert "cross-validated macro AUROC" in note and "below 0.80" in note


@pytest.mark.parametrize("reads", [False])
def test_a_model_without_sequence_dropout_never_uses_a_subset_readout(reads, tmp_path):
    rows = _rows(40)
    base = untrained_model()  # an older card: stand-ins, no subset reading
    save_model(build_network(base), base.card, tmp_path / "m", readout=fit_readout(rows, ARMS),
               subset_readouts=_subset_readouts(rows, ARMS))  # fmt: skip
    assert subset_readout(load_model(tmp_path / "m"), {"T1w": "T2w"}) is None
