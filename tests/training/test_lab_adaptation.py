"""Adapting the shipped model to a lab from its corrected scans (`training/finetune.py`, the review
widget's "Improve the model"): the rats it scores before and after are never trained on, and the lab's
corrected scans choose which of its sequences the new model reads (`training/sequence_choice.py`)."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.inference.engine import Engine
from napari_hcc.io import bids
from napari_hcc.io.study import bids_session
from napari_hcc.model.loading import load_model
from napari_hcc.review.trainingset import save_correction
from napari_hcc.training.adaptation import ADAPTATION
from napari_hcc.training.finetune import fine_tune
from napari_hcc.training.sequence_choice import MARGIN, choose


def corrected_lab(tiny_study, tmp_path, spoil_t1w: bool = False):
    """A copy of the tiny study with every rat's week-2 session corrected (its truth saved as a correction);
    with `spoil_t1w`, every T1w replaced by noise of the same range (a sequence that misleads)."""
    lab = tmp_path / "lab"
    shutil.copytree(tiny_study, lab)
    rng = np.random.default_rng(0)
    if spoil_t1w:
        for f in lab.glob("sub-*/ses-*/anat/*_T1w.nii.gz"):
            img = nib.load(f)
            data = np.asarray(img.dataobj, np.float32)
            noise = rng.uniform(data.min(), data.max(), data.shape).astype(np.float32)
            nib.save(nib.Nifti1Image(noise, img.affine, img.header), f)
    for sub in sorted(p.name.removeprefix("sub-") for p in lab.glob("sub-*")):
        truth = np.asarray(nib.load(bids.truth_mask_path(lab, sub, "wk2")).dataobj)
        save_correction(lab, sub, "wk2", truth, note="test")
    return lab


def test_fine_tuning_never_trains_on_the_rats_it_scores(tiny_study, tmp_path, monkeypatch):
    monkeypatch.setitem(ADAPTATION, "min_steps", 2)  # the real step count is for real use
    lab = corrected_lab(tiny_study, tmp_path)
    result = fine_tune(lab, out=tmp_path / "new", device="cpu")
    assert result.independent and len(result.held_out_scans) == 1 and len(result.trained_scans) == 3
    held = result.held_out_scans[0].split()[0].removeprefix("sub-")
    training = load_model(tmp_path / "new").card.training
    assert training["held_out_rats"] == [f"lab/{held}"]
    assert f"lab/{held}" not in training["train_rats"] and len(training["train_rats"]) == 3
    assert training["scans"] == 4 and sorted(json.loads((tmp_path / "new" / "finetune.json").read_text())["dice_after"])
    # the choice of sequences is opt-in (training/adaptation.py): by default every sequence is read, as before
    assert result.sequences is None and "sequence_choice" not in load_model(tmp_path / "new").card.input


def test_the_rule_keeps_every_sequence_unless_a_subset_reads_the_corrected_scans_clearly_better():
    full = "T1w+T2w+CE"
    near = [{full: 0.80, "T1w+T2w": 0.78, "T2w+CE": 0.88, "T2w": 0.70, "T1w": 0.2}]
    assert choose(near, full).read == full and choose(near, full).leave_out == []  # 0.08 < MARGIN
    far = [{full: 0.60, "T1w+T2w": 0.55, "T2w+CE": 0.75, "T2w": 0.78, "T1w": 0.1}] * 2
    picked = choose(far, full)  # T2w is the best; T2w+CE is within the margin of it and leaves out less
    assert picked.read == "T2w+CE" and picked.leave_out == ["T1w"] and picked.scans == 2
    assert picked.dice["T2w+CE"] - picked.dice[full] >= MARGIN
    assert "The new model leaves out the lab's T1w" in picked.sentence() and "0.75 against 0.60" in picked.sentence()
    # a mean over the corrected scans, not one lucky scan
    mixed = [{"T1w+T2w": 0.7, "T2w": 0.9, "T1w": 0.1}, {"T1w+T2w": 0.7, "T2w": 0.5, "T1w": 0.1}]
    assert choose(mixed, "T1w+T2w").read == "T1w+T2w"


def test_a_misleading_sequence_is_left_out_by_the_adapted_model(tiny_study, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(ADAPTATION, "min_steps", 2)
    monkeypatch.setenv("NAPARI_HCC_MODELS", str(tmp_path / "models"))
    lab = corrected_lab(tiny_study, tmp_path, spoil_t1w=True)
    result = fine_tune(lab, device="cpu", choose_sequences=True)  # into the user models folder, as the widget does
    assert result.model_dir.parent == tmp_path / "models"
    assert result.sequences is not None and result.sequences.leave_out == ["T1w"], result.sequences
    model = load_model(result.model_dir)
    assert model.card.input["leave_out"] == ["T1w"] and model.card.input["sequence_choice"]["read"] == "T2w+CE"
    assert main(["info"]) == 0 and f"{model.model_id} [{result.model_dir}]" in (out := capsys.readouterr().out)
    assert "adapted to a lab, leaves out its T1w" in out
    assert model.card.training["sequence_subsets"] == {"T2w+CE": 4}  # its data were read without the T1w
    scan = bids_session(lab / "sub-rat01" / "ses-wk0").load()
    pred = Engine(model, device="cpu").predict(scan)
    assert pred.sequences == "T2w+CE"
    said = [n for n in pred.notes if n.startswith("read T2w+CE")]
    assert said and "adapted to the lab and leaves out its T1w" in said[0] and "session has no" not in said[0]
    # the T1w is not read at all: any image in its place gives the same mask
    scan.t1w = np.zeros_like(scan.t1w)
    assert np.array_equal(Engine(model, device="cpu").segment(scan), pred.mask)
    record = json.loads((result.model_dir / "finetune.json").read_text())
    assert record["sequences"]["leave_out"] == ["T1w"]


def test_a_lab_whose_sequences_all_help_keeps_them(tiny_study, tmp_path, monkeypatch):
    monkeypatch.setitem(ADAPTATION, "min_steps", 2)
    lab = corrected_lab(tiny_study, tmp_path)
    result = fine_tune(lab, out=tmp_path / "new", device="cpu", choose_sequences=True)
    assert result.sequences.leave_out == [] and result.sequences.read == "T1w+T2w+CE"
    model = load_model(tmp_path / "new")
    assert not model.card.input.get("leave_out")
    assert Engine(model, device="cpu").predict(bids_session(lab / "sub-rat01" / "ses-wk0").load()).sequences == (
        "T1w+T2w+CE"
    )


@pytest.mark.parametrize("subset", ["T2w", "T1w+T2w"])
def test_an_adapted_model_reads_a_session_that_lacks_sequences_too(tiny_study, subset):
    from napari_hcc.inference.subsets import as_read
    from napari_hcc.io.scan import without_sequences
    from napari_hcc.model.loading import load_model as load

    model = load("default")
    model.card.input = {**model.card.input, "leave_out": ["T1w"]}
    scan = without_sequences(bids_session(tiny_study / "sub-rat01" / "ses-wk2").load(), subset.split("+"))
    read = as_read(model.card, scan)
    if subset == "T2w":  # nothing of the T1w to leave out: the scan as it is
        assert read is scan
    else:
        assert read.left_out == ("T1w",) and set(read.stand_ins) == {"T1w", "CE"}
        assert as_read(model.card, read) is read


def test_a_model_that_leaves_out_the_ce_reads_no_response_and_says_why(tiny_study):
    from napari_hcc.inference.subsets import MISSING_SEQUENCE

    model = load_model("default")
    model.card.input = {**model.card.input, "leave_out": ["CE"]}
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    pred = Engine(model, device="cpu").predict(scan)
    assert pred.sequences == "T1w+T2w" and pred.mask.any()
    assert pred.response.unread_because == MISSING_SEQUENCE and np.isnan(pred.response.arm_probabilities).all()
    assert any(
        n.startswith("read T1w+T2w (this model was adapted to the lab and leaves out its CE") for n in pred.notes
    )
    assert any("not read from T1w+T2w alone" in n for n in pred.notes)
    # the same scan read by the model as shipped: every sequence, and the response
    plain = Engine(load_model("default"), device="cpu").predict(scan)
    assert plain.sequences == "T1w+T2w+CE" and not plain.response.unread_because
