"""DICOM folders: the real rat and mouse series, and the failures a lab meets, made from them."""

import shutil

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_hcc.errors import InputError
from napari_hcc.io.dicom import open_dicom_folder
from napari_hcc.io.orientation import LPS_TO_RAS


def _copy(src, dst, edit=None, skip=()):
    """Copy a real series, editing each header (edit(ds, index) -> ds or None to drop the file)."""
    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.DCM"), key=lambda f: int(f.stem.split("I")[-1]))
    for n, f in enumerate(files):
        if n in skip:
            continue
        if edit is None:
            shutil.copy(f, dst / f.name)
            continue
        ds = pydicom.dcmread(f)
        if edit(ds, n) is not None:
            ds.save_as(dst / f.name)
    return dst


def dicom_affine(ds_first, ds_last, n: int) -> np.ndarray:
    """The RAS+ voxel-centre affine of a classic slice stack from its first and last slice, computed here from
    the headers alone (voxel i along a row, j down the columns, k the slice), to check dcm2niix against."""
    iop = np.asarray(ds_first.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds_first.PixelSpacing)
    a = np.eye(4)
    a[:3, 0] = iop[:3] * dc
    a[:3, 1] = iop[3:] * dr
    p0 = np.asarray(ds_first.ImagePositionPatient, dtype=float)
    a[:3, 2] = (np.asarray(ds_last.ImagePositionPatient, dtype=float) - p0) / (n - 1)
    a[:3, 3] = p0
    return LPS_TO_RAS @ a


def test_the_mouse_series_and_its_acquisition_record(realdata):
    with open_dicom_folder(realdata / "ucsf_mouse_tumor_dicom") as acqs:
        assert len(acqs) == 1
        (acq,) = acqs
        data = acq.read()
    assert acq.name == "series 2 'T2 FSE Axial'" and acq.left_out is None
    assert acq.shape == (256, 256, 40) and acq.plane == "axial"
    assert acq.voxel_mm == pytest.approx((0.2344, 0.2344, 2.0), abs=1e-4)
    assert (acq.subject, acq.study_date) == ("MS370", "20150325")
    s = acq.sidecar
    assert s["MagneticFieldStrength"] == 3 and s["EchoTime"] == pytest.approx(0.102168)
    assert s["RepetitionTime"] == pytest.approx(5.821) and s["FlipAngle"] == 160 and s["EchoTrainLength"] == 16
    assert s["SeriesInstanceUID"] == "1.2.840.113619.2.353.2807.1573536.27619.1427126194.522"
    assert data.dtype == np.float32 and data.max() > 1000


def test_the_coronal_rat_lands_where_its_dicom_headers_put_it(realdata):
    """dcm2niix stores the 3-D coronal series reoriented; every voxel must still sit where
    ImagePositionPatient / ImageOrientationPatient / PixelSpacing put the same DICOM pixel."""
    folder = realdata / "ucsf_rat_abdomen_dicom"
    with open_dicom_folder(folder) as (acq,):
        data = acq.read()
    assert acq.plane == "coronal" and sorted(acq.shape) == [92, 256, 256]
    headers = [pydicom.dcmread(f) for f in folder.glob("*.DCM")]
    normal = np.cross(*np.asarray(headers[0].ImageOrientationPatient, dtype=float).reshape(2, 3))
    headers.sort(key=lambda ds: float(normal @ np.asarray(ds.ImagePositionPatient, dtype=float)))
    dicom = np.stack([ds.pixel_array.T for ds in headers], axis=-1).astype(np.float32)  # (col, row, slice)
    affine = dicom_affine(headers[0], headers[-1], len(headers))
    ijk = np.indices(dicom.shape).reshape(3, -1).T[::97]
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    ours = (world - acq.affine[:3, 3]) @ np.linalg.inv(acq.affine[:3, :3]).T
    nearest = np.rint(ours).astype(int)
    assert np.abs(ours - nearest).max() * min(acq.voxel_mm) < 0.01
    np.testing.assert_allclose(data[tuple(nearest.T)], dicom[tuple(ijk.T)], rtol=1e-5)


def test_a_missing_slice_is_named_and_refused(realdata, tmp_path):
    folder = _copy(realdata / "ucsf_mouse_tumor_dicom", tmp_path / "dicom", skip=(17,))
    with (
        pytest.raises(InputError, match=r"missing 1 slice\(s\) between E1325S2I\d+\.DCM and E1325S2I\d+\.DCM"),
        open_dicom_folder(folder),
    ):
        pass


def test_unequal_slice_spacing_is_refused(realdata, tmp_path):
    def squeeze(ds, n):
        if n >= 20:  # the upper half 1.5 mm apart instead of 2
            ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) - 0.5 * (n - 19)]
        return ds

    folder = _copy(realdata / "ucsf_mouse_tumor_dicom", tmp_path / "dicom", edit=squeeze)
    with pytest.raises(InputError, match="unequal slice spacing"), open_dicom_folder(folder):
        pass


def test_a_three_plane_localiser_is_left_out(realdata, tmp_path):
    planes = ([1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1], [0, 1, 0, 0, 0, -1])

    def localiser(ds, n):
        if n >= 9:
            return None
        ds.ImageOrientationPatient = planes[n // 3]
        ds.SeriesDescription = "3-plane loc"
        return ds

    folder = _copy(realdata / "ucsf_mouse_tumor_dicom", tmp_path / "dicom", edit=localiser)
    with open_dicom_folder(folder) as (acq,):
        assert acq.left_out == "a 3-plane localiser"


def test_a_multi_echo_series_is_split_by_echo(realdata, tmp_path):
    src = realdata / "ucsf_mouse_tumor_dicom"
    _copy(src, tmp_path / "dicom")

    def second_echo(ds, n):
        ds.EchoNumbers = 2
        ds.EchoTime = 204.3
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        return ds

    _copy(src, tmp_path / "dicom" / "echo2", edit=second_echo)
    with open_dicom_folder(tmp_path / "dicom") as acqs:
        assert [a.name for a in acqs] == ["series 2 'T2 FSE Axial' echo 1 of 2", "series 2 'T2 FSE Axial' echo 2 of 2"]
        assert [a.left_out for a in acqs] == [None, None]
        assert [(a.sidecar["EchoNumber"], a.sidecar["EchoCount"]) for a in acqs] == [(1, 2), (2, 2)]
        assert [a.sidecar["EchoTime"] for a in acqs] == pytest.approx([0.102168, 0.2043])


def test_an_enhanced_multi_frame_object_reads_like_its_classic_series(realdata, tmp_path):
    """One multi-frame file (the mouse series converted to Legacy Converted Enhanced MR by highdicom):
    dcm2niix sorts its frames; the volume and its placement match the classic series."""
    src = realdata / "ucsf_mouse_tumor_dicom"
    legacy = [pydicom.dcmread(f) for f in src.glob("*.DCM")]
    for ds in legacy:  # highdicom writes little endian; give the frames that encoding
        ds.PixelData = ds.pixel_array.astype("<u2" if ds.PixelRepresentation == 0 else "<i2").tobytes()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(legacy, hd.UID(), 3, hd.UID(), 1)
    (tmp_path / "mf").mkdir()
    enhanced.save_as(tmp_path / "mf" / "multiframe.dcm")
    with open_dicom_folder(src) as (classic,), open_dicom_folder(tmp_path / "mf") as (multi,):
        assert multi.shape == classic.shape and multi.left_out is None
        np.testing.assert_allclose(multi.affine, classic.affine, atol=1e-3)
        np.testing.assert_array_equal(multi.read(), classic.read())
