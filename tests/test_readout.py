"""The response readout: tumor features mean the same on any gain and grid, the readout is fitted by
the CLI into a new model, travels inside its safetensors file, drives predict, and a study it was fitted
on cannot be used to evaluate it."""

import json

import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.core.checkpoint import load_model
from napari_hcc.core.evaluate import evaluate_model
from napari_hcc.core.inference import Engine
from napari_hcc.core.response_readout import feature_rows, fit_readout
from napari_hcc.core.simulate.biology import ARMS
from napari_hcc.core.study import InputError, Scan, find_scans
from napari_hcc.core.tumor_features import FEATURE_NAMES, tumor_features
from napari_hcc.core.training import TrainConfig, train


def _phantom(gain: float = 1.0, spacing=(0.3, 0.3, 1.2)) -> tuple[Scan, np.ndarray]:
    """Liver of 100 around a sphere of tumor: T1w 50, T2w 300, CE 150 (CE enhances 3x over T1w)."""
    shape = (64, 64, 12)
    affine = np.diag([*spacing, 1.0])
    centre = np.array(shape) / 2
    grid = np.indices(shape).transpose(1, 2, 3, 0) * np.array(spacing)
    tumor = (np.linalg.norm(grid - centre * np.array(spacing), axis=-1) < 3.0).astype(np.uint8)
    images = [np.where(tumor, value, 100.0).astype(np.float32) * gain for value in (50.0, 300.0, 150.0)]
    return Scan(*images, affine, None), tumor


def test_features_are_intensity_ratios_to_the_surrounding_liver():
    scan, tumor = _phantom()
    f = dict(zip(FEATURE_NAMES, tumor_features(scan, tumor)))
    assert f["t1_mean"] == pytest.approx(0.5) and f["t2_p50"] == pytest.approx(3.0) and f["ce_p90"] == pytest.approx(1.5)
    assert f["enhancement_mean"] == pytest.approx(3.0)
    assert f["t1_std"] == pytest.approx(0.0)
    assert np.exp(f["log_volume_mm3"]) - 1 == pytest.approx(tumor.sum() * 0.3 * 0.3 * 1.2)


def test_features_do_not_change_with_scanner_gain_and_are_none_without_a_tumor():
    scan, tumor = _phantom()
    bright, _ = _phantom(gain=7.0)
    np.testing.assert_allclose(tumor_features(scan, tumor), tumor_features(bright, tumor), rtol=1e-9)
    assert tumor_features(scan, np.zeros_like(tumor)) is None


@pytest.fixture(scope="module")
def network(tiny_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "net"
    train(TrainConfig([tiny_study], out, epochs=1, batch_size=8, quiet=True, version="0.0.1"))
    return out


def test_fit_readout_cli_makes_a_new_model_that_predicts_with_the_readout(network, tiny_study, tmp_path, capsys):
    before = (network / "model.safetensors").read_bytes()
    out = tmp_path / "with-readout"
    assert main(["fit-readout", "--model", str(network), "--study", str(tiny_study), "--out", str(out), "--version", "0.0.2", "--quiet"]) == 0
    assert "readout fitted on 4 rats" in capsys.readouterr().out
    assert (network / "model.safetensors").read_bytes() == before  # the source model is untouched
    model = load_model(out)
    card = json.loads((out / "model.json").read_text())
    assert card["version"] == "0.0.2" and card["readout"]["features"] == list(FEATURE_NAMES)
    assert len(card["readout"]["fitted_on"]["rats"]) == 4
    assert model.readout is not None and model.readout.arm_coef.shape == (4, len(FEATURE_NAMES))
    # The network's tensors are the source model's; the readout's numbers round-trip through the file.
    source = load_model(network)
    assert all(np.array_equal(source.state[k].numpy(), model.state[k].numpy()) for k in source.state)
    refit = fit_readout(feature_rows([tiny_study]), ARMS)
    np.testing.assert_allclose(model.readout.arm_coef, refit.arm_coef, rtol=1e-5, atol=1e-6)

    scan = find_scans(tiny_study)[1].load()
    with_readout = Engine(model, device="cpu").predict(scan)
    network_only = Engine(source, device="cpu").predict(scan)
    assert with_readout.response_source == "readout" and network_only.response_source == "network"
    np.testing.assert_array_equal(with_readout.mask, network_only.mask)
    features = tumor_features(scan, with_readout.mask)
    if features is not None:
        np.testing.assert_allclose(with_readout.arm_probabilities, model.readout.arm_probabilities(features))
        assert 0 < with_readout.viability < 1 and 0 < with_readout.apoptosis < 1
    assert with_readout.summary()["response_source"] == with_readout.response_source

    with pytest.raises(InputError, match="readout .* was fitted on the rats of"):
        evaluate_model(tiny_study, out, device="cpu")
    assert main(["fit-readout", "--model", str(network), "--study", str(tiny_study), "--out", str(out), "--quiet"]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_fine_tuning_keeps_the_readout(network, tiny_study, tmp_path):
    with_readout = tmp_path / "r"
    assert main(["fit-readout", "--model", str(network), "--study", str(tiny_study), "--out", str(with_readout), "--quiet"]) == 0
    tuned = tmp_path / "tuned"
    train(TrainConfig([tiny_study], tuned, epochs=1, batch_size=8, quiet=True, init=str(with_readout), version="0.0.3"))
    np.testing.assert_allclose(load_model(tuned).readout.arm_coef, load_model(with_readout).readout.arm_coef)


def test_a_readout_needs_every_arm_and_histology(tiny_study):
    rows = [r for r in feature_rows([tiny_study]) if r.arm != "NK"]
    with pytest.raises(ValueError, match="all 4 arms"):
        fit_readout(rows, ARMS)


def _synthetic_rows(n_rats: int = 160, seed: int = 0):
    """Rats whose arm shifts features 0-3 and whose apoptosis follows feature 5 with a slope that
    differs by arm (rising under NK, falling under Sorafenib), as a mechanism-dependent readout must learn."""
    from napari_hcc.core.response_readout import FeatureRow
    from scipy.special import expit

    rng = np.random.default_rng(seed)
    base, slope = np.array([-4.0, -3.2, -2.6, -2.3]), np.array([0.0, -0.4, 0.5, 0.2])
    rows = []
    for i in range(n_rats):
        k = i % 4
        for week in (1, 2, 3):
            f = rng.normal(size=len(FEATURE_NAMES))
            f[k] += 8.0
            apo = float(expit(base[k] + slope[k] * f[5])) if week == 3 else None
            rows.append(FeatureRow(f"r{i}", week, ARMS[k], 0.5 if week == 3 else None, apo, f))
    return rows, base, slope


def test_histology_is_read_by_one_expert_per_arm_and_bounded_outside_the_fitting_range():
    from scipy.special import expit

    rows, base, slope = _synthetic_rows()
    readout = fit_readout(rows, ARMS)
    assert readout.bio_coef.shape == (4, 2, len(FEATURE_NAMES)) and readout.info["cross_validation"]["apoptosis_rmse"] < 0.01
    for k in range(4):
        f = np.zeros(len(FEATURE_NAMES))
        f[k], f[5] = 8.0, 1.5  # a typical scan of arm k
        assert readout.biomarkers(f, np.eye(4)[k])[1] == pytest.approx(expit(base[k] + slope[k] * 1.5), abs=0.008)
    # A mixture of arms reads the mixture of the experts.
    w = np.array([0.1, 0.2, 0.3, 0.4])
    assert readout.biomarkers(f, w)[1] == pytest.approx(sum(w[k] * readout.biomarkers(f, np.eye(4)[k])[1] for k in range(4)))
    # A feature far outside anything fitted reads like the edge of the fitted range, not an extrapolation.
    wild = f.copy()
    wild[5] = 1e6
    edge = f.copy()
    edge[5] = max(r.features[5] for r in rows)
    for k in range(4):
        assert readout.biomarkers(wild, np.eye(4)[k]) == pytest.approx(readout.biomarkers(edge, np.eye(4)[k]))
        assert 0 < readout.biomarkers(wild, np.eye(4)[k])[1] < 0.2


def test_a_readout_saved_by_model_1_1_still_loads_and_reads(tmp_path):
    from scipy.special import expit

    from napari_hcc.core.response_readout import PREFIX, Readout

    rng = np.random.default_rng(1)
    n = len(FEATURE_NAMES)
    old = Readout(list(FEATURE_NAMES), rng.normal(size=n), np.ones(n), rng.normal(size=(4, n)), np.zeros(4),
                  rng.normal(size=(2, n + 4)) * 0.1, np.array([0.0, -3.0]))
    tensors = old.tensors()
    assert not any(k.startswith(PREFIX + "clip") for k in tensors)  # 1.1 files had no clipping range
    back = Readout.from_tensors(tensors, old.card_entry())
    f = rng.normal(size=n)
    p = back.arm_probabilities(f)
    expected = expit(old.bio_coef @ np.concatenate([f - old.mean, p]) + old.bio_intercept)
    assert back.biomarkers(f, p) == pytest.approx(tuple(expected), rel=1e-5)
