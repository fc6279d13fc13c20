"""`napari-hcc import` as a lab runs it on its real files: what is written, what is said, what is refused."""

import contextlib
import io
import json
import shutil
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_hcc.cli import main


def run(*args):
    """`napari-hcc ARGS` in this process (the import path imports no torch): exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


def test_a_dicom_series_becomes_a_bids_session_with_its_acquisition(realdata, tmp_path):
    study = tmp_path / "study"
    r = run("import", realdata / "ucsf_mouse_tumor_dicom", "-o", study)
    assert r.returncode == 0, r.stderr
    assert "T2w  <- series 2 'T2 FSE Axial'" in r.stdout and "imported 1 session(s)" in r.stdout
    image = study / "sub-MS370" / "ses-20150325" / "anat" / "sub-MS370_ses-20150325_T2w.nii.gz"
    img = nib.load(image)
    assert img.shape == (256, 256, 40) and int(img.header["sform_code"]) == 1
    assert np.linalg.norm(img.affine[:3, :3], axis=0) == pytest.approx([0.2344, 0.2344, 2.0], abs=1e-4)
    sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["MagneticFieldStrength"] == 3 and sidecar["EchoTime"] == pytest.approx(0.102168)
    assert sidecar["Role"] == "T2w" and sidecar["SlicePlane"] == "axial" and sidecar["ImageOrientation"] == "LAS"
    assert sidecar["SeriesInstanceUID"].startswith("1.2.840.113619") and len(sidecar["SourceDicomFiles"]) == 40
    assert "sub-MS370\tMS370" in (study / "participants.tsv").read_text()
    assert "ses-20150325\t2015-03-25" in (study / "sub-MS370" / "sub-MS370_sessions.tsv").read_text()
    # the same again: refused, nothing touched
    before = image.stat().st_mtime_ns
    r = run("import", realdata / "ucsf_mouse_tumor_dicom", "-o", study)
    assert r.returncode == 2 and "already exists" in r.stderr and r.stderr.count("\n") == 1
    assert image.stat().st_mtime_ns == before


def test_the_bruker_study_is_refused_until_a_map_picks_the_t2w(realdata, tmp_path):
    src = realdata / "bruker_paravision_phantom" / "study"
    study = tmp_path / "study"
    r = run("import", src, "-o", study)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    for name in ("scan 3 'T2_TurboRARE' package 1 of 2", "package 2 of 2", "scan 4 'T2_TurboRARE_3D'"):
        assert name in r.stderr
    assert "nothing was written" in r.stderr and not list(study.glob("sub-*"))
    assert 'e.g. {"roles": {"T2w": [{"series": 4}]}}' in r.stderr  # a map the user can copy
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"roles": {"T2w": [{"description": "T2_TurboRARE_3D"}]}}))
    r = run("import", src, "-o", study, "--map", mapping, "--subject", "phantom", "--session", "pv6")
    assert r.returncode == 0, r.stderr
    assert "left out: scan 1 '1_Localizer' package 1 of 3: a 3-plane localiser" in r.stdout
    assert "left out: scan 3 'T2_TurboRARE' package 2 of 2: no rule of map map.json gives it a role" in r.stdout
    out = nib.load(study / "sub-phantom" / "ses-pv6" / "anat" / "sub-phantom_ses-pv6_T2w.nii.gz")
    ref = nib.load(realdata / "bruker_paravision_phantom" / "reference_nifti" / "4_1_T2_TurboRARE_3D" / "1.nii.gz")
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.affine, ref.affine, atol=0.01)  # the same voxel centres, within 0.01 mm
    np.testing.assert_allclose(out.get_fdata(), ref.get_fdata(), rtol=1e-5)


def test_one_slice_package_by_map(realdata, tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"roles": {"T2w": [{"series": 3, "package": 2}]}}))
    study = tmp_path / "study"
    r = run("import", realdata / "bruker_paravision_phantom" / "study", "-o", study, "--map", mapping)
    assert r.returncode == 0, r.stderr
    (image,) = study.glob("sub-*/ses-*/anat/*_T2w.nii.gz")
    sidecar = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["SlicePlane"] == "coronal" and sidecar["BrukerScan"]["slice_package"] == 2
    assert (
        image.parent.parent.name == "ses-20160718"
        and image.parent.parent.parent.name == "sub-plateformefantomenouilleother"
    )


def _second_study_of(src, dst, date, series_number=2):
    """The real series again as another acquisition: new study (and series) UIDs, the given date."""
    dst.mkdir(parents=True)
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    for f in src.glob("*.DCM"):
        ds = pydicom.dcmread(f)
        ds.StudyDate, ds.StudyInstanceUID = date, study_uid
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, series_number
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(dst / f.name)


def test_sessions_of_one_animal_and_mixed_series(realdata, tmp_path):
    src = realdata / "ucsf_mouse_tumor_dicom"
    mixed = tmp_path / "scanner"
    shutil.copytree(src, mixed / "week0", ignore=shutil.ignore_patterns("LICENSE"))
    _second_study_of(src, mixed / "later" / "week1", "20150401")
    study = tmp_path / "study"
    r = run("import", mixed, "-o", study)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (study / "sub-MS370").glob("ses-*")) == ["ses-20150325", "ses-20150401"]
    r = run("import", mixed, "-o", tmp_path / "other", "--session", "one")
    assert r.returncode == 2 and "--session names one study date but the input holds 2" in r.stderr
    # two T2w series of one session, mixed in one folder: refused, naming both
    _second_study_of(src, mixed / "week0" / "repeat", "20150325", series_number=7)
    for f in (mixed / "week0" / "repeat").glob("*.DCM"):
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = pydicom.dcmread(next(src.glob("*.DCM"))).StudyInstanceUID
        ds.save_as(f)
    r = run("import", mixed / "week0", "-o", tmp_path / "third")
    assert r.returncode == 2 and "2 series could be the T2w: series 2 'T2 FSE Axial'" in r.stderr
    assert "series 7 'T2 FSE Axial'" in r.stderr and not list((tmp_path / "third").glob("**/*.nii.gz"))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"roles": {"T3w": [{"description": "x"}]}}', "names role 'T3w'; the roles are T1w, T2w, CE"),
        ('{"roles": {"T2w": [{"colour": "red"}]}}', "unknown criterion 'colour'"),
        ('{"roles": {"T2w": [{"description": "(unclosed"}]}}', "is not a regular expression"),
    ],
)
def test_a_bad_map_is_one_sentence(realdata, tmp_path, content, message):
    mapping = tmp_path / "map.json"
    mapping.write_text(content)
    r = run("import", realdata / "ucsf_mouse_tumor_dicom", "-o", tmp_path / "s", "--map", mapping)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_nifti_files_need_a_subject(realdata, tmp_path):
    t1c = realdata / "remind_mismatched_grids" / "ReMIND-022_T1c.nii.gz"
    r = run("import", t1c, "-o", tmp_path / "s")
    assert r.returncode == 2 and "names no animal: give --subject" in r.stderr
    r = run("import", t1c, "-o", tmp_path / "s", "--subject", "p22")
    assert r.returncode == 0, r.stderr
    assert "CE   <- file ReMIND-022_T1c.nii.gz" in r.stdout  # 'T1c' is a post-contrast T1w by the default map
    assert (tmp_path / "s" / "sub-p22" / "ses-01" / "anat" / "sub-p22_ses-01_ce-gd_T1w.nii.gz").is_file()


def test_not_a_scanner_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = run("import", tmp_path, "-o", tmp_path / "s")
    assert r.returncode == 2 and "is neither a DICOM folder, a ParaVision study" in r.stderr


def _truncated_paravision(realdata, tmp_path):
    study = tmp_path / "pv"
    shutil.copytree(realdata / "bruker_paravision_phantom" / "study", study)
    seq = study / "4" / "pdata" / "1" / "2dseq"
    seq.write_bytes(seq.read_bytes()[:-4096])
    return study, "4/pdata/1/2dseq holds"


def _dicom_missing_a_slice(realdata, tmp_path):
    folder = tmp_path / "dicom"
    shutil.copytree(realdata / "ucsf_mouse_tumor_dicom", folder)
    (folder / "E1325S2I20.DCM").unlink()
    return folder, "is missing 1 slice(s)"


@pytest.mark.parametrize("make", [_truncated_paravision, _dicom_missing_a_slice])
def test_a_damaged_input_is_one_sentence_and_nothing_is_written(realdata, tmp_path, make):
    source, message = make(realdata, tmp_path)
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"roles": {"T2w": [{"description": "(?i)T2"}]}}))
    study = tmp_path / "study"
    r = run("import", source, "-o", study, "--map", mapping)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not study.exists() or not any(study.rglob("*.nii.gz"))
