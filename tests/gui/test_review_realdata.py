"""The HCC Review widget on real scans nobody on this project made (../shared/realdata): thick LAS
slices, and sequences on different oblique grids. The masks mean nothing on brains; the geometry,
the messages and the files are what is tested."""

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("user_folders")]

from gui_helpers import click, wait_done  # noqa: E402 - after the napari check


def _open(viewer, path, times=1):
    for _ in range(times):
        viewer.open(str(path), plugin="napari-hcc")


def _choose(widget, names):
    widget.picker.refresh()
    for role, name in zip(("T1w", "T2w", "CE"), names):
        box = widget.picker.boxes[role]
        box.setCurrentIndex(box.findText(name))


def test_thick_las_slices_get_a_mask_on_their_own_grid(make_napari_viewer, qtbot, realdata):
    viewer = make_napari_viewer(show=True)
    _open(viewer, realdata / "pyradiomics_brain_thick_las" / "brain1_image.nii.gz", times=3)
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    names = [layer.name for layer in viewer.layers]
    _choose(widget, names)
    click(qtbot, widget.run_button)
    wait_done(qtbot, widget)
    assert widget.session.prediction is not None, widget.status.text()
    image, tumor = viewer.layers[names[0]], viewer.layers["tumor"]
    assert tumor.data.shape == image.data.shape == (25, 256, 256)
    np.testing.assert_allclose(tumor.scale, image.scale)
    np.testing.assert_allclose(tumor.affine.affine_matrix, image.affine.affine_matrix)
    assert "resampled" in widget.status.text()  # the 200 mm field of view is said, not hidden
    # Not a BIDS study: no training set to save into, and the reader is told where to save instead.
    click(qtbot, widget.save_button)
    assert "not part of a BIDS study" in widget.status.text() and "Save Selected Layers" in widget.status.text()


def test_sequences_on_different_grids_are_refused_in_one_sentence(make_napari_viewer, qtbot, realdata):
    folder = realdata / "remind_mismatched_grids"
    viewer = make_napari_viewer(show=True)
    _open(viewer, folder / "ReMIND-022_T1c.nii.gz", times=2)
    _open(viewer, folder / "ReMIND-022_T2.nii.gz")
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    _choose(widget, ["ReMIND-022_T1c", "ReMIND-022_T2", "ReMIND-022_T1c [1]"])
    click(qtbot, widget.run_button)
    text = widget.status.text()
    assert "grid" in text and "ReMIND-022_T2" in text and text.count(". ") <= 1, text
    assert widget.worker is None and "tumor" not in viewer.layers
    qtbot.waitUntil(lambda: bool(widget.session.engines), timeout=60_000)  # let the model finish loading before closing
