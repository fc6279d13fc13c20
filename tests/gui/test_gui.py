"""napari under Xvfb with a real viewer: the sample from the plugin, the docked Study browser, saving."""

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui


def test_sample_opens_from_the_plugin_menu(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-hcc", "rat_control")
    assert [layer.name for layer in viewer.layers] == ["T1w", "T2w", "CE", "tumor (truth)"]
    assert [type(layer).__name__ for layer in viewer.layers] == ["Image", "Image", "Image", "Labels"]
    for layer in viewer.layers:
        assert layer.data.shape == (15, 160, 160)
        assert tuple(layer.scale) == pytest.approx((1.2, 0.3, 0.3))
    assert viewer.layers["tumor (truth)"].data.sum() > 100
    # The overlay is in millimetres: all layers span the same world extent (15 x 1.2 mm slices).
    extent = viewer.layers["T1w"].extent.world
    assert np.allclose(extent, viewer.layers["tumor (truth)"].extent.world)
    assert extent[1, 0] - extent[0, 0] == pytest.approx(14 * 1.2)
    # The canvas really renders (Mesa OpenGL under Xvfb): the image is not blank.
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.shape[2] == 4 and shot[..., :3].std() > 10


def test_study_browser_docks_lists_and_opens_a_scan(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    widget, browser = viewer.window.add_plugin_dock_widget("napari-hcc", "Study browser")
    assert browser.table.rowCount() == 8
    assert [browser.table.item(r, 2).text() for r in range(8)][::2] == ["Control", "Sorafenib", "NK", "Combination"]
    browser.table.selectRow(5)
    qtbot.mouseClick(browser.open_button, qtbot_button())
    assert [layer.name for layer in viewer.layers] == ["T1w", "T2w", "CE", "tumor (truth)"]
    assert viewer.layers["T1w"].metadata["napari_hcc"]["scan"]["arm"] == "NK"
    # Opening another scan replaces the first one's layers rather than piling them up.
    browser.open_row(0)
    assert len(viewer.layers) == 4 and viewer.layers["T1w"].metadata["napari_hcc"]["scan"]["session"] == "wk0"
    # The viewer opens on the slice with the most tumor.
    labels = viewer.layers["tumor (truth)"]
    k = int(np.round(labels.world_to_data(viewer.dims.point)[0]))
    assert labels.data[k].sum() == labels.data.reshape(labels.data.shape[0], -1).sum(axis=1).max()


def test_an_edited_mask_saves_on_the_source_grid(make_napari_viewer, tmp_path):
    from napari_hcc.plugin.sample import sample_scan_ref

    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-hcc", "rat_nk")
    labels = viewer.layers["tumor (truth)"]
    labels.data[7, 10:20, 10:20] = 1  # an edit, as the brush would make
    out = tmp_path / "corrected.nii.gz"
    labels.save(str(out), plugin="napari-hcc")
    src = nib.load(sample_scan_ref("NK").t1w)
    saved = nib.load(out)
    assert saved.shape == src.shape and np.array_equal(saved.affine, src.affine)
    assert int(np.asarray(saved.dataobj).sum()) == int(labels.data.sum())


def qtbot_button():
    from qtpy.QtCore import Qt

    return Qt.MouseButton.LeftButton
