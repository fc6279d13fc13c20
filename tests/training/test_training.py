"""Training on a tiny cohort: a real model comes out, runs resume, corrections win over truth,
rats never cross a split, two processes train together, and nothing is overwritten."""

import shutil
import subprocess
import sys
import threading
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from napari_hcc.cli import main
from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.slices import model_mask, model_slices
from napari_hcc.io import bids
from napari_hcc.io.study import bids_session
from napari_hcc.model.card import ModelCard
from napari_hcc.model.graph import graph_for
from napari_hcc.model.loading import load_model
from napari_hcc.training.augment import AugmentConfig, augment, histogram_shift, surface_coil
from napari_hcc.training.config import TrainConfig
from napari_hcc.training.dataset import build_dataset
from napari_hcc.training.losses import LossWeights, multitask_loss
from napari_hcc.training.splits import leaky_holdout, rat_folds, validation_rats
from napari_hcc.training.trainer import train


@pytest.fixture(scope="module")
def trained(tiny_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    result = train(TrainConfig([tiny_study], out, epochs=1, batch_size=8, crop=64, version="0.0.1"))
    return out, result


def test_train_writes_a_loadable_model_with_its_card(trained, tiny_study):
    out, result = trained
    assert (out / "model.safetensors").is_file() and (out / "model.json").is_file()
    assert (out / "training" / "history.csv").read_text().startswith("epoch,")
    model = load_model(out)
    card = model.card
    assert card.trained and card.version == "0.0.1" and len(card.training["fingerprint"]) == 64
    assert set(card.training["train_rats"]).isdisjoint(card.training["val_rats"])
    assert len(card.training["train_rats"]) + len(card.training["val_rats"]) == 4
    assert card.training["train_slices_per_second"] > 0 and "val_dice" in card.metrics
    # a new model reads any sequence subset: sequence dropout, and its T2w-alone Dice is validated
    assert card.input["missing_sequences"] == "zero" and card.training["sequence_dropout"] == 0.5
    assert "val_dice_t2w" in card.metrics and card.training["sequence_subsets"] == {"T1w+T2w+CE": 8}
    assert card.architecture["anatomy"] == [] and "val_liver_dice" not in card.metrics  # the head is asked for
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    # the CPU backends' graph comes with it: the shipped graph, given the new weights
    assert graph_for(card, out / "model.safetensors").path == out / "model.onnx"
    pred = Engine(model, device="cpu").predict(scan)
    assert pred.run.backend == "openvino"
    reference = Engine(model, device="cpu", backend="torch").predict(scan)
    assert np.abs(pred.probability - reference.probability).max() <= 0.01
    assert pred.mask.shape == scan.shape and pred.response.arm_probabilities.sum() == pytest.approx(1.0)
    assert result.epochs_run == 1 and result.slices_per_second > 0


def test_a_model_that_reads_subsets_reads_a_t2w_alone_as_zeros_and_says_so(trained, tiny_study):
    from napari_hcc.io.scan import without_sequences

    model = load_model(trained[0])
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    alone = without_sequences(scan, ("T2w",))
    engine = Engine(model, device="cpu")
    pred = engine.predict(alone)
    assert pred.sequences == "T2w" and pred.mask.shape == scan.shape
    assert any(n.startswith("read T2w (the session has no T1w or CE") for n in pred.notes)
    assert not any("stands in" in n for n in pred.notes)
    assert np.isnan(pred.response.arm_probabilities).all()  # no readout for T2w alone: not read, and why
    assert any("not read from T2w alone: the model has no readout fitted for it" in n for n in pred.notes)
    # the zero channel is what the network sees: the T1w-stand-in image must not matter
    swapped = without_sequences(scan, ("T2w",))
    swapped.t1w = np.zeros_like(swapped.t1w)
    assert np.array_equal(engine.segment(swapped), engine.segment(alone))


def test_a_model_is_never_overwritten(trained, tiny_study):
    out, _ = trained
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(InputError, match="already holds a model"):
        train(TrainConfig([tiny_study], out, epochs=1))
    assert (out / "model.safetensors").read_bytes() == before


def test_fine_tuning_makes_a_new_model_and_leaves_the_old_one(trained, tiny_study, tmp_path):
    out, _ = trained
    before = (out / "model.safetensors").read_bytes()
    new = tmp_path / "tuned"
    train(TrainConfig([tiny_study], new, epochs=1, batch_size=8, crop=64, init=str(out)))
    assert (out / "model.safetensors").read_bytes() == before
    card = load_model(new).card
    assert card.training["init"] == str(out) and "fine-tuned" in card.description


def test_an_interrupted_run_resumes_where_it_stopped_and_publishes_the_mean_of_its_epochs(tiny_study, tmp_path):
    stop = threading.Event()

    def progress(update):
        if update.unit == "batch" and update.detail["epoch"] == 2:
            stop.set()

    # 64-pixel windows and no validation rats: the same code paths at a fraction of the arithmetic (this
    # test trains three times); no graph: the weights are what it compares. --average-from 1: the model
    # is the mean of both epochs' weights, and the mean, like the weights, survives the interruption.
    def config(folder):
        return TrainConfig(
            [tiny_study], folder, epochs=2, batch_size=8, crop=64, version="r", export_graph=False,
            val_fraction=0.0, average_from=1,
        )  # fmt: skip

    def state_weights(folder):
        tensors = load_file(str(folder / "training" / "state.safetensors"))
        return {k.removeprefix("model/"): v.float().numpy() for k, v in tensors.items() if k.startswith("model/")}

    out = tmp_path / "resumed"
    first = train(config(out), progress=progress, cancel=stop)
    assert first.cancelled and not (out / "model.safetensors").exists() and (out / "training" / "state.json").exists()
    epoch1 = state_weights(out)
    second = train(config(out))
    assert not second.cancelled and len(second.history) == 2 and (out / "model.safetensors").exists()
    assert not (out / "model.onnx").exists()  # asked for no graph: none is made
    straight = tmp_path / "straight"
    train(config(straight))
    a, b = load_model(out).state, load_model(straight).state
    assert all(np.array_equal(a[k], b[k]) for k in a), "a resumed run must end where an uninterrupted one does"

    card = load_model(out).card
    assert second.averaged_epochs == [1, 2] and card.training["averaged_epochs"] == [1, 2]
    epoch2 = state_weights(out)
    conv = "net.decoder.blocks.x_0_0.conv1.0.weight"
    assert not np.allclose(epoch1[conv], epoch2[conv], atol=1e-3)  # the epochs differ, so the mean is a test
    for k, v in a.items():
        if v.dtype.kind == "f" and k in epoch1:  # the file is fp16: the mean to fp16 precision
            np.testing.assert_allclose(v, (epoch1[k] + epoch2[k]) / 2, rtol=2e-3, atol=2e-3, err_msg=k)
    assert not np.array_equal(a[conv], load_model(out / "training" / "best").state[conv])  # the pick is kept apart


def test_folds_keep_held_out_rats_out_of_training(tiny_study, tmp_path):
    out = tmp_path / "fold1"
    result = train(TrainConfig([tiny_study], out, epochs=1, batch_size=8, crop=64, folds=2, fold=1, export_graph=False))
    held = set(result.test_rats)
    assert len(held) == 2 and held.isdisjoint(result.train_rats) and held.isdisjoint(result.val_rats)
    assert set(load_model(out).card.training["held_out_rats"]) == held


def test_corrections_take_precedence_over_truth(tiny_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    truth = bids.truth_mask_path(study, "rat03", "wk2")
    img = nib.load(truth)
    corrected = np.zeros(img.shape, np.uint8)
    corrected[70:90, 70:90, 5:9] = 1
    from napari_hcc.review.trainingset import save_correction

    save_correction(study, "rat03", "wk2", corrected * 0, allow_empty=True)
    save_correction(study, "rat03", "wk2", corrected)
    # A third save killed before its sidecar: not a correction, so not learned from.
    nib.save(nib.Nifti1Image(1 - corrected, img.affine, img.header), bids.correction_path(study, "rat03", "wk2", 3))
    ds = build_dataset([study], ModelCard())
    item = next(s for s in ds.scans if s.subject == "rat03" and s.session == "wk2")
    assert item.mask_source == "correction" and sum(s.mask_source == "correction" for s in ds.scans) == 1
    y = ds.y[item.start : item.stop]
    scan = bids_session(study / "sub-rat03" / "ses-wk2").load()
    _, geometry = model_slices(scan.channels(), scan.affine, ModelCard())
    assert y.any() and np.array_equal(
        y, model_mask(corrected, geometry)
    )  # version 2's box: not 1, not the half-saved 3, not the truth
    rat03_wk0 = next(s for s in ds.scans if s.subject == "rat03" and s.session == "wk0")
    assert not rat03_wk0.arm_labelled and item.arm_labelled and item.has_histology


def test_two_processes_train_together_with_ddp(tiny_study, tmp_path):
    out = tmp_path / "ddp"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "-m",
            "napari_hcc",
            "train",
            "--study",
            str(tiny_study),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--crop",
            "64",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("trained 1 epoch(s)") == 1  # rank 0 reports, rank 1 stays quiet
    assert load_model(out).card.trained


def test_train_cli_errors_are_one_sentence(tiny_study, tmp_path, capsys):
    for args, message in (
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--folds", "2"], "give --folds K and --fold I together"),
        (["--tumor-free-share", "-0.5"], "--tumor-free-share must be 0 or more"),
        (["--epochs", "2", "--average-from", "3"], "--average-from must be an epoch from 1 to 2 (got 3)"),
        (["--surface-coil", "1.5"], "--surface-coil must be between 0 and 1 (got 1.5)"),
        (["--epochs", "1", "--warmup-epochs", "2"], "--warmup-epochs must be between 0 and 1 (got 2.0)"),
    ):
        assert main(["train", "--study", str(tiny_study), "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not (tmp_path / "x").exists()


def test_augmentation_moves_image_and_mask_together_and_is_seeded():
    y = torch.zeros(4, 1, 64, 64)
    y[:, :, 20:40, 10:30] = 1
    x = y.repeat(1, 3, 1, 1)
    geometric = AugmentConfig(p_intensity=0.0)
    xa, ya = augment(x, y, torch.Generator().manual_seed(1), geometric)
    xb, yb = augment(x, y, torch.Generator().manual_seed(1), geometric)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert set(ya.unique().tolist()) <= {0.0, 1.0}
    agree = ((xa[:, 0] > 0.5) == (ya[:, 0] > 0.5)).float().mean()
    assert agree > 0.98
    assert not torch.equal(ya, y)
    xi, _ = augment(x, y, torch.Generator().manual_seed(2), AugmentConfig())
    assert torch.isfinite(xi).all() and not torch.allclose(xi, x)


def test_a_surface_coil_fades_one_side_of_each_sequence_drawn_apart():
    x = torch.ones(64, 3, 64, 80)
    cfg = AugmentConfig(p_coil=0.5)
    out = surface_coil(x, torch.Generator().manual_seed(0), cfg)
    assert torch.equal(out, surface_coil(x, torch.Generator().manual_seed(0), cfg))
    touched = (out < 1).flatten(2).any(-1)  # (slice, sequence)
    assert 0.35 < touched.float().mean() < 0.65 and (out <= 1).all()
    assert (out.amax((-2, -1))[touched] == 1).all()  # the side at the coil keeps its level
    far = out.amin((-2, -1))[touched]
    assert far.min() < 0.05 and far.max() > 0.2  # the loop's radius sets how deep it sees
    assert (touched.any(1) & ~touched.all(1)).any()  # one slice's sequences are drawn apart
    assert out.diff(dim=-1).abs().max() < 0.2 and out.diff(dim=-2).abs().max() < 0.2  # smooth
    y = torch.zeros(2, 1, 64, 80)
    plain, _ = augment(x[:2], y, torch.Generator().manual_seed(3), AugmentConfig())
    again, _ = augment(x[:2], y, torch.Generator().manual_seed(3), AugmentConfig(p_coil=0.0))
    assert torch.equal(plain, again)  # off by default, and off draws nothing: earlier runs repeat exactly


def test_contrast_randomisation_keeps_order_and_range_but_changes_tissue_contrast():
    # liver at 0.2 and tumor at 0.4 of the normalised range, plus the range's ends and values outside it
    levels = torch.tensor([0.0, 0.2, 0.4, 1.0, -0.2, 1.5])
    x = levels.view(1, 1, 1, 6).repeat(300, 3, 1, 1)
    cfg = AugmentConfig(p_contrast=1.0)
    out = histogram_shift(x, torch.Generator().manual_seed(0), cfg)
    assert torch.equal(out, histogram_shift(x, torch.Generator().manual_seed(0), cfg))
    assert (out.diff(dim=-1)[..., :3] > 0).all()  # 0 < liver < tumor < 1 stays in that order
    assert torch.allclose(out[..., [0, 3, 4, 5]], x[..., [0, 3, 4, 5]], atol=1e-5)
    ratio = out[..., 2] / out[..., 1]
    assert ratio.min() < 1.6 and ratio.max() > 3.0  # the tumor-to-liver contrast (2 before) varies
    assert torch.equal(histogram_shift(x, torch.Generator().manual_seed(0), AugmentConfig(p_contrast=0.0)), x)


def test_loss_uses_arm_only_after_baseline_and_histology_only_where_measured():
    torch.manual_seed(0)
    m, a, b = torch.randn(4, 1, 16, 16), torch.randn(4, 4), torch.randn(4, 2)
    y = torch.zeros(4, 1, 16, 16)
    y[:2, :, 4:8, 4:8] = 1
    none_arm = torch.full((4,), -1)
    none_bio = torch.full((4, 2), float("nan"))
    total, parts = multitask_loss(m, a, b, y, none_arm, none_bio, LossWeights())
    assert parts["arm"] == 0 and parts["bio"] == 0 and torch.isfinite(total)
    arm = torch.tensor([2, 2, 1, 1])  # slices 2 and 3 have no tumor: their arm does not count
    _, with_arm = multitask_loss(m, a, b, y, arm, none_bio, LossWeights())
    expected = torch.nn.functional.cross_entropy(a[:2], arm[:2])
    assert with_arm["arm"] == pytest.approx(float(expected), rel=1e-5)


def test_the_slice_dice_term_makes_a_missed_small_tumor_cost_as_much_as_a_missed_large_one():
    y = torch.zeros(2, 1, 64, 64)
    y[0, :, 2:62, 2:62] = 1  # a large tumor, 3,600 pixels
    y[1, :, 30:33, 30:33] = 1  # a small one, 9 pixels
    found = torch.where(y > 0, 20.0, -20.0)  # confident logits
    small_missed, large_missed = found.clone(), found.clone()
    small_missed[1] = -20.0
    large_missed[0] = -20.0
    arm, bio, a, b = torch.full((2,), -1), torch.full((2, 2), float("nan")), torch.zeros(2, 4), torch.zeros(2, 2)

    def seg(logits, w):
        return multitask_loss(logits, a, b, y, arm, bio, LossWeights(slice_dice=w))[1]["seg"]

    assert seg(small_missed, 0.0) - seg(found, 0.0) < 0.05  # the batch Dice and the BCE hardly see it
    assert seg(small_missed, 1.0) - seg(found, 1.0) > 0.4  # one of two tumor slices wholly missed
    assert seg(large_missed, 1.0) - seg(found, 1.0) > 0.5  # the large one still costs more overall
    assert seg(found, 1.0) == pytest.approx(seg(found, 0.0), abs=1e-3)


def test_the_papers_leaky_folds_partition_the_slices_whatever_rat_they_come_from():
    ds = SimpleNamespace(y=np.zeros((103, 4, 4)))
    folds = [leaky_holdout(ds, 4, i, seed=2) for i in range(4)]
    assert sorted(np.concatenate(folds).tolist()) == list(range(103))  # every slice held out exactly once
    assert all(25 <= len(f) <= 26 for f in folds)
    assert not np.array_equal(folds[0], np.arange(len(folds[0])))  # shuffled, not the first quarter


def test_rat_folds_partition_rats_and_balance_arms():
    rat_arm = {f"s/rat{i:02d}": arm for i, arm in enumerate(["Control", "Sorafenib", "NK", "Combination"] * 5)}
    folds = rat_folds(rat_arm, 5, seed=3)
    assert sorted(r for f in folds for r in f) == sorted(rat_arm)
    for f in folds:
        assert sorted(rat_arm[r] for r in f) == ["Combination", "Control", "NK", "Sorafenib"]
    val = validation_rats(rat_arm, 0.2, seed=0)
    assert len(val) == 4 and len({rat_arm[r] for r in val}) == 4
    with pytest.raises(InputError, match="at least 2 folds"):
        rat_folds(rat_arm, 1)


def test_a_t2w_lab_without_arms_or_histology_fine_tunes_the_segmentation(trained, tiny_study, tmp_path):
    """A real lab: T2w only, a participants.tsv with no arm or histology, one corrected scan. `train --init
    --corrections-only` learns the outline alone, with the adaptation defaults (steps, no validation rats)."""
    from napari_hcc.cli import main
    from napari_hcc.review.trainingset import save_correction
    from napari_hcc.training.adaptation import ADAPTATION

    out, _ = trained
    lab = tmp_path / "lab"
    shutil.copytree(tiny_study, lab)
    for f in lab.glob("sub-*/ses-*/anat/*T1w*"):
        f.unlink()
    ids = [line.split("\t")[0] for line in (lab / "participants.tsv").read_text().splitlines()]
    (lab / "participants.tsv").write_text("\n".join(ids) + "\n")
    truth = nib.load(bids.truth_mask_path(lab, "rat02", "wk2"))
    save_correction(lab, "rat02", "wk2", np.asarray(truth.dataobj))
    new = tmp_path / "adapted"
    args = ["train", "--study", str(lab), "--init", str(out), "--corrections-only", "--out", str(new), "--quiet"]
    assert main([*args, "--min-steps", "3"]) == 0  # the default step count is for real use; 3 keep the test short
    card = load_model(new).card
    t = card.training
    assert t["sequence_subsets"] == {"T2w": 1} and t["mask_sources"] == {"truth": 0, "correction": 1}
    assert t["val_rats"] == [] and t["min_steps"] == 3 and t["lr"] == ADAPTATION["lr"]
    assert t["augment"]["p_contrast"] == 0.0  # adapting learns the lab's own contrast
    assert card.input["missing_sequences"] == "zero"
    assert "val_dice" not in card.metrics  # nothing held out to validate on: the last epoch is the model
    history = (new / "training" / "history.csv").read_text().splitlines()
    assert len(history) - 1 == ADAPTATION["epochs"]  # the scan's slices go round again inside the epoch
    # one scan moves the network only a little: the encoder and every BatchNorm statistic stay as they were,
    # the decoder learns, and the lab's sessions are shown with the sequences they have
    assert t["freeze_encoder"] and t["freeze_norm"] and t["sequence_dropout"] == 0.0
    old_w, new_w = load_file(out / "model.safetensors"), load_file(new / "model.safetensors")
    stats = [k for k in old_w if k.endswith(("running_mean", "running_var"))]
    assert len(stats) > 50 and all(torch.equal(old_w[k], new_w[k]) for k in stats)
    assert all(torch.equal(old_w[k], new_w[k]) for k in old_w if ".encoder." in k)
    assert any(not torch.equal(old_w[k], new_w[k]) for k in old_w if ".decoder." in k and k.endswith("weight"))


def test_train_command_adapts_with_the_same_setting_as_the_review_widget(tmp_path):
    """`train --init M --corrections-only` fills in what is not given from the adaptation setting that the
    widget's "Improve the model" uses (a one-epoch run whose warm-up is all its steps would end at its peak
    rate); a full run keeps a one-epoch warm-up."""
    from napari_hcc.cli import build_parser
    from napari_hcc.cli.model_commands import train_config
    from napari_hcc.training.adaptation import ADAPTATION

    base = ["train", "--study", str(tmp_path), "--out", str(tmp_path / "m")]
    adapt = train_config(build_parser().parse_args([*base, "--init", "default", "--corrections-only"]))
    keys = ("epochs", "lr", "warmup_epochs", "min_steps", "freeze_encoder", "freeze_norm", "sequence_dropout")
    for key in (*keys, "val_fraction"):
        assert getattr(adapt, key) == ADAPTATION[key], key
    assert adapt.augment.p_contrast == ADAPTATION["p_contrast"] and not adapt.choose_sequences
    chosen = build_parser().parse_args([*base, "--init", "default", "--corrections-only", "--choose-sequences"])
    assert train_config(chosen).choose_sequences
    full = train_config(build_parser().parse_args([*base, "--warmup-epochs", "0.25"]))
    assert (full.epochs, full.warmup_epochs, full.freeze_encoder, full.freeze_norm) == (40, 0.25, False, False)
    assert full.sequence_dropout is None  # the trainer's own default (0.5 for a model that reads subsets)
    assert train_config(build_parser().parse_args(base)).warmup_epochs == 1.0
