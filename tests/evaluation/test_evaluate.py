"""Evaluation: metrics with known answers, the rat-grouped protocols end to end, and the report."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.evaluation.protocols import evaluate_model
from napari_hcc.metrics import arm_metrics, auroc, bootstrap_ci, dice, hd95_mm, iou, macro_auroc, regression_metrics
from napari_hcc.simulate.cohort import simulate_study
from napari_hcc.simulate.protocol import STUDY_PROTOCOL


def test_overlap_and_surface_distance_have_known_values():
    a = np.zeros((20, 20, 10), bool)
    b = np.zeros_like(a)
    a[5:10, 5:10, 2:6] = True
    b[5:10, 6:11, 2:6] = True  # shifted by one voxel along axis 1
    assert dice(a, b) == pytest.approx(2 * 80 / 200) and iou(a, b) == pytest.approx(80 / 120)
    assert dice(a, a) == 1.0 and dice(a * 0, a * 0) == 1.0
    affine = np.diag([0.5, 0.25, 2.0, 1.0])
    assert hd95_mm(a, b, affine) == pytest.approx(0.25)  # one voxel of 0.25 mm along axis 1
    assert np.isnan(hd95_mm(a, np.zeros_like(a), affine))


def test_arm_metrics_perfect_and_chance():
    y = np.array([0, 1, 2, 3] * 5)
    perfect = np.eye(4)[y] * 0.9 + 0.025
    m = arm_metrics(y, perfect, ["Control", "Sorafenib", "NK", "Combination"])
    assert m["macro_auroc"] == 1.0 and m["accuracy"] == 1.0 and np.trace(np.array(m["confusion"])) == 20
    assert all(v["sensitivity"] == 1.0 and v["specificity"] == 1.0 for v in m["per_arm"].values())
    flat = np.full((20, 4), 0.25)
    assert arm_metrics(y, flat, ["a", "b", "c", "d"])["macro_auroc"] == 0.5


def test_rank_auroc_is_scikit_learns_with_ties_and_a_missing_class():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])  # class 3 absent: left out of the macro mean
    proba = rng.integers(0, 3, (10, 4)) / 2  # coarse scores: many ties
    for k in range(3):
        assert auroc(y == k, proba[:, k]) == pytest.approx(roc_auc_score(y == k, proba[:, k]))
    assert np.isnan(auroc(y == 3, proba[:, 3]))
    expected = np.mean([roc_auc_score(y == k, proba[:, k]) for k in range(3)])
    assert macro_auroc(y, proba) == pytest.approx(expected) == arm_metrics(y, proba, "abcd")["macro_auroc"]


def test_regression_and_bootstrap():
    truth = np.linspace(0.2, 0.9, 12)
    r = regression_metrics(truth + 0.05, truth)
    assert r["rmse"] == pytest.approx(0.05) and r["spearman"] == pytest.approx(1.0)
    groups = [f"rat{i // 2}" for i in range(12)]
    lo, hi = bootstrap_ci(groups, lambda idx: float(truth[idx].mean()), n=300)
    assert lo < truth.mean() < hi


@pytest.fixture(scope="module")
def cv_study(tmp_path_factory):
    """tiny_study's rats and weeks on 8 slices of 2 mm instead of 15 of 1.2 mm: the CV run below trains,
    fits and scores every scan several times, and its checks are about the protocol, not the grid."""
    protocol = STUDY_PROTOCOL.with_sequences(slices=8, slice_mm=2.0)
    return simulate_study(tmp_path_factory.mktemp("cv_study"), 1, (0, 2), seed=11, protocol=protocol, workers=2)


@pytest.fixture(scope="module")
def cv_report(cv_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    notes = out.parent / "notes.md"
    notes.write_text("## Reading these numbers\n\nOne epoch on four rats: a test of the pipeline.\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_hcc",
            "evaluate",
            "--study",
            str(cv_study),
            "--out",
            str(out),
            "--cv",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--crop",
            "64",
            "--leaky",
            "--bootstrap",
            "100",
            "--quiet",
            "--notes",
            str(notes),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return out, r


def test_cross_validation_report_end_to_end(cv_report):
    out, r = cv_report
    assert r.returncode == 0, r.stderr[-2000:]
    assert "report:" in r.stdout and "mean Dice:" in r.stdout
    for name in (
        "report.md",
        "per_scan.csv",
        "metrics.json",
        "roc.png",
        "calibration.png",
        "dice.png",
        "histology.png",
    ):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "per_scan.csv").read_text().splitlines()
    assert len(rows) == 1 + 8  # every scan scored once, by the fold model that did not train on its rat
    metrics = json.loads((out / "metrics.json").read_text())
    folds = metrics["info"]["folds"]
    assert sorted(r for f in folds for r in f) == sorted({row.split(",")[3] for row in rows[1:]})
    assert len(folds) == 2 and all(len(f) == 2 for f in folds)
    assert (metrics["info"]["batch_size"], metrics["info"]["crop"]) == (8, 64)
    for i, fold in enumerate(folds):
        card = json.loads((out / "cv" / f"fold{i}" / "model.json").read_text())
        assert set(card["training"]["held_out_rats"]) == set(fold)
        assert set(fold).isdisjoint(card["training"]["train_rats"] + card["training"]["val_rats"])
    s = metrics["summary"]
    assert 0 <= s["segmentation"]["dice_mean"] <= 1 and s["arms"]["n"] == 4
    assert "size_baseline" in s and "histology" in s and len(s["targets"]) == 6
    # The measurement floor: each rat's exact tumor composition (the simulator's truth maps) against its histology.
    with open(out / "per_scan.csv", newline="") as fh:
        endpoint = [r for r in csv.DictReader(fh) if r["apoptosis_histology"]]
    assert len(endpoint) == 4
    for name in ("viability", "apoptosis"):
        exact = np.array([float(r[f"{name}_composition"]) for r in endpoint])
        measured = np.array([float(r[f"{name}_histology"]) for r in endpoint])
        assert ((exact > 0) & (exact < 1)).all()
        assert s["histology"][name]["floor_rmse"] == pytest.approx(np.sqrt(((exact - measured) ** 2).mean()), rel=1e-4)
        assert s["histology"][name]["arm_mean_rmse"] == pytest.approx(0.0, abs=1e-12)  # one rat per arm: its own value
    text = (out / "report.md").read_text()
    assert "| biomarker | RMSE | R² | Spearman | rats | arm alone | floor |" in text
    assert "One epoch on four rats: a test of the pipeline." in text
    # --leaky: the paper's slice-level folds, in a table of their own that says what they overstate
    leaky = metrics["leaky"]
    assert leaky["tumor_slices"] > 0 and 0 <= leaky["dice_mean"] <= 1
    assert "## The paper's protocol (LEAKY, for comparison only)" in text and "overstate" in text
    assert (
        "rat-grouped 2-fold cross-validation" in text
        and "LEAKY" in text
        and "batches of 8 windows of 64 pixels" in text
        and "Size criterion" in text
        and "![ROC" in text
    )


def test_truth_composition_is_the_share_that_histology_estimates(tmp_path):
    import nibabel as nib

    from napari_hcc.evaluation.histology_floor import truth_composition
    from napari_hcc.io import bids

    assert truth_composition(tmp_path, "rat01", "wk3") is None  # not a simulated study: no floor
    shape = (4, 4, 2)
    values = {"viable": 0.5, "necrosis": 0.3, "apoptosis": 0.1, "edema": 0.1}
    for component, v in values.items():
        path = bids.truth_fraction_path(tmp_path, "rat01", "wk3", component)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = np.zeros(shape, np.float32)
        data[1:3, 1:3] = v  # 8 tumor voxels
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    viable, apoptotic = truth_composition(tmp_path, "rat01", "wk3")
    assert viable == pytest.approx(0.5) and apoptotic == pytest.approx(0.1 / 0.6)  # TUNEL: apoptotic among cells


def test_a_model_is_not_scored_on_rats_it_trained_on(cv_report, cv_study, tmp_path):
    out, r = cv_report  # its fold models: trained here already, so this test trains none of its own
    assert r.returncode == 0, r.stderr[-2000:]
    leaky = out / "leaky" / "fold0"  # the paper's protocol learned from slices of every rat: none is held out
    with pytest.raises(InputError, match="was trained on 4 rats of"):
        evaluate_model(cv_study, leaky, device="cpu")
    fold = out / "cv" / "fold0"
    held = set(json.loads((fold / "model.json").read_text())["training"]["held_out_rats"])
    results, extra = evaluate_model(cv_study, fold, device="cpu")
    assert len(held) == 2 and {r.rat for r in results} == held
    # a copy of the study elsewhere (or the same seed simulated again) holds the same rats
    copy = tmp_path / "copy"
    shutil.copytree(cv_study, copy)
    with pytest.raises(InputError, match="trained on the simulated cohort of seed 11"):
        evaluate_model(copy, leaky, device="cpu")


def test_evaluate_needs_model_or_cv(tiny_study, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "napari_hcc", "evaluate", "--study", str(tiny_study), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "give either --model MODEL" in r.stderr and r.stderr.count("\n") == 1


def test_histology_references_use_the_rats_the_model_scored():
    from napari_hcc.evaluation.scoring import ScanResult, summarize

    def rat(i, arm, predicted, measured, exact):
        return ScanResult(
            0,
            f"rat{i}",
            "wk3",
            f"s/rat{i}",
            3,
            arm,
            0.9,
            0.8,
            1.0,
            100.0,
            100.0,
            5.0,
            5.0,
            *np.eye(4)[["Control", "Sorafenib", "NK", "Combination"].index(arm)],
            0.5,
            predicted,
            0.5,
            measured,
            0.1,
            0.5,
            exact,
        )

    results = [
        rat(0, "NK", 0.06, 0.05, 0.055),
        rat(1, "NK", 0.07, 0.07, 0.065),
        rat(2, "NK", float("nan"), 0.20, 0.02),
        rat(3, "Control", 0.02, 0.02, 0.021),
        rat(4, "Control", 0.03, 0.02, 0.019),
    ]
    h = summarize(results, {}, bootstrap=20)["histology"]["apoptosis"]
    assert h["n"] == 4  # rat2's tumor was not found: no estimate
    # The references leave rat2 out too: its 0.20 would otherwise dominate both.
    assert h["floor_rmse"] == pytest.approx(np.sqrt(np.mean(np.square([0.005, 0.005, 0.001, 0.001]))))
    assert h["arm_mean_rmse"] == pytest.approx(np.sqrt(np.mean(np.square([0.01, 0.01, 0.0, 0.0]))))


def test_a_missed_histology_target_says_which_reference_is_beyond_it():
    from napari_hcc.evaluation.report import _met
    from napari_hcc.evaluation.scoring import _targets

    summary = {
        "segmentation": {"dice_mean": 0.93},
        "histology": {
            "viability": {"rmse": 0.1084, "arm_mean_rmse": 0.1078, "floor_rmse": 0.085},
            "apoptosis": {"rmse": 0.0183, "arm_mean_rmse": 0.0126, "floor_rmse": 0.0145},
        },
    }
    rows = {t["metric"]: t for t in _targets(summary)}
    assert rows["mean Dice"]["met"] and _met(rows["mean Dice"]) == "yes"
    assert rows["viability RMSE"]["target"] == "<= 0.107" and not rows["viability RMSE"]["met"]
    assert _met(rows["viability RMSE"]) == "**no**; knowing each rat's arm and nothing else scores 0.1078"
    assert _met(rows["apoptosis RMSE"]) == "**no**; out of reach: the exact tumor composition itself scores 0.0145"


def test_scans_whose_arm_was_not_read_are_left_out_of_the_arm_metrics_and_counted():
    """A varied study has sessions without CE: their arm is not read (NaN), and the summary says so."""
    from napari_hcc.evaluation.scoring import ScanResult, summarize
    from napari_hcc.vocabulary import ARMS

    def scan(rat, arm, week, proba):
        return ScanResult(0, rat, f"wk{week}", rat, week, arm, 0.9, 0.8, 1.0, 100.0, 100.0, 5.0, 5.0, *proba,
                          0.5, 0.05, None, None, 0.1)  # fmt: skip

    results = []
    for i, arm in enumerate(ARMS * 2):
        onehot = [0.7 if a == arm else 0.1 for a in ARMS]
        results += [scan(f"rat{i}", arm, 0, onehot), scan(f"rat{i}", arm, 2, onehot)]
    results.append(scan("rat99", "NK", 2, [float("nan")] * 4))
    summary = summarize(results, {}, bootstrap=20)
    assert summary["arms_not_read"] == 1 and summary["arms"]["n"] == 8
    assert summary["arms"]["macro_auroc"] == 1.0


def test_evaluate_reports_dice_per_sequence_subset_and_per_acquisition(tiny_study, tmp_path):
    """--subsets: every smaller readable subset of each session is segmented and scored against the same
    scans read whole; sessions are grouped by how they were acquired, read from their sidecars."""
    from napari_hcc.evaluation.protocols import write_results
    from napari_hcc.evaluation.scoring import summarize

    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    for rat in ("sub-rat01", "sub-rat02"):  # two rats are enough, and each subset costs a segmentation
        shutil.rmtree(study / rat)
    for f in (study / "sub-rat03" / "ses-wk2" / "anat").glob("*ce-gd*"):  # a session without contrast agent
        f.unlink()
    results, extra = evaluate_model(study, None, device="cpu", subsets=True)
    assert sorted(r.sequences for r in results) == ["T1w+T2w"] + ["T1w+T2w+CE"] * 3
    assert {(r.plane, r.field_t, r.t1w_sequence, r.t2w_sequence) for r in results} == {("axial", 7.0, "RARE", "RARE")}
    subsets = extra["subsets"]
    assert list(subsets) == ["T1w+T2w+CE", "T1w+T2w", "T2w+CE", "T2w", "T1w"]
    assert subsets["T1w+T2w+CE"]["scans"] == 3 and subsets["T2w+CE"]["scans"] == 3
    assert subsets["T1w+T2w"]["scans"] == 4 and subsets["T2w"]["scans"] == 4
    full = np.mean([r.dice for r in results if r.sequences == "T1w+T2w+CE"])
    assert subsets["T1w+T2w+CE"]["dice"] == pytest.approx(full)
    assert all(0.0 <= v["dice"] <= 1.0 for v in subsets.values())
    summary = summarize(results, extra["size"], bootstrap=20)
    summary["segmentation"]["by_subset"] = subsets
    assert summary["segmentation"]["by_acquisition"]["sequences"]["T1w+T2w"]["scans"] == 1
    report = write_results(tmp_path / "report", results, summary, extra["info"]).read_text()
    assert "### By the sequences read" in report and "| T2w | " in report
    assert "| sequences the session has | T1w+T2w | " in report
    # one rat per arm: no arm has scans in and out of it, so no ROC curve and no empty ROC figure
    assert not (tmp_path / "report" / "roc.png").exists() and "roc.png" not in report
    header = (tmp_path / "report" / "per_scan.csv").read_text().splitlines()[0]
    assert header.endswith("sequences,plane,field_t,t1w_sequence,t2w_sequence")


def test_a_target_with_nothing_read_is_not_applicable_rather_than_missed():
    """A lab without CE reads no histology: its RMSE is NaN, and the report says n/a, not **no**."""
    from napari_hcc.evaluation.report import _met
    from napari_hcc.evaluation.scoring import _targets

    summary = {
        "segmentation": {"dice_mean": 0.61},
        "histology": {"viability": {"rmse": float("nan")}, "apoptosis": {"rmse": float("nan")}},
    }
    rows = {t["metric"]: t for t in _targets(summary)}
    assert rows["mean Dice"]["met"] is False and _met(rows["mean Dice"]) == "**no**"
    assert rows["viability RMSE"]["met"] is None
    assert _met(rows["viability RMSE"]) == "n/a (nothing read to score)"
