"""The response readout: tumor features mean the same on any gain and grid, the readout is fitted by
the CLI into a new model, travels inside its safetensors file, drives predict, and a study it was fitted
on cannot be used to evaluate it."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.errors import InputError
from napari_hcc.evaluation.protocols import evaluate_model
from napari_hcc.inference.engine import Engine
from napari_hcc.io.scan import Scan
from napari_hcc.io.study import find_scans
from napari_hcc.model.loading import load_model
from napari_hcc.readout.features import FEATURE_NAMES, tumor_features
from napari_hcc.readout.fit import feature_rows, fit_readout
from napari_hcc.training.config import TrainConfig
from napari_hcc.training.trainer import train
from napari_hcc.vocabulary import ARMS


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
    assert (
        f["t1_mean"] == pytest.approx(0.5) and f["t2_p50"] == pytest.approx(3.0) and f["ce_p90"] == pytest.approx(1.5)
    )
    assert f["enhancement_mean"] == pytest.approx(3.0)
    assert f["t1_std"] == pytest.approx(0.0)
    assert np.exp(f["log_volume_mm3"]) - 1 == pytest.approx(tumor.sum() * 0.3 * 0.3 * 1.2)


def test_equal_volume_shells_tell_a_bright_rim_from_a_bright_core():
    from scipy import ndimage

    scan, tumor = _phantom()
    f = dict(zip(FEATURE_NAMES, tumor_features(scan, tumor)))
    assert [f[f"t2_shell{i}"] for i in range(1, 6)] == pytest.approx([3.0] * 5)  # a uniform tumor: one value
    # Oedema-like rim: the outer third of the tumor's voxels twice as bright on T2w.
    depth = ndimage.distance_transform_edt(tumor, sampling=(0.3, 0.3, 1.2))
    rim = (tumor > 0) & (depth <= np.quantile(depth[tumor > 0], 0.33))
    scan.t2w[rim] *= 2.0
    f = dict(zip(FEATURE_NAMES, tumor_features(scan, tumor)))
    assert f["t2_shell1"] == pytest.approx(6.0) and f["t2_shell5"] == pytest.approx(3.0)
    assert f["t2_shell1"] > f["t2_shell3"] > f["t2_shell5"] or f["t2_shell2"] > f["t2_shell4"]
    assert f["t1_shell1"] == pytest.approx(f["t1_shell5"])  # only T2w changed


def test_features_do_not_change_with_scanner_gain_and_are_none_without_a_tumor():
    scan, tumor = _phantom()
    bright, _ = _phantom(gain=7.0)
    np.testing.assert_allclose(tumor_features(scan, tumor), tumor_features(bright, tumor), rtol=1e-9)
    assert tumor_features(scan, np.zeros_like(tumor)) is None


@pytest.fixture(scope="module")
def network(tiny_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "net"
    train(TrainConfig([tiny_study], out, epochs=1, batch_size=8, crop=64, version="0.0.1"))
    return out


@pytest.fixture(scope="module")
def with_readout(network, tiny_study, tmp_path_factory):
    """`fit-readout` on the network, once for the module: (the new model's folder, what it printed, the source
    network's bytes before)."""
    before = (network / "model.safetensors").read_bytes()
    out = tmp_path_factory.mktemp("readout") / "with-readout"
    args = ["fit-readout", "--model", str(network), "--study", str(tiny_study), "--out", str(out), "--version", "0.0.2"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main([*args, "--quiet"]) == 0
    return out, printed.getvalue(), before


def test_fit_readout_cli_makes_a_new_model_that_predicts_with_the_readout(network, with_readout, tiny_study, capsys):
    out, printed, before = with_readout
    assert "readout fitted on 4 rats" in printed
    assert (network / "model.safetensors").read_bytes() == before  # the source model is untouched
    model = load_model(out)
    card = json.loads((out / "model.json").read_text())
    assert card["version"] == "0.0.2" and card["readout"]["features"] == list(FEATURE_NAMES)
    assert len(card["readout"]["fitted_on"]["rats"]) == 4
    assert model.readout is not None and model.readout.arm_coef.shape == (4, len(FEATURE_NAMES))
    # The network's tensors are the source model's; the readout's numbers round-trip through the file.
    source = load_model(network)
    assert all(np.array_equal(source.state[k], model.state[k]) for k in source.state)
    # The readout is fitted on the masks it will read: the network's own, not the truth.
    source_engine = Engine(load_model(network), device="cpu")
    refit = fit_readout(feature_rows([tiny_study], engine=source_engine), ARMS)
    np.testing.assert_allclose(model.readout.arm_coef, refit.arm_coef, rtol=1e-5, atol=1e-6)

    scan = find_scans(tiny_study)[1].load()
    with_readout = Engine(model, device="cpu").predict(scan)
    network_only = Engine(source, device="cpu").predict(scan)
    assert with_readout.response.source == "readout" and network_only.response.source == "network"
    np.testing.assert_array_equal(with_readout.mask, network_only.mask)
    features = tumor_features(scan, with_readout.mask)
    if features is not None:
        assert 0 < with_readout.response.viability < 1 and 0 <= with_readout.response.apoptosis < 1
        # At week 2 the only earlier session is the baseline, which shows no treatment: the arm is this scan's own.
        np.testing.assert_allclose(with_readout.response.arm_probabilities, model.readout.arm_probabilities(features))
        baseline = source_engine.segment(find_scans(tiny_study)[0].load())  # the rat's week 0
        if scan.session == "wk2" and tumor_features(find_scans(tiny_study)[0].load(), baseline) is not None:
            assert with_readout.response.sessions == ["wk0"]
            assert "response read with the rat's earlier sessions wk0" in with_readout.notes
    assert with_readout.summary()["response_source"] == with_readout.response.source

    with pytest.raises(InputError, match="readout .* was fitted on the rats of"):
        evaluate_model(tiny_study, out, device="cpu")
    assert main(["fit-readout", "--model", str(network), "--study", str(tiny_study), "--out", str(out), "--quiet"]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_fine_tuning_keeps_the_readout(with_readout, tiny_study, tmp_path):
    source = with_readout[0]
    tuned = tmp_path / "tuned"
    train(TrainConfig([tiny_study], tuned, epochs=1, batch_size=8, crop=64, init=str(source), version="0.0.3"))
    np.testing.assert_allclose(load_model(tuned).readout.arm_coef, load_model(source).readout.arm_coef)


def test_a_readout_on_features_this_version_does_not_compute_is_refused_in_one_sentence(with_readout, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(with_readout[0], out)
    card = json.loads((out / "model.json").read_text())
    card["readout"]["features"][0] = "t1_from_a_newer_version"
    (out / "model.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="readout of .* cannot be used: .*t1_from_a_newer_version"):
        load_model(out)


def test_a_readout_needs_every_arm_and_histology(tiny_study):
    rows = [r for r in feature_rows([tiny_study]) if r.arm != "NK"]
    with pytest.raises(ValueError, match="all 4 arms"):
        fit_readout(rows, ARMS)


def _synthetic_rows(n_rats: int = 160, seed: int = 0):
    """Rats whose arm shifts features 0-3 and whose apoptosis follows feature 5 with a slope that
    differs by arm (rising under NK, falling under Sorafenib), as a mechanism-dependent readout must learn."""
    from scipy.special import expit

    from napari_hcc.readout.fit import FeatureRow

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

    rows, base, slope = _synthetic_rows(n_rats=320)  # more rats per arm than features, as in the real fitting set
    readout = fit_readout(rows, ARMS)
    assert (
        readout.bio_coef.shape == (4, 2, len(FEATURE_NAMES))
        and readout.info["cross_validation"]["apoptosis_rmse"] < 0.01
    )
    for k in range(4):
        f = np.zeros(len(FEATURE_NAMES))
        f[k], f[5] = 8.0, 1.5  # a typical scan of arm k
        assert readout.biomarkers(f, np.eye(4)[k])[1] == pytest.approx(expit(base[k] + slope[k] * 1.5), abs=0.008)
    # A mixture of arms reads the mixture of the experts.
    w = np.array([0.1, 0.2, 0.3, 0.4])
    assert readout.biomarkers(f, w)[1] == pytest.approx(
        sum(w[k] * readout.biomarkers(f, np.eye(4)[k])[1] for k in range(4))
    )
    # A feature far outside anything fitted reads like the edge of the fitted range, not an extrapolation.
    wild = f.copy()
    wild[5] = 1e6
    edge = f.copy()
    edge[5] = max(r.features[5] for r in rows)
    for k in range(4):
        assert readout.biomarkers(wild, np.eye(4)[k]) == pytest.approx(readout.biomarkers(edge, np.eye(4)[k]))
        bound = expit(base[k] + abs(slope[k]) * max(abs(r.features[5]) for r in rows))  # the most the fitting rats held
        assert 0 < readout.biomarkers(wild, np.eye(4)[k])[1] < bound + 0.02


def test_the_arm_is_read_over_the_rats_treated_sessions():
    from napari_hcc.readout.history import RatHistory

    rows, _, _ = _synthetic_rows(n_rats=40)
    readout = fit_readout(rows, ARMS)
    rng = np.random.default_rng(5)
    f, wk1, wk2, base = (rng.normal(size=len(FEATURE_NAMES)) for _ in range(4))
    p = [readout.arm_probabilities(v) for v in (f, wk1, wk2)]
    alone = readout.read(f)
    np.testing.assert_allclose(alone.arm_probabilities, p[0])
    assert alone.sessions == []
    pooled = readout.read(f, RatHistory(week=3, baseline=base, earlier=[wk1, wk2], sessions=["wk0", "wk1", "wk2"]))
    expected = np.exp(np.log(p).mean(0))
    np.testing.assert_allclose(pooled.arm_probabilities, expected / expected.sum())
    assert pooled.sessions == ["wk0", "wk1", "wk2"]
    # A baseline scan is read alone: before treatment there is nothing to pool.
    np.testing.assert_allclose(
        readout.read(base, RatHistory(week=0)).arm_probabilities, readout.arm_probabilities(base)
    )


def _composition_rows(n_rats: int = 120, seed: int = 0):
    """Rats whose arm shows in features 0-3 and whose composition truth follows features 10-13 of each
    scan. Each rat responds to its treatment with its own strength r: its tumor swells with oedema
    (feature 11) at weeks 1 and 2, which has resolved by the endpoint, and its endpoint TUNEL index rises
    with r, most steeply under NK. So the endpoint scan alone cannot show r; the rat's history can."""
    from napari_hcc.readout.fit import FeatureRow

    rng = np.random.default_rng(seed)
    base, slope = np.array([0.02, 0.04, 0.06, 0.08]), np.array([0.0, 0.005, 0.02, 0.01])
    rows = []
    for i in range(n_rats):
        k, r = i % 4, rng.normal()
        for week in (0, 1, 2, 3):
            f = rng.normal(size=len(FEATURE_NAMES))
            if week:
                f[k] += 4.0
            if week in (1, 2):
                f[11] = r + 0.3 * rng.normal()
            composition = 0.1 + 0.05 * f[10:14]
            apo = float(base[k] + slope[k] * r) if week == 3 else None
            rows.append(FeatureRow(f"r{i}", week, ARMS[k], 0.5 if week == 3 else None, apo, f, composition))
    return rows, base, slope


def test_apoptosis_is_read_from_the_composition_history_when_cross_validation_prefers_it(tmp_path):
    from napari_hcc.readout.history import RatHistory
    from napari_hcc.readout.stored import Readout

    rows, base, slope = _composition_rows()
    readout = fit_readout(rows, ARMS)
    cv = readout.info["cross_validation"]
    assert readout.info["apoptosis_route"] == "composition history"
    assert cv["apoptosis_rmse_composition_history"] < 0.5 * cv["apoptosis_rmse_scan_features"]
    assert cv["composition_r2"]["oedema"] > 0.9
    # An NK rat (arm 2) whose tumor swelled with oedema at weeks 1-2 reads a higher TUNEL index than one
    # whose did not, from the same endpoint scan.
    rng = np.random.default_rng(9)
    endpoint, wk0 = (rng.normal(size=len(FEATURE_NAMES)) for _ in range(2))
    endpoint[2] += 4.0
    readings = {}
    for r in (-1.0, 1.0):
        earlier = [rng.normal(size=len(FEATURE_NAMES)) for _ in range(2)]
        for f in earlier:
            f[2] += 4.0
            f[11] = r
        reading = readout.read(
            endpoint, RatHistory(week=3, baseline=wk0, earlier=earlier, sessions=["wk0", "wk1", "wk2"])
        )
        assert reading.arm_probabilities.argmax() == 2
        readings[r] = reading.apoptosis
    assert readings[1.0] - readings[-1.0] == pytest.approx(2 * slope[2], rel=0.3)
    assert readings[-1.0] == pytest.approx(base[2] - slope[2], abs=0.01) and readings[1.0] == pytest.approx(
        base[2] + slope[2], abs=0.01
    )
    wk1, wk2 = earlier
    # Without any earlier session (a loose file) the scan's own experts answer.
    assert readout.read(endpoint).apoptosis == pytest.approx(
        readout.biomarkers(endpoint, readout.arm_probabilities(endpoint))[1]
    )
    # The route travels inside the model file.
    back = Readout.from_arrays(readout.arrays(), readout.card_entry())
    history = RatHistory(week=3, baseline=wk0, earlier=[wk1, wk2])
    assert back.read(endpoint, history).apoptosis == pytest.approx(readout.read(endpoint, history).apoptosis, abs=1e-5)
    assert back.reads_history and back.pools_sessions


def test_without_composition_truth_apoptosis_is_read_from_the_scan():
    rows, _, _ = _composition_rows(n_rats=40)
    for r in rows:
        r.composition = None
    readout = fit_readout(rows, ARMS)
    assert readout.info["apoptosis_route"] == "scan features" and readout.comp_coef is None
    assert "composition truth" in readout.info["apoptosis_route_reason"]


def test_a_readout_saved_by_model_1_1_still_loads_and_reads(tmp_path):
    from scipy.special import expit

    from napari_hcc.readout.stored import PREFIX, Readout

    rng = np.random.default_rng(1)
    n = len(FEATURE_NAMES)
    old = Readout(
        list(FEATURE_NAMES),
        rng.normal(size=n),
        np.ones(n),
        rng.normal(size=(4, n)),
        np.zeros(4),
        rng.normal(size=(2, n + 4)) * 0.1,
        np.array([0.0, -3.0]),
    )
    tensors = old.arrays()
    assert not any(k.startswith(PREFIX + "clip") for k in tensors)  # 1.1 files had no clipping range
    back = Readout.from_arrays(tensors, old.card_entry())
    f = rng.normal(size=n)
    p = back.arm_probabilities(f)
    expected = expit(old.bio_coef @ np.concatenate([f - old.mean, p]) + old.bio_intercept)
    assert back.biomarkers(f, p) == pytest.approx(tuple(expected), rel=1e-5)
