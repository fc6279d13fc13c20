"""`napari-hcc predict` and `napari-hcc info` as a user runs them: files, their grids, the table,
exit codes and one-sentence errors."""

import csv
import json
import locale
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from helpers import write_volume
from napari_hcc.cli import main
from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.checkpoint import build_network, save_model, untrained_model
from napari_hcc.model.loading import default_model

REQUIRED = [
    "subject",
    "session",
    "week",
    "p_control",
    "p_sorafenib",
    "p_nk",
    "p_combination",
    "response_probability",
    "viability",
    "apoptosis",
    "tumor_volume_mm3",
    "longest_diameter_mm",
    "model",
    "device",
    "seconds",
    "mask",
]


def rows(out):
    with open(out / "predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def study_prediction(tiny_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    r = subprocess.run(
        [sys.executable, "-m", "napari_hcc", "predict", "-i", str(tiny_study), "-o", str(out), "--save-probabilities"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return out, r


def test_predict_a_study_writes_masks_on_the_t1w_grid_and_a_table(tiny_study, study_prediction):
    out, r = study_prediction
    assert r.returncode == 0, r.stderr
    assert "predicted 8 of 8 scan(s)" in r.stdout
    table = rows(out)
    assert len(table) == 8 and list(table[0])[: len(REQUIRED)] == REQUIRED
    for row in table:
        assert row["error"] == ""
        p = np.array([float(row[k]) for k in ("p_control", "p_sorafenib", "p_nk", "p_combination")])
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
        assert float(row["response_probability"]) == pytest.approx(1 - p[0], abs=1e-5)
        mask_path = out / row["mask"]
        assert (
            row["mask"]
            == f"sub-{row['subject']}/ses-{row['session']}/anat/sub-{row['subject']}_ses-{row['session']}_desc-tumor_mask.nii.gz"
        )
        t1w = nib.load(
            tiny_study
            / f"sub-{row['subject']}/ses-{row['session']}/anat/sub-{row['subject']}_ses-{row['session']}_T1w.nii.gz"
        )
        mask = nib.load(mask_path)
        assert mask.shape == t1w.shape and np.array_equal(mask.affine, t1w.affine)
        assert mask.get_data_dtype() == np.uint8 and set(np.unique(mask.get_fdata())) <= {0.0, 1.0}
        voxel = float(np.prod(t1w.header.get_zooms()))
        assert float(row["tumor_volume_mm3"]) == pytest.approx(mask.get_fdata().sum() * voxel, rel=1e-4)
        prob = nib.load(str(mask_path).replace("desc-tumor_mask", "label-tumor_probseg"))
        assert prob.shape == t1w.shape and np.array_equal(prob.affine, t1w.affine)
        sidecar = json.loads(mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")).read_text())
        assert len(sidecar["slices"]) == t1w.shape[2] and sidecar["model"] == row["model"]
        assert set(sidecar["slices"][0]) >= {
            "tumor_probability",
            "network_head_arm_probabilities",
        }  # named for its source
        # A baseline scan (week 0, before treatment) says that its arm reading means nothing; later ones do not.
        assert row["week"] == row["session"].removeprefix("wk") and sidecar["before_treatment"] == (row["week"] == "0")
        assert any("baseline scan" in n for n in sidecar["notes"]) == (row["week"] == "0")
        assert (f"sub-{row['subject']} ses-{row['session']}: week 0 is the baseline scan" in r.stderr + r.stdout) == (
            row["week"] == "0"
        )
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == "derivative"
    assert not list(out.rglob(".*.tmp*"))  # no temporary files left behind


def test_three_files_name_the_output_after_the_t1w(tiny_study, tmp_path, capsys):
    anat = tiny_study / "sub-rat03" / "ses-wk2" / "anat"
    code = main(
        [
            "predict",
            "--t1w",
            str(anat / "sub-rat03_ses-wk2_T1w.nii.gz"),
            "--t2w",
            str(anat / "sub-rat03_ses-wk2_T2w.nii.gz"),
            "--ce",
            str(anat / "sub-rat03_ses-wk2_ce-gd_T1w.nii.gz"),
            "-o",
            str(tmp_path),
            "--tta",
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    table = rows(tmp_path)
    assert [r["mask"] for r in table] == ["sub-rat03_ses-wk2_desc-tumor_mask.nii.gz"]
    assert table[0]["tta"] == "True" and table[0]["uncertainty_method"] == "tta-std"
    assert nib.load(tmp_path / table[0]["mask"]).shape == (160, 160, 15)


@pytest.fixture(scope="module")
def older_model(tmp_path_factory):
    """A model folder with an older card: no sequence dropout (stand-ins for missing sequences), no anatomy
    head, so no liver gate (the untrained network, saved as a user's model would be)."""
    base = untrained_model()
    folder = tmp_path_factory.mktemp("older") / "model"
    save_model(build_network(base), base.card, folder)
    return folder


def test_a_t2w_alone_is_read_as_the_subset_it_is(tiny_study, tmp_path, capsys):
    """A lab with T2w only: `predict --t2w F` runs with the shipped model, which reads the T2w alone (no
    stand-in), says so, and reads the response only where the card says the T2w can carry it."""
    t2w = tiny_study / "sub-rat03" / "ses-wk2" / "anat" / "sub-rat03_ses-wk2_T2w.nii.gz"
    assert main(["predict", "--t2w", str(t2w), "-o", str(tmp_path)]) == 0
    said = capsys.readouterr().err
    assert "read T2w (the session has no T1w or CE: the model reads that subset" in said and "stand" not in said
    table = rows(tmp_path)
    assert len(table) == 1 and table[0]["sequences"] == "T2w"
    reads = default_model().card.readout["subsets"]["T2w"]["reads_response"]
    assert (table[0]["p_control"] != "") == reads and (table[0]["viability"] != "") == reads
    mask = tmp_path / table[0]["mask"]
    assert nib.load(mask).shape == (160, 160, 15)  # on the T2w's grid, the file the user gave
    sidecar = json.loads(mask.with_name(mask.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["Sources"] == {"T2w": str(t2w)}  # the one file read, not the same file under three names
    assert main(["predict", "--ce", str(t2w), "-o", str(tmp_path / "ce"), "--quiet"]) == 2
    assert "a --ce alone cannot be read" in capsys.readouterr().err


def test_an_older_model_reads_a_t2w_alone_with_stand_ins_and_no_response(tiny_study, older_model, tmp_path, capsys):
    """A model trained without sequence dropout gets named stand-ins for what is missing, and no arm."""
    t2w = tiny_study / "sub-rat03" / "ses-wk2" / "anat" / "sub-rat03_ses-wk2_T2w.nii.gz"
    args = ["predict", "--t2w", str(t2w), "-o", str(tmp_path), "--model", str(older_model), "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    table = rows(tmp_path)
    assert len(table) == 1 and table[0]["p_control"] == "" and table[0]["viability"] == ""
    assert table[0]["sequences"] == "T2w"
    mask = tmp_path / table[0]["mask"]
    notes = json.loads(mask.with_name(mask.name.replace(".nii.gz", ".json")).read_text())["notes"]
    assert any("T1w (read from the T2w)" in n and "CE (read from the T2w)" in n for n in notes)
    assert nib.load(mask).shape == (160, 160, 15)


def test_one_broken_session_is_reported_and_the_rest_continue(tiny_study, tmp_path, capsys):
    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    broken = study / "sub-rat02" / "ses-wk0" / "anat" / "sub-rat02_ses-wk0_ce-gd_T1w.nii.gz"
    broken.write_bytes(b"\x1f\x8b truncated")
    out = tmp_path / "out"
    code = main(["predict", "-i", str(study), "-o", str(out)])
    err = capsys.readouterr()
    assert code == 1
    assert f"failed: sub-rat02 ses-wk0: CE file {broken} could not be read" in err.err
    assert "predicted 7 of 8 scan(s)" in err.out and "1 failed: sub-rat02 ses-wk0" in err.out
    table = rows(out)
    assert len(table) == 8 and sum(bool(r["error"]) for r in table) == 1
    assert not (out / "sub-rat02" / "ses-wk0").exists()
    # A second run into the same folder keeps the earlier rows it does not redo.
    assert main(["predict", "-i", str(study / "sub-rat01" / "ses-wk2"), "-o", str(out), "--quiet"]) == 0
    assert len(rows(out)) == 7


def test_real_files_thick_las_and_lps(realdata, tmp_path, capsys):
    for image in (
        realdata / "pyradiomics_brain_thick_las" / "brain1_image.nii.gz",
        realdata / "totalseg_abdomen_mr" / "example_mr_sm.nii.gz",
    ):
        code = main(
            ["predict", "--t1w", str(image), "--t2w", str(image), "--ce", str(image), "-o", str(tmp_path), "--quiet"]
        )
        assert code == 0, capsys.readouterr().err
        src = nib.load(image)
        stem = image.name.removesuffix(".nii.gz")
        mask = nib.load(tmp_path / f"{stem}_desc-tumor_mask.nii.gz")
        assert mask.shape == src.shape and np.allclose(mask.affine, src.affine)
        assert nib.aff2axcodes(mask.affine) == nib.aff2axcodes(src.affine)
        assert int(mask.header["qform_code"]) == int(src.header["qform_code"]) or int(src.header["qform_code"]) == 0


def test_real_mismatched_grids_refused_in_one_sentence(realdata, tmp_path, capsys):
    d = realdata / "remind_mismatched_grids"
    code = main(
        [
            "predict",
            "--t1w",
            str(d / "ReMIND-022_T1c.nii.gz"),
            "--t2w",
            str(d / "ReMIND-022_T2.nii.gz"),
            "--ce",
            str(d / "ReMIND-022_T1c.nii.gz"),
            "-o",
            str(tmp_path),
            "--on-mismatch",
            "refuse",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "different voxel grid" in err and "Traceback" not in err


def _bad_files(tmp_path, tiny_study, kind):
    anat = tiny_study / "sub-rat01" / "ses-wk2" / "anat"
    t1w, t2w, ce = (anat / f"sub-rat01_ses-wk2_{s}.nii.gz" for s in ("T1w", "T2w", "ce-gd_T1w"))
    src = nib.load(t1w)
    if kind == "missing":
        return t1w, t2w, tmp_path / "absent_ce.nii.gz", "CE file not found"
    if kind == "4d":
        bad = write_volume(tmp_path / "ce4d.nii.gz", np.ones(src.shape + (3,)), src.affine)
        return t1w, t2w, bad, "is 4-D (160x160x15x3); one 3-D volume is needed"
    if kind == "2d":
        bad = write_volume(tmp_path / "t2.nii.gz", np.ones((160, 160)), src.affine)
        return t1w, bad, ce, "is 2-D"
    if kind == "nan":
        data = src.get_fdata()
        data[3, 3, 3] = np.nan
        bad = write_volume(tmp_path / "t2nan.nii.gz", data, src.affine)
        return t1w, bad, ce, "NaN"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["missing", "4d", "2d", "nan"])
def test_bad_scan_files_end_in_one_sentence(tiny_study, tmp_path, capsys, kind):
    t1w, t2w, ce, message = _bad_files(tmp_path, tiny_study, kind)
    code = main(
        ["predict", "--t1w", str(t1w), "--t2w", str(t2w), "--ce", str(ce), "-o", str(tmp_path / "out"), "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("napari-hcc predict: error:")
    assert not list((tmp_path / "out").rglob("*.nii.gz")) if (tmp_path / "out").exists() else True


@pytest.mark.parametrize(
    "what, message",
    [
        ("garbage", "is not a readable safetensors checkpoint"),
        ("device", "no usable CUDA GPU"),
        ("missing model", "model not found"),
        ("no input", "give an INPUT folder (-i) or --t1w, --t2w and --ce"),
        (
            "gate without anatomy",
            "--liver-gate needs a model with an anatomy head",
        ),
    ],
)
def test_bad_model_device_or_arguments_end_in_one_sentence(tiny_study, older_model, tmp_path, capsys, what, message):
    args = ["predict", "-i", str(tiny_study / "sub-rat01" / "ses-wk0"), "-o", str(tmp_path / "out"), "--quiet"]
    if what == "garbage":
        (tmp_path / "m.safetensors").write_bytes(b"garbage" * 20)
        args += ["--model", str(tmp_path / "m.safetensors")]
    elif what == "device":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        args += ["--device", "cuda"]
    elif what == "missing model":
        args += ["--model", str(tmp_path / "nope")]
    elif what == "gate without anatomy":
        args += ["--liver-gate", "0.25", "--model", str(older_model)]
    else:
        args = ["predict", "-o", str(tmp_path / "out")]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_info_lists_models_and_devices(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "models:" in out and "default: hcc-unetpp-effb0@" in out and "devices:" in out and "cpu (" in out


def test_predict_leaves_the_process_text_encoding_alone(tmp_path, capsys):
    """A predict that runs, and one stopped on bad options, leave the locale's encoding as it was (a start
    that compiled the graph in a thread once left it at ASCII, docs/benchmarks.md)."""
    before = (locale.setlocale(locale.LC_CTYPE), locale.getpreferredencoding(False))
    session = str(sample_study() / "sub-rat01" / "ses-wk2")
    assert main(["predict", "-i", session, "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert main(["predict", "-i", session, "-o", str(tmp_path / "gate"), "--quiet", "--liver-gate", "1.5"]) == 2
    capsys.readouterr()
    assert (locale.setlocale(locale.LC_CTYPE), locale.getpreferredencoding(False)) == before


def test_what_the_gate_left_out_is_written_beside_the_mask(realdata, tmp_path, capsys):
    """The real mouse: the anatomy gate leaves most of its tumor out. predict writes that part on the scan's
    grid beside the mask and says so; with the gate off, the mask holds it and no such file is written."""
    from napari_hcc.importing.importer import import_study

    study = tmp_path / "mouse"
    import_study([realdata / "ucsf_mouse_tumor_dicom"], study)
    assert main(["predict", "-i", str(study), "-o", str(tmp_path / "gated"), "--quiet"]) == 0
    (mask_file,) = (tmp_path / "gated").rglob("*_desc-tumor_mask.nii.gz")
    left_file = mask_file.with_name(mask_file.name.replace("desc-tumor", "desc-leftout"))
    mask, left = nib.load(mask_file), nib.load(left_file)
    assert left.shape == mask.shape == (256, 256, 40) and np.allclose(left.affine, mask.affine)
    kept, left_out = np.asarray(mask.dataobj) > 0, np.asarray(left.dataobj) > 0
    assert left_out.sum() > kept.sum() and not (kept & left_out).any()
    sidecar = json.loads(mask_file.with_suffix("").with_suffix(".json").read_text())
    assert sidecar["LeftOutMask"] == left_file.name
    assert "desc-leftout_mask.nii.gz" in " ".join(sidecar["notes"])
    assert "more than the mask keeps" in " ".join(sidecar["notes"])  # the response read from a remnant is flagged
    assert main(["predict", "-i", str(study), "-o", str(tmp_path / "ungated"), "--quiet", "--liver-gate", "0"]) == 0
    (ungated_file,) = (tmp_path / "ungated").rglob("*_desc-tumor_mask.nii.gz")
    assert not list((tmp_path / "ungated").rglob("*_desc-leftout_mask.nii.gz"))
    ungated = np.asarray(nib.load(ungated_file).dataobj) > 0
    assert (ungated & left_out).sum() == left_out.sum()  # what was left out is what the gate removed


def test_read_corrections_reads_each_response_from_the_saved_correction(tmp_path):
    """`predict --read-corrections`: a session with a saved correction has its response read from that mask
    (the core's `reread_response`), its row says so, and the model's own mask is still the one written."""
    from napari_hcc.inference.engine import Engine
    from napari_hcc.inference.reread import reread_response
    from napari_hcc.io.study import find_scans
    from napari_hcc.model.loading import load_model
    from napari_hcc.review.trainingset import save_correction

    study = tmp_path / "study"
    shutil.copytree(sample_study(), study)
    ref = next(r for r in find_scans(study) if (r.subject, r.session) == ("rat02", "wk2"))
    scan = ref.load()
    outline = (np.asarray(nib.load(ref.mask).dataobj) > 0).astype(np.uint8)
    trimmed = outline.copy()
    trimmed[: outline.shape[0] // 2] = 0  # a reviewer's mask that differs from the model's
    save_correction(study, "rat02", "wk2", trimmed, annotator="test")
    session = study / "sub-rat02" / "ses-wk2"
    assert main(["predict", "-i", str(session), "-o", str(tmp_path / "plain"), "--quiet"]) == 0
    assert main(["predict", "-i", str(session), "-o", str(tmp_path / "read"), "--quiet", "--read-corrections"]) == 0
    (plain,) = rows(tmp_path / "plain")
    (read,) = rows(tmp_path / "read")
    assert (plain["response_mask"], read["response_mask"]) == ("model", "edited")
    engine = Engine(load_model(None), device="cpu")
    expected = reread_response(engine, engine.predict(scan, keep_probability=False), scan, trimmed).response
    assert float(read["p_control"]) == pytest.approx(expected.arm_probabilities[0], abs=1e-4)
    assert float(read["p_control"]) != pytest.approx(float(plain["p_control"]), abs=1e-4)
    assert read["tumor_volume_mm3"] == plain["tumor_volume_mm3"]  # the model's mask, measured as the model's
    sidecar = json.loads(next((tmp_path / "read").rglob("*_desc-tumor_mask.json")).read_text())
    assert any(
        "response read again from the saved correction sub-rat02_ses-wk2_desc-correction001" in n
        for n in sidecar["notes"]
    )
