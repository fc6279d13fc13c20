"""Masks go back on the exact source grid: display frame round trip and the NIfTI writer."""

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.io.orientation import from_display, to_display
from napari_hcc.plugin.layers import scan_layers, volume_layer
from napari_hcc.plugin.reader import napari_get_reader
from napari_hcc.plugin.writer import write_labels


def _affine(kind):
    if kind == "RAS":
        return np.diag([0.3, 0.3, 1.2, 1.0])
    if kind == "LAS":
        return np.diag([-0.78, 0.78, 6.5, 1.0]) + np.array([[0, 0, 0, 90], [0, 0, 0, -80], [0, 0, 0, 10], [0, 0, 0, 0]])
    if kind == "thick_first":  # slices along the first voxel axis
        return np.array([[0, 0.3, 0, 1.0], [0, 0, 0.3, 2.0], [1.5, 0, 0, 3.0], [0, 0, 0, 1]])
    if kind == "oblique":
        c, s = np.cos(0.35), np.sin(0.35)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.array(
            [[1, 0, 0], [0, np.cos(0.2), -np.sin(0.2)], [0, np.sin(0.2), np.cos(0.2)]]
        )
        a = np.eye(4)
        a[:3, :3] = rot @ np.diag([0.4, 0.5, 1.3])
        a[:3, 3] = [-12, 4, 30]
        return a
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["RAS", "LAS", "thick_first", "oblique"])
def test_display_round_trip_is_exact(kind):
    data = np.random.default_rng(1).integers(0, 5, size=(13, 11, 7)).astype(np.uint8)
    shown, world = to_display(data, _affine(kind))
    assert np.allclose(
        np.sort(np.linalg.norm(world[:3, :3], axis=0)), np.sort(np.linalg.norm(_affine(kind)[:3, :3], axis=0))
    )
    back = from_display(shown, _affine(kind), data.shape)
    assert np.array_equal(back, data)
    # A voxel's world position is the same in both frames.
    ijk = np.array([3, 4, 5])
    marker = np.zeros_like(data)
    marker[tuple(ijk)] = 1
    m_shown, _ = to_display(marker, _affine(kind))
    pos_shown = np.append(np.argwhere(m_shown)[0], 1.0)
    ras = np.linalg.inv(np.array([[0, 0, 1, 0], [0, -1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]])) @ world @ pos_shown
    assert np.allclose(ras[:3], (_affine(kind) @ np.append(ijk, 1.0))[:3])


@pytest.mark.parametrize("kind", ["RAS", "LAS", "thick_first", "oblique"])
def test_writer_puts_an_edited_mask_on_the_source_grid(tmp_path, kind):
    rng = np.random.default_rng(2)
    img = nib.Nifti1Image(rng.random((13, 11, 7)).astype(np.float32) + 1, _affine(kind))
    img.header.set_xyzt_units("mm", "sec")
    src = tmp_path / f"{kind}_T1w.nii.gz"
    nib.save(img, src)
    layer_data, kwargs, _ = napari_get_reader(str(src))(str(src))[0]
    edited = np.zeros(layer_data.shape, dtype=np.uint8)
    edited[1:3, 2:5, 3:6] = 1  # a user paints in the display frame
    out = write_labels(str(tmp_path / "mask"), edited, {"metadata": kwargs["metadata"]})[0]
    saved = nib.load(out)
    assert out.endswith(".nii.gz") and saved.shape == img.shape
    assert np.array_equal(saved.affine, nib.load(src).affine)
    assert saved.header["sform_code"] == nib.load(src).header["sform_code"]
    assert saved.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(saved.dataobj), from_display(edited, img.affine, img.shape))
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary file left


def test_writer_refuses_a_mask_of_the_wrong_shape(tmp_path, tiny_study):
    from napari_hcc.io.study import bids_session

    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    _, kwargs, _ = scan_layers(scan)[0]
    with pytest.raises(InputError, match="not on the source grid"):
        write_labels(str(tmp_path / "m.nii.gz"), np.zeros((3, 4, 5), np.uint8), {"metadata": kwargs["metadata"]})
    assert not list(tmp_path.iterdir())


def test_scan_layers_overlay_in_millimetres(tiny_study):
    from napari_hcc.io.study import bids_session

    layers = scan_layers(bids_session(tiny_study / "sub-rat03" / "ses-wk2").load())
    assert [kw["name"] for _, kw, _ in layers] == ["T1w", "T2w", "CE", "tumor (truth)"]
    assert [kind for *_, kind in layers] == ["image", "image", "image", "labels"]
    for data, kw, _ in layers:
        assert data.shape == (15, 160, 160)  # slices first: axial slices on napari's slider
        assert kw["scale"] == pytest.approx((1.2, 0.3, 0.3))
        assert np.allclose(kw["affine"], layers[0][1]["affine"])
    lo, hi = layers[0][1]["contrast_limits"]
    assert 0 <= lo < hi


def test_single_nifti_files_open_as_image_or_labels(realdata):
    d = realdata / "totalseg_abdomen_mr"
    from napari_hcc.io.volume import load_volume

    data, kw, kind = napari_get_reader(str(d / "example_seg_roi_subset_mr.nii.gz"))(
        str(d / "example_seg_roi_subset_mr.nii.gz")
    )[0]
    assert kind == "labels" and set(np.unique(data)) == {0, 5}
    _, _, kind = volume_layer(load_volume(d / "example_mr_sm.nii.gz"), as_labels=False)
    assert kind == "image"
    assert napari_get_reader("/nonexistent/file.tif") is None
