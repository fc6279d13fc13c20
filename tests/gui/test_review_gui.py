"""The HCC Review dock widget driven as a reader would: Run, read the panel, edit, save, cancel,
recover after a crash, walk the study, fine-tune. napari under Xvfb with real OpenGL (Mesa)."""

import hashlib
import json

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("user_folders")]

from gui_helpers import click, wait_done  # noqa: E402 - after the napari check


def docked(viewer, sample="rat_control"):
    viewer.open_sample("napari-hcc", sample)
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    return widget


def run(qtbot, widget):
    click(qtbot, widget.run_button)
    wait_done(qtbot, widget)
    assert widget.session.prediction is not None, widget.status.text()
    return widget.viewer.layers["tumor"]


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corrections_dir(user_folders, subject="rat01", session="wk2"):
    return (
        user_folders
        / "home"
        / "napari-hcc"
        / "sample-study"
        / "derivatives"
        / "corrections"
        / f"sub-{subject}"
        / f"ses-{session}"
        / "anat"
    )


def test_run_shows_the_mask_and_the_response_panel(make_napari_viewer, qtbot):
    from napari.utils import progress

    from napari_hcc.metrics import dice

    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    assert [widget.picker.boxes[r].currentText() for r in ("T1w", "T2w", "CE")] == ["T1w", "T2w", "CE"]
    bar, ranges, set_range = widget.run_panel.progress_bar, [], widget.run_panel.progress_bar.setRange
    bar.setRange = lambda low, high: (ranges.append((low, high)), set_range(low, high))
    napari_bars = []
    progress._all_instances.events.changed.connect(lambda e: napari_bars.extend(e.added))
    labels = run(qtbot, widget)
    # One progress display, the panel's bar, never an endless "busy" one (an animated bar re-composites the
    # window about 30 times a second, which slowed the run 1.7 times where OpenGL is drawn in software).
    assert ranges and all(high > 0 for _, high in ranges) and not napari_bars
    assert bar.value() == bar.maximum()
    assert not widget.edit_panel.keep_button.isEnabled()  # the gate left nothing out of this scan
    # and it moves at most every 0.3 s until the last step (each move re-composites the window)
    from napari_hcc.progress import Progress

    widget.run_panel._show_busy(True)
    widget.run_panel.show_progress(Progress(1, 4, "batch"))
    assert (bar.value(), bar.maximum()) == (0, 1)
    widget.run_panel.show_progress(Progress(4, 4, "batch"))
    assert (bar.value(), bar.maximum()) == (4, 4)
    widget.run_panel._show_busy(False)
    t1w = viewer.layers["T1w"]
    # On the source grid, shown exactly over the images.
    assert labels.data.shape == t1w.data.shape == (15, 160, 160)
    assert np.allclose(labels.scale, t1w.scale) and np.allclose(labels.affine.affine_matrix, t1w.affine.affine_matrix)
    assert dice(labels.data > 0, viewer.layers["tumor (truth)"].data > 0) > 0.85
    # The panel shows the prediction's numbers.
    p = widget.session.prediction
    bars = [widget.panel.arm_bars[a].value() for a in ("Control", "Sorafenib", "NK", "Combination")]
    assert abs(sum(bars) - 1000) <= 3 and bars[0] == max(bars)  # a Control rat: Control most likely
    volume = float((labels.data > 0).sum() * np.prod(t1w.scale))
    assert widget.panel.volume_label.text().startswith(f"{volume:.1f} mm³") and volume == pytest.approx(
        p.tumor_volume_mm3
    )
    assert f"{p.response.response_probability:.2f}" in widget.panel.response_label.text()
    assert "non-responder" in widget.panel.response_label.text()
    # on a CPU, auto runs the model's exported graph under OpenVINO, and the panel says so
    assert "Running on cpu" in widget.device_note.text() and "openvino" in widget.device_note.text()
    assert [widget.run_panel.backend_box.itemText(i) for i in range(4)] == ["auto", "torch", "openvino", "onnxruntime"]
    assert p.run.backend == "openvino" and "(openvino)" in widget.panel.model_label.text()
    assert p.response.source == "readout" and "tumor-feature readout" in widget.panel.model_label.text()
    # The mask went on screen first; the response was then read beside the rat's baseline session.
    assert not p.response.pending and p.response.sessions == ["wk0"]
    assert "response read with the rat's earlier sessions wk0" in widget.status.text()
    from dataclasses import replace

    widget.panel.show_response_reading(
        replace(p, response=replace(p.response, pending=True)), "model"
    )  # what the reader sees meanwhile
    assert widget.panel.arm_bars["Control"].text() == "…" and not widget.panel.arm_bars["Control"].isEnabled()
    assert "reading the rat's earlier sessions" in widget.panel.apoptosis_label.text()
    widget.panel.show_response_reading(p, "model")
    assert (
        widget.panel.arm_bars["Control"].isEnabled()
        and f"{p.response.apoptosis:.3f}" in widget.panel.apoptosis_label.text()
    )
    # The per-slice plot is drawn off the Qt thread and then shown: a picture with the bars' colour in it.
    qtbot.waitUntil(
        lambda: not widget.panel.slice_plot.pending and widget.panel.slice_plot.image is not None, timeout=10000
    )
    image = widget.panel.slice_plot.image
    assert image.width() >= 180 and not widget.panel.slice_plot.pixmap().isNull()
    bar_colour = {
        image.pixelColor(x, y).name() for x in range(0, image.width(), 2) for y in range(0, image.height(), 2)
    }
    assert any(
        abs(int(c[1:3], 16) - 0x7F) < 40 and abs(int(c[5:7], 16) - 0xE0) < 40 and int(c[5:7], 16) > int(c[1:3], 16) + 40
        for c in bar_colour
    )
    # Uncertain slices, least certain first; clicking one goes there.
    items = [widget.uncertain_list.item(i) for i in range(widget.uncertain_list.count())]
    assert items
    values = [p.slices.uncertainty[int(it.text().split()[1].rstrip(":"))] for it in items]
    assert values == sorted(values, reverse=True)
    widget._go_to_slice(items[0])
    assert int(round(labels.world_to_data(viewer.dims.point)[0])) == int(items[0].text().split()[1].rstrip(":"))
    # An edit re-measures the tumor.
    labels.paint((7, 20, 20), 1)
    qtbot.waitUntil(lambda: "(edited)" in widget.panel.volume_label.text(), timeout=5000)
    edited = float((labels.data > 0).sum() * np.prod(t1w.scale))
    assert edited > volume and widget.panel.volume_label.text().startswith(f"{edited:.1f}")


def test_a_baseline_scan_says_its_arm_reading_means_nothing(make_napari_viewer, qtbot):
    from napari_hcc.gui.scan_layers import show_scan
    from napari_hcc.io.study import bids_session
    from napari_hcc.io.user_paths import sample_study

    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    run(qtbot, widget)  # week 2: a treatment reading, no warning
    assert widget.panel.baseline_label.isHidden() and all(b.isEnabled() for b in widget.panel.arm_bars.values())
    show_scan(viewer, bids_session(sample_study() / "sub-rat01" / "ses-wk0").load())
    run(qtbot, widget)
    p = widget.session.prediction
    assert (p.session, p.week, p.before_treatment) == ("wk0", 0, True)
    assert not widget.panel.baseline_label.isHidden() and "before treatment" in widget.panel.baseline_label.text()
    assert not any(b.isEnabled() for b in widget.panel.arm_bars.values())
    assert "not a response reading" in widget.panel.response_label.text()
    assert (
        "baseline scan (week 0, before treatment)" in widget.status.text() and "most likely" not in widget.status.text()
    )


def test_save_twice_keeps_both_versions_on_the_source_grid(make_napari_viewer, qtbot, user_folders):
    from napari_hcc.plugin.sample import sample_scan_ref

    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    labels = run(qtbot, widget)
    labels.paint((7, 20, 20), 1)
    record = widget.save_correction()
    folder = corrections_dir(user_folders)
    v1 = folder / "sub-rat01_ses-wk2_desc-correction001_mask.nii.gz"
    assert record.mask == v1 and v1.exists() and (folder / "sub-rat01_ses-wk2_desc-prediction001_mask.nii.gz").exists()
    side = json.loads((folder / "sub-rat01_ses-wk2_desc-correction001_mask.json").read_text())
    assert side["version"] == 1 and side["model"].startswith("hcc-unetpp-effb0@")
    assert set(side["sources"]) == {"T1w", "T2w", "CE"} and all(
        len(s["sha256"]) == 64 for s in side["sources"].values()
    )
    assert side["voxels_added"] > 0 and side["voxels_removed"] == 0 and 0.9 < side["dice_prediction_vs_correction"] < 1
    src = nib.load(sample_scan_ref("Control").t1w)
    saved = nib.load(v1)
    assert saved.shape == src.shape and np.array_equal(saved.affine, src.affine)
    assert int(np.asarray(saved.dataobj).sum()) == int((labels.data > 0).sum())
    first = sha(v1)
    labels.paint((7, 140, 140), 1)
    widget.save_correction()
    v2 = folder / "sub-rat01_ses-wk2_desc-correction002_mask.nii.gz"
    assert v2.exists() and sha(v1) == first
    assert json.loads((folder / "sub-rat01_ses-wk2_desc-correction002_mask.json").read_text())["previous_version"] == 1
    assert int(np.asarray(nib.load(v2).dataobj).sum()) > int(np.asarray(nib.load(v1).dataobj).sum())
    assert "version 2" in widget.status.text()
    # The installed sample study is untouched: corrections went to the user's working copy.
    assert not (sample_scan_ref("Control").t1w.parents[3] / "derivatives" / "corrections").exists()


def test_an_empty_mask_is_saved_only_after_confirmation(make_napari_viewer, qtbot, user_folders):
    from napari_hcc.gui import mask_tools

    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    labels = run(qtbot, widget)
    mask_tools.apply_mask(labels, np.zeros_like(labels.data))
    asked = []
    widget._confirm = lambda q: asked.append(q) or False
    assert widget.save_correction() is None and asked and "empty" in asked[0]
    assert not corrections_dir(user_folders).exists() or not any(corrections_dir(user_folders).glob("*.nii.gz"))
    widget._confirm = lambda q: True
    record = widget.save_correction()
    assert record.version == 1 and record.provenance["voxels"] == 0


def test_helpers_edit_the_mask_and_undo_in_one_step(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    labels = run(qtbot, widget)
    base = labels.data.copy()
    # Interpolate between two drawn slices.
    labels.brush_size = 6
    labels.paint((1, 30, 30), 1)
    labels.paint((5, 30, 30), 1)
    drawn = labels.data.copy()
    click(qtbot, next(b for b in widget.findChildren(type(widget.run_button)) if b.text() == "Interpolate"))
    assert all(labels.data[k, 30, 30] for k in (2, 3, 4)) and not drawn[3, 30, 30]
    labels.undo()
    assert np.array_equal(labels.data, drawn)
    # Remove a small island.
    labels.brush_size = 2
    labels.paint((7, 150, 10), 1)
    assert labels.data[7, 150, 10]
    widget.island_mm3.setValue(5.0)
    widget.remove_islands()
    assert not labels.data[7, 150, 10]
    labels.undo()
    assert labels.data[7, 150, 10]
    # Fill a hole punched into the tumor.
    k = int(np.argmax((base > 0).reshape(15, -1).sum(1)))
    r, c = np.argwhere(base[k] > 0).mean(0).round().astype(int)
    labels.brush_size = 3
    labels.paint((k, r, c), 0)
    assert not labels.data[k, r, c]
    widget.fill_holes()
    assert labels.data[k, r, c]
    labels.undo()
    assert not labels.data[k, r, c]


def test_the_response_is_read_again_from_the_corrected_mask(make_napari_viewer, qtbot):
    from napari_hcc.inference.reread import reread_response
    from napari_hcc.plugin.layers import layer_source

    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    labels = run(qtbot, widget)
    before = widget.session.prediction
    assert "of your edited mask" not in widget.panel.model_label.text()
    labels.data = (viewer.layers["tumor (truth)"].data > 0).astype(labels.data.dtype)  # the reviewer's outline
    click(qtbot, widget.edit_panel.reread_button)
    wait_done(qtbot, widget)
    after = widget.session.prediction
    assert after.response.mask_source == "edited" and after.response.sessions == ["wk0"]
    assert "of your edited mask" in widget.panel.model_label.text()
    truth_mm3 = float((labels.data > 0).sum() * np.prod(labels.scale))
    assert widget.panel.volume_label.text() == f"{truth_mm3:.1f} mm³ (edited)"  # measured on the mask read
    assert "response read again from the edited mask" in widget.status.text()
    # what the panel shows is the core's reading of the mask on screen, beside the rat's baseline
    mask, _, _ = layer_source(labels)
    engine = next(iter(widget.session.engines.values()))
    expected = reread_response(engine, before, widget.session.scan, mask.astype(np.uint8)).response
    np.testing.assert_allclose(after.response.arm_probabilities, expected.arm_probabilities, atol=1e-9)
    bars = [widget.panel.arm_bars[a].value() for a in ("Control", "Sorafenib", "NK", "Combination")]
    assert bars == [round(1000 * p) for p in expected.arm_probabilities]
    assert np.array_equal(after.mask, before.mask)  # the model's own mask stays what a correction is compared with


def test_cancel_stops_the_run_and_changes_nothing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    widget.tta_box.setChecked(True)
    click(qtbot, widget.run_button)
    click(qtbot, widget.cancel_button)
    wait_done(qtbot, widget)
    assert "tumor" not in viewer.layers and widget.session.prediction is None
    assert "cancelled" in widget.status.text()
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()
    run(qtbot, widget)  # and the next run works
    assert "tumor" in viewer.layers


def test_unsaved_edits_are_offered_back_after_a_crash(make_napari_viewer, qtbot, user_folders):
    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    labels = run(qtbot, widget)
    labels.paint((7, 20, 20), 1)
    edited = labels.data.copy()
    qtbot.waitUntil(lambda: any((user_folders / "recovery").glob("*.npz")), timeout=5000)
    # "Reopen" the scan in a new session: the widget offers the edits back.
    viewer2 = make_napari_viewer(show=True)
    widget2 = docked(viewer2)
    qtbot.waitUntil(lambda: widget2.banner.isVisible(), timeout=5000)
    widget2.restore_recovery()
    assert np.array_equal(viewer2.layers["tumor"].data, edited)
    assert not widget2.banner.isVisible()
    # After a save the recovery file is gone.
    widget2.save_correction()
    assert not any((user_folders / "recovery").glob("*.npz"))


def test_next_scan_walks_the_study_least_certain_first(make_napari_viewer, qtbot):
    from napari_hcc.io.study import find_scans
    from napari_hcc.io.user_paths import sample_study

    # review_order itself is tested in tests/review; here: the widget ranks every scan of the study,
    # least certain first, and "Next scan" walks that ranking (one pass of the network over the study)
    study = {(r.subject, r.session) for r in find_scans(sample_study(), with_truth=False)}
    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)  # sub-rat01 ses-wk2
    run(qtbot, widget)
    seen = [("rat01", "wk2")]
    for _ in range(2):
        click(qtbot, widget.next_button)
        qtbot.waitUntil(
            lambda: (
                widget.worker is None
                and widget.session.order is not None
                and (widget.session.scan.subject, widget.session.scan.session) != seen[-1]
                and widget.session.prediction is not None
            ),
            timeout=120_000,
        )
        meta = viewer.layers["T1w"].metadata["napari_hcc"]["scan"]
        seen.append((meta["subject"], meta["session"]))
        assert "tumor" in viewer.layers and len(viewer.layers) == 5  # the previous scan's layers are gone
    order = widget.session.order
    assert {(s.ref.subject, s.ref.session) for s in order} == study and len(order) == len(study)
    uncertainty = [s.uncertainty for s in order]
    assert all(s.error is None and not s.reviewed for s in order)
    assert uncertainty == sorted(uncertainty, reverse=True) and uncertainty[0] > uncertainty[-1]
    walk = [(s.ref.subject, s.ref.session) for s in order if (s.ref.subject, s.ref.session) != ("rat01", "wk2")][:2]
    assert seen[1:] == walk


def test_fine_tuning_from_corrections_makes_a_new_model(make_napari_viewer, qtbot, user_folders, monkeypatch):
    from napari_hcc.gui.scan_layers import show_scan
    from napari_hcc.training.adaptation import ADAPTATION

    monkeypatch.setitem(ADAPTATION, "min_steps", 2)  # the real step count is for real use; 2 keep the test short
    from napari_hcc.model.catalog import default_model_folder
    from napari_hcc.plugin.sample import sample_scan_ref

    shipped = default_model_folder() / "model.safetensors"
    before = sha(shipped)
    viewer = make_napari_viewer(show=True)
    widget = docked(viewer)
    run(qtbot, widget).paint((7, 20, 20), 1)
    widget.save_correction()
    show_scan(viewer, sample_scan_ref("Sorafenib").load())
    run(qtbot, widget)
    widget.save_correction()
    panel = widget.finetune
    panel.epochs.setValue(1)
    click(qtbot, panel.start_button)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=300_000)
    result = panel.result
    assert result is not None and not result.cancelled, panel.status.text()
    assert result.model_dir.parent == user_folders / "models" and (result.model_dir / "model.safetensors").exists()
    assert result.independent and len(result.held_out_scans) == 1 and len(result.trained_scans) == 1
    assert f"{result.mean_before:.3f} before → {result.mean_after:.3f} after" in panel.status.text()
    assert json.loads((result.model_dir / "finetune.json").read_text())["dice_after"] == result.dice_after
    card = json.loads((result.model_dir / "model.json").read_text())
    trained = card["training"]  # the adaptation setting
    assert len(trained["held_out_rats"]) == 1 and trained["held_out_rats"][0] not in trained["train_rats"]
    assert "sequence_choice" not in card["input"]  # the choice of sequences is opt-in (train --choose-sequences)
    assert trained["freeze_encoder"] and trained["freeze_norm"] and trained["augment"]["p_contrast"] == 0.0
    assert trained["sequence_dropout"] == 0.0 and trained["lr"] == 1e-4
    assert sha(shipped) == before  # the shipped model is never overwritten
    click(qtbot, panel.use_button)
    assert widget.state.model_spec == str(result.model_dir)
    labels = run(qtbot, widget)
    assert widget.session.prediction.run.model_id == result.new_model and labels.data.any()
