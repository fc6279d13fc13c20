"""The model shipped in the package: it is the default, it is trained, and it finds the tumors of the
sample study (simulated with seed 2026; the model trained and its readout was fitted on other seeds, so it
never saw these rats)."""

import numpy as np
import pytest

from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.metrics import dice
from napari_hcc.model.catalog import default_model_folder
from napari_hcc.model.loading import default_model

pytestmark = pytest.mark.skipif(
    not (default_model_folder() / "model.safetensors").exists(), reason="no shipped model in this build"
)


def test_default_model_is_the_shipped_trained_fp16_model():
    model = default_model()
    assert model.card.trained and model.path is not None and model.path.parent == default_model_folder()
    assert model.card.weights["dtype"] == "float16"
    seeds = {sim["seed"] for sim in model.card.training["simulations"] + model.card.readout["simulations"]}
    assert seeds and 2026 not in seeds  # the sample study's seed
    assert (default_model_folder() / "model.safetensors").stat().st_size < 20 * 2**20


def test_shipped_model_segments_the_sample_study():
    engine = Engine(default_model(), device="cpu")
    scores, arms = [], []
    for ref in find_scans(sample_study()):
        scan = ref.load()
        pred = engine.predict(scan)
        scores.append(dice(pred.mask, scan.mask))
        assert pred.response.arm_probabilities.sum() == pytest.approx(1.0) and pred.response.source == "readout"
        assert not any("unlike the rats" in n for n in pred.notes)  # its own world is not flagged (liver_extent)
        if pred.week:  # after treatment: the arm can be read, beside the rat's baseline scan
            arms.append((ref.arm, pred.response.predicted_arm))
            assert pred.response.sessions == ["wk0"] and 0 < pred.response.apoptosis < 0.3
        else:
            assert pred.before_treatment and any("baseline scan" in n for n in pred.notes)
    assert np.mean(scores) > 0.85, scores
    assert len(arms) == 4 and sum(a == b for a, b in arms) >= 3, arms  # four rats it never saw, one per arm
    assert default_model().readout.info["apoptosis_route"] == "composition history"


def test_the_report_says_how_the_shipped_readout_reads(tmp_path):
    from napari_hcc.cli import main

    assert (
        main(
            [
                "evaluate",
                "--study",
                str(sample_study()),
                "--model",
                "default",
                "--out",
                str(tmp_path),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    report = (tmp_path / "report.md").read_text()
    assert (
        "- Response readout: tumor features of the network's mask; arm pooled over the rat's treated sessions" in report
    )
    assert "apoptosis from the tumor's estimated composition" in report
