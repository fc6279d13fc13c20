"""Loading scans: BIDS, three files, the original layout, the shared real files, and bad input."""

import gzip
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.scan import load_scan
from napari_hcc.io.study import bids_session, find_scans, original_animal


def _scan_files(study, sub="rat01", ses="wk2"):
    return [bids.image_path(study, sub, ses, k) for k in ("T1w", "T2w", "CE")]


def test_bids_study_session_and_file_find_the_same_scan(tiny_study):
    refs = find_scans(tiny_study)
    assert [(r.subject, r.session) for r in refs][:2] == [("rat01", "wk0"), ("rat01", "wk2")]
    assert len(refs) == 8 and refs[0].arm == "Control" and refs[0].mask is not None
    session = tiny_study / "sub-rat02" / "ses-wk2"
    assert find_scans(session) == [bids_session(session)]
    assert find_scans(_scan_files(tiny_study, "rat02")[1]) == [bids_session(session)]
    scan = bids_session(session).load()
    assert scan.shape == (160, 160, 15) and scan.spacing == pytest.approx((0.3, 0.3, 1.2))
    assert scan.orientation == "LAS" and scan.slice_axis == 2 and scan.arm == "Sorafenib"
    assert scan.channels().shape == (3, 160, 160, 15) and scan.mask.dtype == np.uint8 and not scan.notes
    # The channel order is [T1w, T2w, CE], each from its own file.
    raw = [nib.load(p).get_fdata(dtype=np.float32) for p in _scan_files(tiny_study, "rat02")]
    assert all(np.array_equal(scan.channels()[i], raw[i]) for i in range(3))


def test_original_study_layout(tiny_study, tmp_path):
    animal = tmp_path / "Sorafenib" / "R12_20240101"
    animal.mkdir(parents=True)
    t1, t2, ce = _scan_files(tiny_study, "rat02")
    shutil.copy(t1, animal / "R12_T1W_HR.nii.gz")
    shutil.copy(t2, animal / "R12_T2W_HR.nii.gz")
    shutil.copy(ce, animal / "T1W_PC_R12.nii.gz")
    shutil.copy(bids.truth_mask_path(tiny_study, "rat02", "wk2"), animal / "MASK2.nii.gz")
    refs = find_scans(tmp_path)
    assert len(refs) == 1 and refs[0] == original_animal(animal)
    ref = refs[0]
    assert (ref.arm, ref.subject, ref.session, ref.mask_kind) == ("Sorafenib", "R12", "20240101", "tumor (manual)")
    assert ref.t1w.name == "R12_T1W_HR.nii.gz" and ref.ce.name == "T1W_PC_R12.nii.gz"  # T1W_PC is not the T1w
    scan = ref.load()
    assert scan.mask.sum() > 0
    (animal / "R12_T2W_HR.nii.gz").unlink()
    with pytest.raises(InputError, match="has no T2w"):
        original_animal(animal)


def test_mismatched_real_grids_are_resampled_on_purpose_or_refused(realdata):
    d = realdata / "remind_mismatched_grids"
    t1c, t2 = d / "ReMIND-022_T1c.nii.gz", d / "ReMIND-022_T2.nii.gz"
    scan = load_scan(t1c, t2, t1c, d / "ReMIND-022_tumor_seg_on_T1c.nii.gz")
    assert scan.shape == nib.load(t1c).shape and np.allclose(scan.affine, nib.load(t1c).affine)
    assert scan.t2w.shape == scan.shape
    assert len(scan.notes) == 1 and "T2w" in scan.notes[0] and "resampled" in scan.notes[0]
    assert scan.mask.sum() == 799
    # The resampled T2 is aligned in the world: its brain sits where the T1c's brain is.
    body_t1, body_t2 = scan.t1w > np.percentile(scan.t1w, 70), scan.t2w > np.percentile(scan.t2w, 70)
    assert (body_t1 & body_t2).sum() / body_t1.sum() > 0.6
    with pytest.raises(InputError, match="different voxel grid") as err:
        load_scan(t1c, t2, t1c, on_mismatch="refuse")
    assert "ReMIND-022_T2.nii.gz" in str(err.value) and "\n" not in str(err.value)


def test_thick_las_slices_take_the_slice_axis_from_the_affine(realdata, tmp_path):
    d = realdata / "pyradiomics_brain_thick_las"
    img = d / "brain1_image.nii.gz"
    scan = load_scan(img, img, img, d / "brain1_label.nii.gz")
    assert scan.orientation == "LAS" and scan.slice_axis == 2
    assert scan.spacing == pytest.approx((0.78125, 0.78125, 6.5), rel=1e-3)
    # The same volume stored with the slice axis first: the slice axis must follow the affine.
    src = nib.load(img)
    moved = nib.Nifti1Image(np.moveaxis(src.get_fdata(), 2, 0), src.affine[:, [2, 0, 1, 3]])
    nib.save(moved, tmp_path / "slices_first.nii.gz")
    other = load_scan(*(tmp_path / "slices_first.nii.gz",) * 3)
    assert other.slice_axis == 0 and other.spacing[0] == pytest.approx(6.5)


def test_non_binary_real_mask_is_binarised_with_a_note(realdata):
    d = realdata / "totalseg_abdomen_mr"
    img = d / "example_mr_sm.nii.gz"
    scan = load_scan(img, img, img, d / "example_seg_roi_subset_mr.nii.gz")
    assert set(np.unique(scan.mask)) == {0, 1} and "labels 0, 5" in scan.notes[0]
    assert scan.orientation == "LPS"


def _bytes(path, data):
    path.write_bytes(data)
    return path


def _truncated_nifti():
    img = nib.Nifti1Image(np.random.default_rng(0).random((30, 30, 10)).astype(np.float32), np.eye(4))
    return gzip.compress(img.to_bytes())[:5000]  # a download or copy cut short


def _write(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.diag([0.3, 0.3, 1.2, 1.0]) if affine is None else affine), path)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.nii.gz", "not found"),
        (lambda p: _bytes(p / "empty.nii.gz", b""), "empty (0 bytes)"),
        (lambda p: _bytes(p / "junk.nii.gz", gzip.compress(b"not a nifti")), "could not be read as NIfTI"),
        (lambda p: _bytes(p / "cut.nii.gz", _truncated_nifti()), "could not be read as NIfTI"),
        (lambda p: _write(p / "flat.nii.gz", np.ones((20, 20), np.float32)), "is 2-D"),
        (lambda p: _write(p / "series.nii.gz", np.ones((20, 20, 5, 3), np.float32)), "is 4-D"),
        (
            lambda p: _write(
                p / "nan.nii.gz", np.where(np.eye(20)[:, :, None] > 0, np.nan, 1.0).repeat(5, 2).astype(np.float32)
            ),
            "NaN",
        ),
        (lambda p: _write(p / "blank.nii.gz", np.zeros((20, 20, 5), np.float32)), "blank"),
        (lambda p: p, "is a folder"),
    ],
)
def test_bad_input_gets_one_sentence_naming_the_file(tiny_study, tmp_path, make, message):
    bad = make(tmp_path)
    t1, t2, ce = _scan_files(tiny_study)
    with pytest.raises(InputError) as err:
        load_scan(t1, bad, ce)
    text = str(err.value)
    assert message in text and str(bad) in text and "\n" not in text and text.startswith("T2w")


def test_a_4d_file_with_one_volume_is_accepted(tmp_path):
    data = np.random.default_rng(0).random((20, 20, 5, 1)).astype(np.float32)
    p = _write(tmp_path / "one.nii.gz", data)
    assert load_scan(p, p, p).shape == (20, 20, 5)


def test_grids_that_do_not_overlap_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    a = _write(tmp_path / "a.nii.gz", rng.random((20, 20, 5)).astype(np.float32))
    far = np.diag([0.3, 0.3, 1.2, 1.0])
    far[:3, 3] = 500.0
    b = _write(tmp_path / "b.nii.gz", rng.random((20, 20, 5)).astype(np.float32), far)
    with pytest.raises(InputError, match="do not image the same region"):
        load_scan(a, b, a)


def test_a_folder_without_scans_says_what_was_expected(tmp_path):
    with pytest.raises(InputError, match="holds no scans"):
        find_scans(tmp_path)


def test_the_week_of_a_session_is_found_through_symbolic_links(tmp_path):
    """DataLad / git-annex studies hold their NIfTI files as links into an object store."""
    from napari_hcc.io.study import study_root_of, week_of

    store = tmp_path / "annex" / "objects" / "ab12"
    store.mkdir(parents=True)
    (store / "blob").write_bytes(b"not read")
    anat = tmp_path / "study" / "sub-rat07" / "ses-base" / "anat"
    anat.mkdir(parents=True)
    t1w = anat / "sub-rat07_ses-base_T1w.nii.gz"
    t1w.symlink_to(store / "blob")
    (tmp_path / "study" / "sub-rat07" / "sub-rat07_sessions.tsv").write_text(
        "session_id\tweek\nses-base\t0\nses-late\t3\n"
    )
    assert study_root_of(t1w, "rat07") == tmp_path / "study"
    assert week_of(t1w, "rat07", "base") == 0
    assert week_of(t1w, "rat07", "late") == 3
    assert week_of(store / "blob", "rat07", "base") is None  # not in a study


def test_a_sidecar_that_is_not_json_is_named_in_one_sentence(tmp_path):
    from napari_hcc.io.json_files import read_sidecar

    image = tmp_path / "sub-rat01_ses-wk2_T2w.nii.gz"
    assert read_sidecar(image) == {}  # no sidecar: nothing known
    (tmp_path / "sub-rat01_ses-wk2_T2w.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(InputError, match=r"sidecar file .*sub-rat01_ses-wk2_T2w\.json is not valid JSON"):
        read_sidecar(image)
