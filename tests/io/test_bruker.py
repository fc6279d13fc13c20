"""Bruker ParaVision: the real phantom study read through brkraw, against the reference conversion."""

import shutil
import zipfile

import brkraw
import nibabel as nib
import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.io.bruker import open_bruker_study, read_bruker_study

REFERENCE = {1: "1_1_1_Localizer", 3: "3_1_T2_TurboRARE", 4: "4_1_T2_TurboRARE_3D"}


@pytest.fixture
def phantom(realdata):
    return realdata / "bruker_paravision_phantom"


def _reference(phantom, acq):
    ids = acq.sidecar["BrukerScan"]
    return nib.load(phantom / "reference_nifti" / REFERENCE[ids["scan"]] / f"{ids['slice_package']}.nii.gz")


def test_every_voxel_lands_where_the_reference_conversion_puts_it(phantom):
    acqs = read_bruker_study(phantom / "study")
    assert [a.name for a in acqs] == [
        "scan 1 '1_Localizer' package 1 of 3",
        "scan 1 '1_Localizer' package 2 of 3",
        "scan 1 '1_Localizer' package 3 of 3",
        "scan 3 'T2_TurboRARE' package 1 of 2",
        "scan 3 'T2_TurboRARE' package 2 of 2",
        "scan 4 'T2_TurboRARE_3D'",
    ]
    for acq in acqs:
        ref = _reference(phantom, acq)
        data = acq.read()
        assert data.shape == ref.shape
        # voxel centres in the world: ours -> the reference's voxel index, which must be whole (within 0.01 mm)
        ijk = np.indices(data.shape).reshape(3, -1).T
        world = ijk @ acq.affine[:3, :3].T + acq.affine[:3, 3]
        ref_ijk = (world - ref.affine[:3, 3]) @ np.linalg.inv(ref.affine[:3, :3]).T
        nearest = np.rint(ref_ijk).astype(int)
        back = nearest @ ref.affine[:3, :3].T + ref.affine[:3, 3]
        assert np.abs(back - world).max() < 0.01, acq.name
        assert np.all((nearest >= 0) & (nearest < ref.shape)), acq.name
        np.testing.assert_allclose(ref.get_fdata()[tuple(nearest.T)], data.ravel(), rtol=1e-5, atol=1e-6)


def test_what_the_headers_say(phantom):
    acqs = read_bruker_study(phantom / "study")
    loc, pkg1, pkg2, three_d = acqs[0], acqs[3], acqs[4], acqs[5]
    assert loc.left_out == "a 3-plane localiser" and all(a.left_out for a in acqs[:3])
    assert (pkg1.plane, pkg2.plane, three_d.plane) == ("axial", "coronal", "axial")
    assert pkg1.left_out is None and three_d.left_out is None
    s = three_d.sidecar
    assert s["MagneticFieldStrength"] == pytest.approx(7.05, abs=0.01)  # 300.33 MHz protons
    assert s["RepetitionTime"] == pytest.approx(1.8) and s["MRAcquisitionType"] == "3D"
    assert s["EchoTrainLength"] == 16 and s["PatientPosition"] == "Head_Prone"
    assert three_d.voxel_mm == pytest.approx((0.175, 0.175, 0.5))
    assert pkg1.sidecar["BrukerScan"] == {"scan": 3, "reco": 1, "slice_package": 1, "slice_packages": 2}
    assert three_d.subject == "plateforme fantome-nouille_other" and three_d.study_date == "20160718"


def test_brkraw_own_affine_is_turned_180_degrees_about_the_bore_axis(phantom):
    """The convention we follow (DICOM patient frame, as ParaVision's DICOM export and dicomifier) against
    brkraw 0.5.7's subject_ras placement of the same voxels, for this Head_Prone animal."""
    ours = read_bruker_study(phantom / "study")[5].affine
    theirs = np.asarray(brkraw.load(str(phantom / "study")).get_affine(4), dtype=float)
    np.testing.assert_allclose(np.diag([-1, -1, 1, 1]) @ theirs, ours, atol=1e-4)
    # and brkraw puts the localiser's slices 3 mm apart where VisuCorePosition says 2 mm
    loc = np.asarray(brkraw.load(str(phantom / "study")).get_affine(1)[0], dtype=float)
    assert np.linalg.norm(loc[:3, 2]) == pytest.approx(3.0)
    assert np.linalg.norm(read_bruker_study(phantom / "study")[0].affine[:3, 2]) == pytest.approx(2.0)


def test_a_zip_of_the_study_reads_the_same(phantom, tmp_path):
    archive = tmp_path / "study.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (phantom / "study").rglob("*"):
            zf.write(f, f.relative_to(phantom))
    with open_bruker_study(archive) as acqs:
        data = acqs[5].read()
    np.testing.assert_array_equal(data, read_bruker_study(phantom / "study")[5].read())


def _copy(phantom, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(phantom / "study", study)
    return study


def test_a_truncated_2dseq_is_named(phantom, tmp_path):
    study = _copy(phantom, tmp_path)
    seq = study / "4" / "pdata" / "1" / "2dseq"
    seq.write_bytes(seq.read_bytes()[:-5000])
    with pytest.raises(InputError, match=r"4/pdata/1/2dseq holds \d+ bytes .* truncated"):
        read_bruker_study(study)


def test_visu_pars_that_disagrees_with_the_data_is_named(phantom, tmp_path):
    study = _copy(phantom, tmp_path)
    visu = study / "4" / "pdata" / "1" / "visu_pars"
    text = visu.read_text(encoding="latin-1")
    assert "##$VisuCoreSize=( 3 )\n200 200 20" in text
    visu.write_text(text.replace("##$VisuCoreSize=( 3 )\n200 200 20", "##$VisuCoreSize=( 3 )\n200 200 24"), "latin-1")
    with pytest.raises(InputError, match="visu_pars describes .* 200x200x24 .*disagrees"):
        read_bruker_study(study)
