"""The adaptation curve (`evaluate --adapt`): a model fine-tuned on a lab's corrected scans, scored on the
lab's rats that gave none, in a scratch copy of the study; and the command's option checks."""

import json
import subprocess
import sys

import pytest

from napari_hcc.evaluation.adaptation_curve import adaptation_curve, mean_dice, split_lab
from napari_hcc.evaluation.protocols import evaluate_model, write_results
from napari_hcc.evaluation.scoring import summarize
from napari_hcc.model.loading import load_model


def test_the_curve_learns_from_corrected_scans_and_scores_rats_that_gave_none(tiny_study, tmp_path):
    split = split_lab(tiny_study)
    assert len(split.test_rats) == 1 and len(split.candidates) == 3  # 4 rats: a quarter are test rats
    assert all(r.subject not in split.test_rats and r.session == "wk2" for r in split.candidates)
    assert {r.subject for r in split.test} == set(split.test_rats) and len(split.test) == 2
    corrections = tiny_study / "derivatives" / "corrections"
    before = sorted(corrections.rglob("*")) if corrections.exists() else []

    # a few cheap steps instead of the product's 40 (the option to choose settings is the benchmark's)
    fast = {
        "lr": 1e-3,
        "min_steps": 2,
        "freeze_encoder": True,
        "epochs": 1,
        "crop": 64,
        "batch_size": 4,
        "export_graph": False,
        "choose_sequences": True,
    }
    updates = []  # as the command line's progress bar takes them (a crash there once ended `evaluate --adapt`)
    curve = adaptation_curve(tiny_study, None, [2, 1, 9], {"fast": fast}, scratch=tmp_path, progress=updates.append)
    assert [(u.done, u.total, u.unit) for u in updates] == [(1, 2, "fine-tuning"), (2, 2, "fine-tuning")]
    points = curve["points"]
    assert [(p["setting"], p["corrected_scans"]) for p in points] == [("none", 0), ("fast", 1), ("fast", 2)]
    assert points[0]["dice"] == pytest.approx(mean_dice(load_model(None), split.test))
    assert all(0.0 <= p["dice"] <= 1.0 for p in points)
    assert all(p["seconds"] > 0 and p["epochs"] == 1 for p in points[1:])
    assert [p["read"] for p in points] == ["", "T1w+T2w+CE", "T1w+T2w+CE"]  # every sequence of this lab helps
    assert curve["test_scans"] == 2 and curve["test_rats"] == split.test_rats
    assert curve["corrected_from"] == [f"{r.subject}/{r.session}" for r in split.candidates[:2]]
    assert curve["beyond_lab"] == [9] and curve["most_corrections"] == 3  # 9 asked, the lab holds 3
    assert (sorted(corrections.rglob("*")) if corrections.exists() else []) == before  # the study is not written
    assert not list(tmp_path.glob("napari-hcc-adapt-*"))  # nor is anything left behind

    results, extra = evaluate_model(tiny_study, None, device="cpu")
    summary = summarize(results, extra["size"], bootstrap=20)
    summary["adaptation"] = curve
    report = write_results(tmp_path / "report", results, summary, extra["info"]).read_text()
    assert "### Adaptation to this lab" in report
    assert f"| fast | 2 | T1w+T2w+CE | {points[2]['dice']:.3f} |" in report
    assert f"| none | 0 | all the session has | {points[0]['dice']:.3f} |" in report
    assert "No point for 9 corrected scans: this lab has 3 rats besides the test rats" in report
    saved = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [p["corrected_scans"] for p in saved["summary"]["adaptation"]["points"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--cv", "2", "--adapt", "1"], "--adapt needs --model"), (["--model", "default", "--adapt", "0"], "1 or more")],
)
def test_adapt_options_are_checked_before_anything_runs(tiny_study, tmp_path, options, message):
    r = subprocess.run(
        [sys.executable, "-m", "napari_hcc", "evaluate", "--study", str(tiny_study), "--out", str(tmp_path), *options],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1


def test_each_draw_takes_other_corrected_scans_going_round_the_list():
    from napari_hcc.evaluation.adaptation_curve import drawn

    rats = ["a", "b", "c", "d", "e"]
    assert drawn(rats, 1, 0) == ["a"] and drawn(rats, 1, 2) == ["c"]
    assert drawn(rats, 2, 0) == ["a", "b"] and drawn(rats, 2, 1) == ["c", "d"] and drawn(rats, 2, 2) == ["e", "a"]
    assert drawn(rats, 4, 1) == ["e", "a", "b", "c"]  # never the same scan twice within a draw
