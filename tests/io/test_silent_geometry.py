"""The two silent-geometry cases found on main, now one clear sentence each; and sessions that lack a
sequence are read with a stand-in that says so."""

import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.scan import load_scan
from napari_hcc.io.study import find_scans


def _files(study, sub="rat01", ses="wk2"):
    return [bids.image_path(study, sub, ses, k) for k in ("T1w", "T2w", "CE")]


def test_unknown_orientation_is_refused_in_one_sentence(tiny_study, tmp_path, capsys):
    t1w, t2w, ce = _files(tiny_study)
    img = nib.load(t1w)
    bare = nib.Nifti1Image(np.asarray(img.dataobj), img.affine)
    bare.set_qform(None, code=0)
    bare.set_sform(None, code=0)
    path = tmp_path / "t1w_no_orientation.nii.gz"
    nib.save(bare, path)
    assert int(nib.load(path).header["qform_code"]) == 0 == int(nib.load(path).header["sform_code"])
    assert main(["check", "--t1w", str(path), "--t2w", str(t2w), "--ce", str(ce)]) == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1
    assert f"T1w file {path} has qform and sform codes 0: its orientation in the animal is unknown" in said


def test_a_single_slice_t1w_is_refused_not_measured(tiny_study, tmp_path):
    t1w, t2w, ce = _files(tiny_study)
    img = nib.load(t1w)
    one = nib.Nifti1Image(np.asarray(img.dataobj)[:, :, 7:8], img.affine @ np.diag([1, 1, 1, 1]))
    one.set_qform(img.affine, code=1)
    one.set_sform(img.affine, code=1)
    path = tmp_path / "t1w_one_slice.nii.gz"
    nib.save(one, path)
    with pytest.raises(InputError, match=r"has only 1 slice\(s\) .* at least 3 slices"):
        load_scan(path, t2w, ce)
    two = tmp_path / "t2w_two_slices.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(nib.load(t2w).dataobj)[:, :, 5:7], img.affine), two)
    with pytest.raises(InputError, match=r"T2w file .* has only 2 slice\(s\)"):
        load_scan(t1w, two, ce)


def test_a_session_without_ce_or_t1w_is_read_with_a_stand_in(tiny_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(tiny_study, study)
    t1w, t2w, ce = _files(study)
    ce.unlink()
    (ref,) = find_scans(t1w.parent.parent)
    scan = ref.load()
    assert scan.stand_ins == {"CE": "T1w"}
    np.testing.assert_array_equal(scan.ce, scan.t1w)
    assert "has no CE" in scan.notes[-1] and "the model reads the sequences it has" in scan.notes[-1]
    t1w.unlink()
    scan = find_scans(t2w.parent.parent)[0].load()
    assert scan.stand_ins == {"CE": "T2w", "T1w": "T2w"}
    t2w.unlink()
    with pytest.raises(InputError, match="a scan needs at least a T1w or a T2w"):
        find_scans(t2w.parent.parent)


def test_a_broken_stand_in_is_named_by_the_sequence_it_is(tmp_path):
    t2w = tmp_path / "sub-a_T2w.nii.gz"
    t2w.write_bytes(b"")  # a T2w-only session whose one file is broken: the T2w stands in for T1w and CE
    with pytest.raises(InputError, match=r"^T2w file .*sub-a_T2w\.nii\.gz is empty \(0 bytes\)\.$"):
        load_scan(t2w, t2w, t2w, stand_ins={"T1w": "T2w", "CE": "T2w"})
