"""napari on scanner data: a DICOM folder opened directly, the review widget run on it and its correction
saved (with a DICOM SEG), the Study browser on a ParaVision study, and the "Align" option."""

import numpy as np
import pydicom
import pytest

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("user_folders")]

from gui_helpers import click, wait_done  # noqa: E402 - after the napari check
from napari_hcc.importing.scanner_folders import imported_study_folder  # noqa: E402
from napari_hcc.simulate.cohort import simulate_study  # noqa: E402


def test_a_dicom_folder_opens_runs_and_saves_a_correction_with_its_seg(make_napari_viewer, qtbot, realdata):
    folder = realdata / "ucsf_mouse_tumor_dicom"
    viewer = make_napari_viewer(show=True)
    viewer.open(str(folder), plugin="napari-hcc")
    assert [layer.name for layer in viewer.layers] == ["T2w"]  # a T2w-only scan: no layers for what it lacks
    assert viewer.layers["T2w"].data.shape == (40, 256, 256)
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    widget.picker.refresh()
    assert {role: box.currentText() for role, box in widget.picker.boxes.items()} == {
        "T1w": "none",
        "T2w": "T2w",
        "CE": "none",
    }
    click(qtbot, widget.run_button)
    wait_done(qtbot, widget, timeout=300_000)
    assert widget.session.prediction is not None, widget.status.text()
    notes = " ".join(widget.session.prediction.notes)
    assert "read T2w (the session has no T1w or CE" in notes or "cannot be read" in notes
    tumor = viewer.layers["tumor"]
    # The anatomy gate leaves most of this mouse's call out (its liver is not where a rat's is): shown in
    # cyan on the tumor's grid, said in the notes, and kept into the tumor layer with one button.
    left_out = viewer.layers["left out: off the liver"]
    assert left_out.data.shape == tumor.data.shape and left_out.data.any() and not (left_out.data & tumor.data).any()
    assert "shown in cyan by the review widget" in notes
    before = int((tumor.data > 0).sum())
    click(qtbot, widget.edit_panel.keep_button)
    assert int((tumor.data > 0).sum()) == before + int(left_out.data.sum())
    assert f"{int(left_out.data.sum())} voxels changed" in widget.edit_panel.edit_label.text()
    edited = np.zeros_like(tumor.data)
    edited[20:24, 100:140, 90:130] = 1  # the reader draws the tumor the model missed
    tumor.data = edited
    click(qtbot, widget.save_button)
    study = imported_study_folder(folder)
    (seg_path,) = study.glob("derivatives/corrections/sub-MS370/ses-20150325/anat/*_desc-correction001_seg.dcm")
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
    assert seg.pixel_array.sum() == edited.sum()  # every drawn voxel is in the SEG, on the source slices
    viewer.screenshot(str(study / "screenshot.png"), canvas_only=False)


def test_the_study_browser_lists_a_dicom_folder_and_explains_a_paravision_refusal(make_napari_viewer, realdata):
    viewer = make_napari_viewer()
    _, browser = viewer.window.add_plugin_dock_widget("napari-hcc", "Study browser")
    browser.set_study(realdata / "ucsf_mouse_tumor_dicom")
    assert browser.table.rowCount() == 1 and browser.table.item(0, 0).text() == "MS370"
    browser.set_study(realdata / "bruker_paravision_phantom" / "study")
    assert browser.table.rowCount() == 0
    text = browser.status.text()
    assert "3 series could be the T2w" in text and "napari-hcc import" in text and "--map" in text


def test_align_shows_the_aligned_sequences(make_napari_viewer, qtbot, tmp_path):
    study = simulate_study(tmp_path / "moved", 1, (2,), seed=5, motion_mm=2.0, workers=2)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(study / "sub-rat02" / "ses-wk2"), plugin="napari-hcc")
    before = np.array(viewer.layers["T2w"].data, copy=True)
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    widget.picker.refresh()
    widget.align_box.setChecked(True)
    click(qtbot, widget.run_button)
    wait_done(qtbot, widget, timeout=300_000)
    prediction = widget.session.prediction
    assert prediction is not None, widget.status.text()
    assert sum("registration (Mattes MI, SimpleITK) found" in n for n in prediction.notes) == 2
    assert not np.array_equal(viewer.layers["T2w"].data, before)  # the layer shows what the model read
    assert set(widget.session.scan.alignment) == {"T2w", "CE"}


def test_the_study_browser_opens_a_rats_weeks_aligned(make_napari_viewer, qtbot, tiny_study):
    viewer = make_napari_viewer(show=True)
    _, browser = viewer.window.add_plugin_dock_widget("napari-hcc", "Study browser")
    browser.set_study(tiny_study)
    row = next(r for r, ref in enumerate(browser.refs) if (ref.subject, ref.session) == ("rat02", "wk2"))
    browser.table.selectRow(row)
    click(qtbot, browser.weeks_button)
    qtbot.waitUntil(lambda: browser.worker is None, timeout=120_000)
    week0 = [layer for layer in viewer.layers if layer.name.startswith("T1w ses-wk0")]
    assert len(week0) == 1 and week0[0].name in ("T1w ses-wk0 (aligned)", "T1w ses-wk0 (as acquired)")
    assert week0[0].data.shape == viewer.layers["T1w"].data.shape and not week0[0].visible
    np.testing.assert_allclose(week0[0].affine.affine_matrix, viewer.layers["T1w"].affine.affine_matrix)
    assert "tumor ses-wk0" in " ".join(layer.name for layer in viewer.layers)
    assert "registration (Mattes MI, SimpleITK) found" in browser.status.text()
