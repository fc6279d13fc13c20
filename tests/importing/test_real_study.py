"""An imported real study through the rest of the pipeline: predict, DICOM SEG out, and read back."""

import json
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_hcc.cli import main
from napari_hcc.importing.importer import import_study
from napari_hcc.io.dicom_seg import write_dicom_seg
from napari_hcc.model.loading import default_model


@pytest.fixture(scope="module")
def mouse_study(realdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("imported") / "study"
    import_study([realdata / "ucsf_mouse_tumor_dicom"], out)
    return out


def _seg_volume(seg_path, nifti_shape, nifti_affine):
    """The SEG's frames placed by the SEG's own geometry (per-frame positions, shared orientation and
    spacing) on the NIfTI grid: an independent check of where each SEG pixel lies."""
    seg = pydicom.dcmread(seg_path)
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    frames = seg.pixel_array.reshape(-1, seg.Rows, seg.Columns)
    out = np.zeros(nifti_shape, dtype=np.uint8)
    inverse = np.linalg.inv(nifti_affine)
    r, c = np.nonzero(np.ones((seg.Rows, seg.Columns)))
    for frame, item in zip(frames, seg.PerFrameFunctionalGroupsSequence):
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        lps = ipp + np.outer(c * dc, iop[:3]) + np.outer(r * dr, iop[3:])
        ras = lps * [-1, -1, 1]
        ijk = np.rint(ras @ inverse[:3, :3].T + inverse[:3, 3]).astype(int)
        out[tuple(ijk.T)] = frame[r, c]
    return out, seg


def test_dicom_seg_lies_on_the_source_series(mouse_study, realdata, tmp_path):
    image = next(mouse_study.glob("sub-*/ses-*/anat/*_T2w.nii.gz"))
    img = nib.load(image)
    mask = np.zeros(img.shape, np.uint8)
    mask[90:150, 70:130, 12:21] = 1  # a box, and one lone voxel near a corner: both must land where they were
    mask[3, 250, 38] = 1
    files = json.loads(image.with_name(image.name.replace(".nii.gz", ".json")).read_text())["SourceDicomFiles"]
    path = write_dicom_seg(mask, img.affine, [Path(f) for f in files], tmp_path / "m.dcm")
    placed, seg = _seg_volume(path, img.shape, img.affine)
    np.testing.assert_array_equal(placed, mask)
    series = pydicom.dcmread(files[0], stop_before_pixels=True)
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == series.SeriesInstanceUID
    assert len(referenced.ReferencedInstanceSequence) == 40
    assert seg.StudyInstanceUID == series.StudyInstanceUID and seg.FrameOfReferenceUID == series.FrameOfReferenceUID
    assert hd.seg.segread(path).get_segment_description(1).segment_label == "tumor"


def test_predict_runs_on_the_imported_real_study_and_writes_its_seg(mouse_study, tmp_path, capsys):
    out = tmp_path / "pred"
    assert main(["predict", "-i", str(mouse_study), "-o", str(out), "--dicom-seg"]) == 0
    said = capsys.readouterr().err
    assert "read T2w (the session has no T1w or CE: the model reads that subset" in said and "stand" not in said
    reads = default_model().card.readout["subsets"]["T2w"]["reads_response"]
    assert ("is not read from T2w" in said) != reads
    (mask_path,) = out.glob("sub-MS370/ses-20150325/anat/*_desc-tumor_mask.nii.gz")
    (seg_path,) = out.glob("sub-MS370/ses-20150325/anat/*_desc-tumor_seg.dcm")
    mask = nib.load(mask_path)
    placed, _ = _seg_volume(seg_path, mask.shape, mask.affine)
    np.testing.assert_array_equal(placed, np.asarray(mask.dataobj))
    row = (out / "predictions.csv").read_text().splitlines()[1].split(",")
    header = (out / "predictions.csv").read_text().splitlines()[0].split(",")
    values = dict(zip(header, row))
    # read only where the card's T2w readout can carry it: otherwise no number that looks trustworthy
    assert (values["p_control"] != "") == reads and (values["predicted_arm"] != "") == reads
