"""The "HCC Review" dock widget: pick the sequences, run the model in the background, edit the mask,
read the response panel, save the correction into the training set, walk the study, fine-tune.

Thin by design. The work is done by the core (inference, review/trainingset, review/recovery,
review/queue, training/finetune) in background workers (gui/workers.py) that send typed updates
(gui/messages.py); what it does with the edited mask is in gui/edit_actions.py. The panels (run_panel,
recovery_banner, response_panel, uncertain_slices, edit_panel, finetune_panel) share one evented
`ReviewState` (gui/state.py) and redraw themselves when it changes; what the widget remembers between
clicks lives in `review.session.ReviewSession` (no Qt). This file wires them together and turns the reader's clicks into core calls.
"""

from __future__ import annotations

import threading

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import QGroupBox, QMessageBox, QScrollArea, QShortcut, QVBoxLayout, QWidget

from napari_hcc.errors import InputError
from napari_hcc.gui import worker_lifecycle
from napari_hcc.gui.edit_actions import EditActions
from napari_hcc.gui.edit_panel import EditPanel
from napari_hcc.gui.finetune_panel import FineTunePanel
from napari_hcc.gui.messages import Update, UpdateKind
from napari_hcc.gui.recovery_banner import RecoveryBanner
from napari_hcc.gui.response_panel import ResponsePanel, model_line, reading_line, theme_colors
from napari_hcc.gui.run_panel import RunPanel
from napari_hcc.gui.scan_layers import show_aligned, show_scan
from napari_hcc.gui.state import ReviewState
from napari_hcc.gui.tumor_layer import (
    PROBABILITY_LAYER,
    TUMOR_LAYER,
    replace_layer,
    show_left_out_layer,
    show_tumor_layer,
)
from napari_hcc.gui.uncertain_slices import UncertainSlices
from napari_hcc.gui.workers import predict_scan, summarize, warm_up
from napari_hcc.plugin.layers import (
    META_KEY,
    image_layer,
    labels_layer,
    layer_scan_meta,
    layer_source,
    scan_from_layers,
)
from napari_hcc.review import recovery
from napari_hcc.review.session import ReviewSession
from napari_hcc.review.trainingset import save_correction

SHORTCUTS = {"run": "Alt+R", "save_correction": "Alt+S", "next_scan": "Alt+N"}  # method -> key


class ReviewWidget(EditActions, QScrollArea):
    def __init__(self, napari_viewer, parent=None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = ReviewState()
        self.session = ReviewSession()
        self.worker = None
        self.cancel_event = threading.Event()
        self._shown = threading.Event()  # set once a result is on screen (the worker then starts the sibling sessions)
        self.labels = None
        self.edited: list[int] = []
        self._build()
        self._timers()
        for method, key in SHORTCUTS.items():
            QShortcut(
                QKeySequence(key), self, activated=getattr(self, method), context=Qt.ShortcutContext.WindowShortcut
            )
        worker_lifecycle.cancel_when_destroyed(self, self.cancel_event)
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
        s = self.state

        self.run_panel = RunPanel(self.viewer, s, self.run, self.cancel, SHORTCUTS["run"])
        self.run_panel.picker.changed.connect(self._schedule_recovery_check)
        layout.addWidget(self.run_panel)
        self.banner = RecoveryBanner(self)
        layout.addWidget(self.banner)

        results = QGroupBox("Response")
        rl = QVBoxLayout(results)
        self.panel = ResponsePanel(theme_colors(getattr(self.viewer, "theme", None)))
        s.events.week_rows.connect(self.panel.set_weeks)
        rl.addWidget(self.panel)
        self.uncertain = UncertainSlices(s, self._go_to_slice_index)
        rl.addWidget(self.uncertain)
        layout.addWidget(results)

        self.edit_panel = EditPanel(self, SHORTCUTS)
        s.events.busy.connect(lambda busy: self.edit_panel.next_button.setEnabled(not busy))
        layout.addWidget(self.edit_panel)

        tune = QGroupBox("Fine-tuning")
        tl = QVBoxLayout(tune)
        self.finetune = FineTunePanel(s, self.session.corrections_root)
        self.finetune.model_ready.connect(self.use_model)
        tl.addWidget(self.finetune)
        layout.addWidget(tune)
        layout.addStretch(1)

        # the parts a reader (and a test) reaches for, by their familiar names
        rp, ep = self.run_panel, self.edit_panel
        self.picker, self.status, self.device_note = rp.picker, rp.status, rp.device_note
        self.tta_box, self.probability_box, self.align_box = rp.tta_box, rp.probability_box, rp.align_box
        self.run_button, self.cancel_button = rp.run_button, rp.cancel_button
        self.save_button, self.next_button, self.island_mm3 = ep.save_button, ep.next_button, ep.island_mm3
        self.uncertain_list = self.uncertain.list

    def _timers(self) -> None:
        self._recovery_timer = QTimer(self, singleShot=True, interval=150, timeout=self.banner.check)
        self._autosave_timer = QTimer(self, singleShot=True, interval=1000, timeout=self.banner.autosave)
        self._measure_timer = QTimer(self, singleShot=True, interval=150, timeout=self._measure)

    def _schedule_recovery_check(self) -> None:
        self._recovery_timer.start()

    def use_model(self, folder: str) -> None:
        self.run_panel.fill_models(select=folder)
        self._say(f"now using the model in {folder}; press Run to see its prediction.")

    def _warm_up(self) -> None:
        s = self.state
        worker_lifecycle.start(create_worker(warm_up, self.session.engines, *s.compute))

    # -- workers ---------------------------------------------------------------------------------

    def _start(self, worker, then=None) -> None:
        """Run a worker whose updates this widget shows (one at a time: Run, or the study walk); `then`
        runs after it has finished and the widget is idle again."""
        self.worker = worker
        worker.yielded.connect(self._on_update)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        if then is not None:
            worker.finished.connect(then)
        self.state.busy = True
        worker_lifecycle.start(worker, self.cancel_event)

    def run(self) -> None:
        if self.worker is not None:
            return
        try:
            scan, geometry = scan_from_layers(*self.picker.layers())
        except InputError as exc:
            return self._say(str(exc), error=True)
        self.session.set_scan(scan, geometry, layer_scan_meta(self.picker.reference_layer()))
        self.cancel_event.clear()
        self._shown = threading.Event()
        args = (*self.state.compute, scan, self.tta_box.isChecked(), self.cancel_event, self.session.sibling_refs())
        self._start(create_worker(predict_scan, self.session.engines, *args, self._shown, self.align_box.isChecked()))

    def cancel(self) -> None:
        self.cancel_event.set()
        self.state.status = "cancelling…"

    def _on_update(self, update: Update) -> None:
        kind, value = update.kind, update.value
        if kind is UpdateKind.STATUS:
            self.state.status = value
        elif kind is UpdateKind.ENGINE:
            self.run_panel.show_device(value)
        elif kind is UpdateKind.PROGRESS:
            self.run_panel.show_progress(value)
        elif kind is UpdateKind.ALIGNED:
            self.session.scan = value
            show_aligned(self.picker, value)
        elif kind is UpdateKind.PREDICTION:
            self._show_prediction(value)
        elif kind is UpdateKind.RESPONSE:
            self._show_response(value)
        elif kind is UpdateKind.SUMMARY:
            self.session.add_summary(value)
            self.state.week_rows = tuple(self.session.week_rows())
        elif kind is UpdateKind.CANCELLED:
            self.state.status = "cancelled: nothing was changed."

    def _on_error(self, exc) -> None:
        self._say(str(exc), error=True)

    def _on_finished(self) -> None:
        self.worker = None
        self.state.busy = False

    # -- results ---------------------------------------------------------------------------------

    def _show_prediction(self, prediction) -> None:
        s = self.session
        s.prediction = prediction
        scan_meta = layer_scan_meta(self.picker.reference_layer())
        data, kwargs, _ = labels_layer(prediction.mask, s.scan.affine, TUMOR_LAYER, s.geometry, role="prediction")
        kwargs["metadata"][META_KEY]["scan"] = scan_meta
        self.labels = show_tumor_layer(self.viewer, data, kwargs, self._on_paint)
        self.edited = []
        show_left_out_layer(self.viewer, prediction.left_out, s.scan.affine, s.geometry, scan_meta)
        self.edit_panel.keep_button.setEnabled(prediction.left_out is not None)
        if self.probability_box.isChecked() and prediction.probability is not None:
            pdata, pkw, _ = image_layer(
                prediction.probability, s.scan.affine, PROBABILITY_LAYER, "probability", s.geometry,
                colormap="inferno", blending="additive", opacity=0.6,
            )  # fmt: skip
            pkw["contrast_limits"] = (0.0, 1.0)
            pkw["metadata"][META_KEY]["scan"] = scan_meta
            replace_layer(self.viewer, PROBABILITY_LAYER, "image", pdata, pkw)
        self.viewer.layers.selection.active = self.labels
        self.panel.show_prediction(prediction, self._model_text(prediction))
        self.state.prediction = prediction
        self.state.week_rows = tuple(s.week_rows())
        QTimer.singleShot(150, self._shown.set)  # after napari's redraw of the new mask, the sibling sessions may start
        self._say_reading(prediction)
        self.banner.check()

    def _show_response(self, prediction) -> None:
        """The response read beside the rat's earlier sessions: the panel's arms and histology and the
        status line; the mask (perhaps already being edited) is left alone."""
        self.session.prediction = prediction
        self.panel.show_response_reading(prediction, self._model_text(prediction))
        self.state.prediction = prediction
        self.state.week_rows = tuple(self.session.week_rows())  # the weekly response of the scan in view changed
        self._say_reading(prediction)

    def _model_text(self, prediction) -> str:
        return model_line(self.session.engine_card(), prediction)

    def _say_reading(self, prediction) -> None:
        self.state.status = reading_line(self.session.label, prediction)

    def _go_to_slice(self, item) -> None:
        self._go_to_slice_index(int(item.data(Qt.ItemDataRole.UserRole)))

    def _go_to_slice_index(self, k: int) -> None:
        layer = self.labels if self.labels is not None else self.picker.reference_layer()
        self.viewer.dims.set_point(0, float(layer.data_to_world((k, 0, 0))[0]))

    # -- recovery (gui/recovery_banner.py) ----------------------------------------------------------

    def restore_recovery(self) -> None:
        self.banner.restore()

    def discard_recovery(self) -> None:
        self.banner.discard()

    # -- save and walk ---------------------------------------------------------------------------

    def _confirm(self, question: str) -> bool:
        return QMessageBox.question(self, "napari-hcc", question) == QMessageBox.StandardButton.Yes

    def save_correction(self):
        s = self.session
        if self.labels is None or self.labels not in self.viewer.layers or s.scan is None:
            return self._say("Run the model (or restore edits) before saving a correction.", error=True)
        root = s.corrections_root()
        if root is None or not s.scan.subject or not s.scan.session:
            return self._say(
                "This scan is not part of a BIDS study, so it has no training set; save the tumor layer as "
                "NIfTI with File > Save Selected Layers instead.",
                error=True,
            )
        mask, _, _ = layer_source(self.labels)
        allow_empty = False
        if not mask.any():
            if not self._confirm(f"The mask of {s.label} is empty. Save it as 'no tumor'?"):
                return self._say("not saved: the mask is empty.")
            allow_empty = True
        annotator = self.edit_panel.annotator.text().strip() or None
        predicted = s.prediction.mask if s.prediction is not None else None
        try:
            record = save_correction(
                root,
                s.scan.subject,
                s.scan.session,
                mask,
                predicted,
                model_id=s.model_id,
                annotator=annotator,
                allow_empty=allow_empty,
            )
        except InputError as exc:
            return self._say(str(exc), error=True)
        self._autosave_timer.stop()  # the saved version supersedes the pending autosave
        if s.key:
            recovery.discard_recovery(s.key)
        s.mark_reviewed()
        prov = record.provenance
        change = (
            f" Dice vs the model {prov['dice_prediction_vs_correction']:.3f}, +{prov['voxels_added']}/−{prov['voxels_removed']} voxels."
            if "dice_prediction_vs_correction" in prov
            else ""
        )
        self._say(f"Saved correction version {record.version} of {s.label} in {record.mask.parent}.{change}")
        return record

    def next_scan(self) -> None:
        if self.worker is not None:
            return
        refs = self.session.study_refs(layer_scan_meta(self.picker.reference_layer()))
        if not refs:
            return self._say(
                "Next scan walks a study: open a scan of a study first (the Study browser lists them).", error=True
            )
        if self.session.order is not None:
            return self._open_next()
        self.cancel_event.clear()
        self.session.start_ranking(refs)
        s = self.state
        worker = create_worker(
            summarize,
            self.session.engines,
            *s.compute,
            refs,
            self.cancel_event,
            self.session.corrections_root(),
        )
        self._start(worker, then=self._ranking_finished)
        self.state.status = f"ranking the {len(refs)} scans of the study by the model's uncertainty…"

    def _ranking_finished(self) -> None:
        if self.session.finish_ranking():
            self._open_next()

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
        self.state.status = (
            f"{summary.label}: uncertainty {summary.uncertainty:.3f}, {self.session.position_text()}; predicting…"
        )

    def _say(self, message: str, error: bool = False) -> None:
        self.state.status = message
        (show_error if error else show_info)("napari-hcc: " + message)
