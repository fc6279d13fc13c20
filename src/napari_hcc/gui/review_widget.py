"""The "HCC Review" dock widget: pick the sequences, run the model in the background, edit the mask,
read the response panel, save the correction into the training set, walk the study, fine-tune.

Thin by design: the work is done by core functions (inference, trainingset, recovery, review_queue,
finetune); this file turns their results into layers and labels and the reader's clicks into calls.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
from napari import layers
from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QThreadPool, QTimer
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QShortcut,
    QVBoxLayout,
    QWidget,
)

from napari_hcc.errors import InputError
from napari_hcc.gui import mask_tools
from napari_hcc.gui.finetune_panel import FineTunePanel
from napari_hcc.gui.layer_picker import LayerPicker
from napari_hcc.gui.response_panel import ResponsePanel, theme_colors
from napari_hcc.gui.scan_layers import show_scan
from napari_hcc.gui.workers import predict_scan, summarize, warm_up
from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.inference.prediction import BASELINE_NOTE
from napari_hcc.model.catalog import list_models
from napari_hcc.plugin.layers import META_KEY, labels_layer, layer_scan_meta, layer_source, scan_from_layers
from napari_hcc.review import recovery
from napari_hcc.review.session import ReviewSession
from napari_hcc.review.trainingset import save_correction

TUMOR_LAYER = "tumor"
PROBABILITY_LAYER = "tumor probability"
DEVICES = ("auto", "cuda", "mps", "cpu")
SHORTCUTS = {"run": "Alt+R", "save_correction": "Alt+S", "next_scan": "Alt+N"}  # method -> key


def _button(text: str, slot, tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(slot)
    if tip:
        b.setToolTip(tip)
    return b


class ReviewWidget(QScrollArea):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session = ReviewSession()
        self.worker = None
        self.cancel_event = threading.Event()
        self._shown = threading.Event()  # set once a result is on screen (the worker then starts the sibling sessions)
        self._activity = None
        self.labels = None
        self.edited: list[int] = []
        self._build()
        self._timers()
        for method, key in SHORTCUTS.items():
            QShortcut(QKeySequence(key), self, activated=getattr(self, method), context=Qt.ShortcutContext.WindowShortcut)
        self._warm_up()
        self._recovery_timer.start()

    # -- layout ----------------------------------------------------------------------------------

    def _build(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        self.setWidget(body)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(380)

        inputs = QGroupBox("Scan and model")
        il = QVBoxLayout(inputs)
        self.picker = LayerPicker(self.viewer)
        self.picker.changed.connect(lambda: self._recovery_timer.start())
        il.addWidget(self.picker)
        self.model_box = QComboBox()
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(12)
        self._fill_models()
        self.model_box.activated.connect(self._model_chosen)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        row = QHBoxLayout()
        row.addWidget(QLabel("Model"))
        row.addWidget(self.model_box, 1)
        il.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Device"))
        row.addWidget(self.device_box, 1)
        il.addLayout(row)
        self.tta_box = QCheckBox("Test-time flips (4 passes, 4x slower)")
        self.tta_box.setToolTip("the uncertainty becomes the spread over four flipped passes instead of the entropy")
        self.probability_box = QCheckBox("Show the probability map")
        il.addWidget(self.tta_box)
        il.addWidget(self.probability_box)
        self.device_note = QLabel("")
        self.device_note.setWordWrap(True)
        il.addWidget(self.device_note)
        layout.addWidget(inputs)

        run_row = QHBoxLayout()
        self.run_button = _button(f"Run ({SHORTCUTS['run']})", self.run, "predict the tumor mask and the response")
        self.cancel_button = _button("Cancel", self.cancel)
        self.cancel_button.setEnabled(False)
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout.addLayout(run_row)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        self.status = QLabel("Open a scan (File > Open Sample > napari-hcc) and press Run.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.banner = QGroupBox("Unsaved edits found")
        bl = QVBoxLayout(self.banner)
        self.banner_label = QLabel("")
        self.banner_label.setWordWrap(True)
        br = QHBoxLayout()
        br.addWidget(_button("Restore them", self.restore_recovery))
        br.addWidget(_button("Discard", self.discard_recovery))
        bl.addWidget(self.banner_label)
        bl.addLayout(br)
        self.banner.setVisible(False)
        layout.addWidget(self.banner)

        results = QGroupBox("Response")
        rl = QVBoxLayout(results)
        self.panel = ResponsePanel(theme_colors(getattr(self.viewer, 'theme', None)))
        rl.addWidget(self.panel)
        rl.addWidget(QLabel("Least certain slices (click to go there):"))
        self.uncertain_list = QListWidget()
        self.uncertain_list.setMaximumHeight(90)
        self.uncertain_list.itemClicked.connect(self._go_to_slice)
        rl.addWidget(self.uncertain_list)
        layout.addWidget(results)

        edit = QGroupBox("Correct the mask (napari's brush, eraser and fill, plus:)")
        el = QVBoxLayout(edit)
        er = QHBoxLayout()
        er.addWidget(_button("Interpolate", self.interpolate, "fill the slices between the last two slices you edited"))
        self.island_mm3 = QDoubleSpinBox()
        self.island_mm3.setRange(0.1, 1000.0)
        self.island_mm3.setValue(1.0)
        self.island_mm3.setSuffix(" mm³")
        er.addWidget(_button("Remove islands <", self.remove_islands))
        er.addWidget(self.island_mm3)
        er.addWidget(_button("Fill holes", self.fill_holes))
        el.addLayout(er)
        self.edit_label = QLabel("Each helper is one undo step (Ctrl+Z).")
        self.edit_label.setWordWrap(True)
        el.addWidget(self.edit_label)
        sr = QHBoxLayout()
        self.annotator = QLineEdit()
        self.annotator.setPlaceholderText("annotator (default: your user name)")
        sr.addWidget(self.annotator, 1)
        self.save_button = _button(f"Save correction ({SHORTCUTS['save_correction']})", self.save_correction,
                                   "write the mask into the study's training set as a new version")
        sr.addWidget(self.save_button)
        el.addLayout(sr)
        self.next_button = _button(f"Next scan, least certain first ({SHORTCUTS['next_scan']})", self.next_scan)
        el.addWidget(self.next_button)
        layout.addWidget(edit)

        tune = QGroupBox("Fine-tuning")
        tl = QVBoxLayout(tune)
        self.finetune = FineTunePanel(self.session.corrections_root, lambda: self.session.model_spec, lambda: self.device_box.currentText())
        self.finetune.model_ready.connect(self.use_model)
        tl.addWidget(self.finetune)
        layout.addWidget(tune)
        layout.addStretch(1)

    def _timers(self) -> None:
        self._recovery_timer = QTimer(self, singleShot=True, interval=150, timeout=self._check_recovery)
        self._autosave_timer = QTimer(self, singleShot=True, interval=1000, timeout=self._autosave)
        self._measure_timer = QTimer(self, singleShot=True, interval=150, timeout=self._measure)

    def _fill_models(self, select: str | None = None) -> None:

        self.model_box.clear()
        for name, folder, card, problem in list_models():
            text = f"{name} ({card.name} {card.version})" if card else f"{name} (unreadable: {problem})"
            self.model_box.addItem(text, None if name == "default" else str(folder))
        self.model_box.addItem("Choose a model file…", "__choose__")
        index = self.model_box.findData(select) if select else 0
        self.model_box.setCurrentIndex(max(0, index))
        self.session.model_spec = self.model_box.currentData()

    def _model_chosen(self, index: int) -> None:
        if self.model_box.itemData(index) == "__choose__":
            path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", "Model weights (*.safetensors)")
            if not path:
                self.model_box.setCurrentIndex(0)
                return
            self.model_box.insertItem(index, Path(path).name, path)
            self.model_box.setCurrentIndex(index)
        self.session.model_spec = self.model_box.currentData()

    def use_model(self, folder: str) -> None:
        self._fill_models(select=folder)
        self._say(f"now using the model in {folder}; press Run to see its prediction.")

    def _warm_up(self) -> None:


        self._warm_worker = create_worker(warm_up, self.session.engines, self.session.model_spec, self.device_box.currentText())
        _wait_for_workers_at_quit()
        self._warm_worker.start()

    # -- run -------------------------------------------------------------------------------------

    def run(self) -> None:


        if self.worker is not None:
            return
        try:
            scan, geometry = scan_from_layers(*self.picker.layers())
        except InputError as exc:
            return self._say(str(exc), error=True)
        self.session.set_scan(scan, geometry, layer_scan_meta(self.picker.layer("T1w")))
        self.cancel_event.clear()
        siblings = self.session.sibling_refs()
        self._shown = threading.Event()
        self.worker = create_worker(predict_scan, self.session.engines, self.session.model_spec, self.device_box.currentText(),
                                    scan, self.tta_box.isChecked(), self.cancel_event, siblings, self._shown)
        self.worker.yielded.connect(self._on_yield)
        self.worker.errored.connect(lambda exc: self._say(str(exc), error=True))
        self.worker.finished.connect(self._on_finished)
        self.run_button.setEnabled(False)
        self.next_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self.worker.start()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.status.setText("cancelling…")

    def _on_yield(self, message: tuple) -> None:
        kind = message[0]
        if kind == "status":
            self.status.setText(message[1])
        elif kind == "engine":
            self._show_device(message[1])
        elif kind == "progress":
            self._progress(*message[1:])
        elif kind == "prediction":
            self._show_prediction(message[1])
        elif kind == "response":
            self._show_response(message[1])
        elif kind == "summary":
            self.session.add_summary(message[1])
            self.panel.set_weeks(self.session.week_rows())
        elif kind == "cancelled":
            self.status.setText("cancelled: nothing was changed.")

    def _progress(self, done: int, total: int) -> None:

        if self._activity is None:
            self._activity = progress(total=total, desc="napari-hcc")
        self._activity.total = total
        self._activity.n = done
        self._activity.refresh()
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    def _on_finished(self) -> None:
        self.worker = None
        if self._activity is not None:
            self._activity.close()
            self._activity = None
        self.run_button.setEnabled(True)
        self.next_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if self.session.prediction is not None else 0)

    def _show_device(self, engine) -> None:
        text = f"Running on {engine.device_name}, {engine.precision}."
        if engine.device.type == "cpu":
            text += " No GPU in use (a scan takes about a second)."
            self.device_note.setStyleSheet("color: #e0a030;")
        else:
            self.device_note.setStyleSheet("")
        self.device_note.setText(text)

    def _show_prediction(self, prediction) -> None:
        s = self.session
        s.prediction = prediction
        scan_meta = layer_scan_meta(self.picker.layer("T1w"))
        data, kwargs, _ = labels_layer(prediction.mask, s.scan.affine, TUMOR_LAYER, s.geometry, role="prediction")
        kwargs["metadata"][META_KEY]["scan"] = scan_meta
        self.labels = self._add_tumor_layer(data, kwargs)
        self.edited = []
        if self.probability_box.isChecked() and prediction.probability is not None:
            from napari_hcc.plugin.layers import image_layer

            pdata, pkw, _ = image_layer(prediction.probability, s.scan.affine, PROBABILITY_LAYER, "probability", s.geometry,
                                        colormap="inferno", blending="additive", opacity=0.6)
            pkw["contrast_limits"] = (0.0, 1.0)
            pkw["metadata"][META_KEY]["scan"] = scan_meta
            self._replace_layer(PROBABILITY_LAYER, "image", pdata, pkw)
        self.viewer.layers.selection.active = self.labels
        self.panel.show_prediction(prediction, self._model_text(prediction))
        self.panel.set_weeks(s.week_rows())
        self._list_uncertain(prediction)
        QTimer.singleShot(150, self._shown.set)  # after napari's redraw of the new mask, the sibling sessions may start
        self._say_reading(prediction)
        self._check_recovery()

    def _show_response(self, prediction) -> None:
        """The response read beside the rat's earlier sessions: the panel's arms and histology and the
        status line; the mask (perhaps already being edited) is left alone."""
        self.session.prediction = prediction
        self.panel.show_response_reading(prediction, self._model_text(prediction))
        self.panel.set_weeks(self.session.week_rows())  # the weekly response of the scan in view changed
        self._say_reading(prediction)

    def _model_text(self, prediction) -> str:
        card = self.session.engine_card()
        earlier = prediction.run.timings.get("earlier_sessions", 0.0)
        seconds = f"{prediction.run.timings['total'] - earlier:.2f} s" + (f" (+ {earlier:.2f} s reading earlier sessions)" if earlier else "")
        return (f"Model {card.name} {card.version} ({prediction.run.model_id}) on {prediction.run.device}, {prediction.run.precision}: "
                f"{seconds}; arms and histology from "
                + ("the tumor-feature readout" if prediction.response.source == "readout" else "the network's heads"))

    def _say_reading(self, prediction) -> None:
        # at baseline the panel's warning says why the arms mean nothing; the status line does not name one
        if prediction.before_treatment:
            reading = "baseline scan (week 0, before treatment)"
        elif prediction.response.pending:
            reading = "reading the response beside the rat's earlier sessions…"
        else:
            reading = f"{prediction.response.predicted_arm} most likely"
        notes = "; ".join(n.rstrip(".") for n in prediction.notes + prediction.run.events if n != BASELINE_NOTE)
        self.status.setText(f"{self.session.label}: {reading}; tumor {prediction.tumor_volume_mm3:.0f} mm³." + (f" Notes: {notes}." if notes else ""))

    def _add_tumor_layer(self, data, kwargs):
        """The editable tumor layer, in yellow so that it stands apart from a truth mask (red);
        each edit re-measures the tumor and refreshes the recovery file."""

        fresh = TUMOR_LAYER not in self.viewer.layers
        layer = self._replace_layer(TUMOR_LAYER, "labels", data, kwargs)
        if fresh or not isinstance(layer.colormap, DirectLabelColormap):
            layer.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: "#ffd21f"})
        with contextlib.suppress(TypeError, ValueError):
            layer.events.paint.disconnect(self._on_paint)
        layer.events.paint.connect(self._on_paint)
        return layer

    def _replace_layer(self, name: str, kind: str, data, kwargs):
        """Show `data` in the layer `name`: the same layer when it is on the same grid (removing a
        layer costs napari about 0.4 s on the Qt thread, setting its data a few milliseconds, and a
        Labels layer then starts a fresh undo history), else a new one."""

        old = self.viewer.layers[name] if name in self.viewer.layers else None
        cls = {"labels": layers.Labels, "image": layers.Image}[kind]
        if (isinstance(old, cls) and old.data.shape == data.shape  # isinstance: plugins get proxies of layers
                and np.allclose(old.scale, kwargs["scale"]) and np.allclose(old.affine.affine_matrix, kwargs["affine"])):
            old.metadata = kwargs["metadata"]
            old.data = data
            return old
        if old is not None:
            self.viewer.layers.remove(name)
        return getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def _list_uncertain(self, p) -> None:
        self.uncertain_list.clear()
        order = np.argsort(-p.slices.uncertainty, kind="stable")
        for k in [int(k) for k in order if p.slices.uncertainty[k] > 0][:5]:
            item = QListWidgetItem(f"slice {k}: uncertainty {p.slices.uncertainty[k]:.3f}, max P(tumor) {p.slices.tumor_probability[k]:.2f}")
            item.setData(Qt.ItemDataRole.UserRole, k)
            self.uncertain_list.addItem(item)

    def _go_to_slice(self, item) -> None:
        k = int(item.data(Qt.ItemDataRole.UserRole))
        layer = self.labels if self.labels is not None else self.picker.layer("T1w")
        self.viewer.dims.set_point(0, float(layer.data_to_world((k, 0, 0))[0]))

    # -- edits -----------------------------------------------------------------------------------

    def _on_paint(self, event) -> None:
        for k in sorted(mask_tools.edited_slices(event.value)):
            if k in self.edited:
                self.edited.remove(k)
            self.edited.append(k)
        self._measure_timer.start()
        self._autosave_timer.start()

    def _helper(self, fn, *args) -> None:
        if self.labels is None or self.labels not in self.viewer.layers:
            return self._say("Run the model first: the helpers edit the tumor layer.", error=True)
        try:
            changed = fn(self.labels, *args)
        except InputError as exc:
            return self._say(str(exc), error=True)
        self.edit_label.setText(f"{fn.__name__.replace('_', ' ')}: {changed} voxels changed (Ctrl+Z undoes it).")

    def interpolate(self) -> None:
        drawn = [k for k in self.edited if self.labels is not None and self.labels.data[k].any()]
        if len(drawn) < 2:
            return self._say("Draw (or correct) the tumor on two slices first; Interpolate fills the slices between them.", error=True)
        self._helper(mask_tools.interpolate, drawn[-2], drawn[-1])

    def remove_islands(self) -> None:
        self._helper(mask_tools.remove_islands, self.island_mm3.value())

    def fill_holes(self) -> None:
        self._helper(mask_tools.fill_holes)

    def _measure(self) -> None:

        if self.labels is None or self.session.scan is None:
            return
        mask, affine, _ = layer_source(self.labels)
        self.panel.show_measurements(volume_mm3(mask, affine), longest_axial_diameter_mm(mask, affine), edited=True)

    # -- recovery --------------------------------------------------------------------------------

    def _autosave(self) -> None:
        if self.labels is None or self.labels not in self.viewer.layers or self.session.key is None:
            return
        mask, _, _ = layer_source(self.labels)
        recovery.write_recovery(self.session.key, mask, self.session.label, self.session.model_id)

    def _check_recovery(self) -> None:
        found = self.session.pending_recovery(layer_scan_meta(self.picker.layer("T1w")))
        if found is None:
            self.banner.setVisible(False)
            return
        self.banner_label.setText(f"Edits of {found.label or 'this scan'} from {found.saved} were not saved as a correction. "
                                  "Restore them into the tumor layer?")
        self.banner.setVisible(True)

    def restore_recovery(self) -> None:
        found = self.session.pending_recovery(layer_scan_meta(self.picker.layer("T1w")))
        if found is None:
            return self.banner.setVisible(False)
        t1w = self.picker.layer("T1w")
        _, affine, geometry = layer_source(t1w)
        data, kwargs, _ = labels_layer(found.mask, affine, TUMOR_LAYER, geometry, role="recovered")
        kwargs["metadata"][META_KEY]["scan"] = layer_scan_meta(t1w)
        if self.labels is not None and self.labels in self.viewer.layers and self.labels.data.shape == data.shape:
            mask_tools.apply_mask(self.labels, data)  # undoable, keeps the prediction's layer
        else:
            self.labels = self._add_tumor_layer(data, kwargs)
            if self.session.scan is None:
                self.session.set_scan(*scan_from_layers(*self.picker.layers()), layer_scan_meta(t1w))
        self.banner.setVisible(False)
        self.session.recovery_handled = True
        self._measure()
        self._say(f"restored the unsaved edits of {found.label or 'this scan'}.")

    def discard_recovery(self) -> None:
        key = self.session.key_for(layer_scan_meta(self.picker.layer("T1w")))
        if key:
            recovery.discard_recovery(key)
        self.banner.setVisible(False)

    # -- save and walk ---------------------------------------------------------------------------

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self, "napari-hcc", question)
        return answer == QMessageBox.StandardButton.Yes

    def save_correction(self):

        s = self.session
        if self.labels is None or self.labels not in self.viewer.layers or s.scan is None:
            return self._say("Run the model (or restore edits) before saving a correction.", error=True)
        root = s.corrections_root()
        if root is None or not s.scan.subject or not s.scan.session:
            return self._say("This scan is not part of a BIDS study, so it has no training set; save the tumor layer as "
                             "NIfTI with File > Save Selected Layers instead.", error=True)
        mask, _, _ = layer_source(self.labels)
        allow_empty = False
        if not mask.any():
            if not self._confirm(f"The mask of {s.label} is empty. Save it as 'no tumor'?"):
                return self._say("not saved: the mask is empty.")
            allow_empty = True
        try:
            record = save_correction(root, s.scan.subject, s.scan.session, mask, s.prediction.mask if s.prediction is not None else None,
                                     model_id=s.model_id, annotator=self.annotator.text().strip() or None, allow_empty=allow_empty)
        except InputError as exc:
            return self._say(str(exc), error=True)
        self._autosave_timer.stop()  # the saved version supersedes the pending autosave
        if s.key:
            recovery.discard_recovery(s.key)
        s.mark_reviewed()
        prov = record.provenance
        change = (f" Dice vs the model {prov['dice_prediction_vs_correction']:.3f}, +{prov['voxels_added']}/−{prov['voxels_removed']} voxels."
                  if "dice_prediction_vs_correction" in prov else "")
        self._say(f"Saved correction version {record.version} of {s.label} in {record.mask.parent}.{change}")
        return record

    def next_scan(self) -> None:


        if self.worker is not None:
            return
        refs = self.session.study_refs(layer_scan_meta(self.picker.layer("T1w")))
        if not refs:
            return self._say("Next scan walks a study: open a scan of a study first (the Study browser lists them).", error=True)
        if self.session.order is not None:
            return self._open_next()
        self.cancel_event.clear()
        self.session.start_ranking(refs)
        self.worker = create_worker(summarize, self.session.engines, self.session.model_spec, self.device_box.currentText(),
                                    refs, self.cancel_event, self.session.corrections_root())
        self.worker.yielded.connect(self._on_yield)
        self.worker.errored.connect(lambda exc: self._say(str(exc), error=True))
        self.worker.finished.connect(self._on_finished)
        self.worker.finished.connect(lambda: self.session.finish_ranking() and self._open_next())
        self.run_button.setEnabled(False)
        self.next_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"ranking the {len(refs)} scans of the study by the model's uncertainty…")
        self.worker.start()

    def _open_next(self) -> None:

        summary = self.session.next_in_order()
        if summary is None:
            return self._say("every scan of this study has been corrected or visited on this walk.")
        try:
            scan = summary.ref.load()
        except InputError as exc:
            return self._say(str(exc), error=True)
        show_scan(self.viewer, scan)
        self.labels = None
        self.run()
        self.status.setText(f"{summary.label}: uncertainty {summary.uncertainty:.3f}, {self.session.position_text()}; predicting…")

    def _say(self, message: str, error: bool = False) -> None:

        self.status.setText(message)
        (show_error if error else show_info)("napari-hcc: " + message)


_QUIT_HOOKED = False


def _wait_for_workers_at_quit() -> None:
    """Quitting napari while the model still loads in the background aborted the process (the
    worker's signals were deleted under it): at quit, wait a few seconds for running workers."""
    global _QUIT_HOOKED
    if _QUIT_HOOKED:
        return

    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(lambda: QThreadPool.globalInstance().waitForDone(10_000))
        _QUIT_HOOKED = True
