"""'Improve the model with my corrections': fine-tuning in a background worker (gui/workers.py) with
progress, a cooperative Stop, the Dice before and after on held-out corrections, and a switch to the
new model. The worker's typed updates arrive through napari's worker signals, like every other run."""

from __future__ import annotations

import threading

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget

from napari_hcc.gui import worker_lifecycle
from napari_hcc.gui.messages import Update, UpdateKind
from napari_hcc.gui.state import ReviewState
from napari_hcc.gui.workers import fine_tune_model
from napari_hcc.training.adaptation import ADAPTATION


class FineTunePanel(QWidget):
    model_ready = Signal(str)  # the new model's folder

    def __init__(self, state: ReviewState, study_root, parent=None):
        """state: the widget's evented state (model and device when Start is pressed); study_root: a
        callable giving the corrections' study."""
        super().__init__(parent)
        self.state = state
        self._study_root = study_root
        self.worker = None
        self.cancel_event = threading.Event()
        self.result = None
        worker_lifecycle.cancel_when_destroyed(self, self.cancel_event)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(ADAPTATION["epochs"])
        self.epochs.setPrefix("epochs ")
        self.epochs.setToolTip(
            f"passes over your corrected scans; at least {ADAPTATION['min_steps']} training steps are run however "
            "few they are (the measured adaptation setting)"
        )
        self.start_button = QPushButton("Improve the model with my corrections")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = QLabel("Fine-tunes a copy of the model on the scans you corrected; the original stays.")
        self.status.setWordWrap(True)
        self.use_button = QPushButton("Use the new model")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self._use)

        row = QHBoxLayout()
        row.addWidget(self.epochs)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.start_button)
        layout.addLayout(row)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.use_button)

    def start(self) -> None:
        root = self._study_root()
        if root is None:
            self._say("Open a scan of a BIDS study (with saved corrections) first.", error=True)
            return
        self.cancel_event.clear()
        self.result = None
        self.use_button.setEnabled(False)
        self.bar.setRange(0, 1)  # empty, not an indeterminate bar (run_panel.show_progress says why)
        self.bar.setValue(0)
        self.status.setText("preparing the corrected scans…")
        s = self.state
        self.worker = create_worker(
            fine_tune_model, root, s.model_spec, self.epochs.value(), s.device, self.cancel_event
        )
        self.worker.yielded.connect(self._on_update)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        worker_lifecycle.start(self.worker, self.cancel_event)

    def stop(self) -> None:
        self.cancel_event.set()
        self.status.setText("stopping after this batch…")

    def _on_update(self, update: Update) -> None:
        if update.kind is UpdateKind.PROGRESS:
            self._show_progress(update.value)
        elif update.kind is UpdateKind.FINE_TUNED:
            self._show_result(update.value)
        elif update.kind is UpdateKind.CANCELLED:
            self.result = update.value
            self.status.setText(f"stopped after {update.value.epochs_run} epoch(s); no new model was made.")

    def _show_progress(self, update) -> None:
        d = update.detail
        if d.get("phase") == "scoring":
            self.status.setText(f"scoring the old and the new model on {update.total} corrected scan(s)…")
            return
        if update.unit != "batch":
            return
        self.bar.setRange(0, d["epochs"] * d["batches"])
        self.bar.setValue((d["epoch"] - 1) * d["batches"] + d["batch"])
        self.status.setText(
            f"epoch {d['epoch']}/{d['epochs']}, batch {d['batch']}/{d['batches']}: "
            f"loss {d['loss']:.3f} (mask {d['seg']:.3f}, arm {d['arm']:.3f})"
        )

    def _show_result(self, result) -> None:
        self.result = result
        where = (
            "held-out corrections"
            if result.independent
            else "the corrections it trained on (too few rats to hold any out)"
        )
        self.status.setText(
            f"New model {result.new_model} in {result.model_dir}.\n"
            f"Dice on {where} ({', '.join(result.held_out_scans)}): "
            f"{result.mean_before:.3f} before → {result.mean_after:.3f} after "
            f"({result.epochs_run} epochs, {result.seconds:.0f} s)."
            + (f"\n{result.sequences.sentence()}." if result.sequences and result.sequences.leave_out else "")
        )
        self.use_button.setEnabled(True)

    def _use(self) -> None:
        self.model_ready.emit(str(self.result.model_dir))

    def _on_error(self, exc) -> None:
        self._say(str(exc), error=True)

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if self.result is not None and not self.result.cancelled else 0)

    def _say(self, message: str, error: bool = False) -> None:
        self.status.setText(message)
        (show_error if error else show_info)("napari-hcc: " + message)
