"""'Improve the model with my corrections': `core.finetune` in a background worker with progress,
a cooperative Stop, the Dice before and after on held-out corrections, and a switch to the new model."""

from __future__ import annotations

import threading

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget


class _Bridge(QObject):
    """Carries progress from the training thread to the main thread (a queued Qt signal)."""

    progress = Signal(dict)


class FineTunePanel(QWidget):
    model_ready = Signal(str)  # the new model's folder

    def __init__(self, study_root, base_model, device, parent=None):
        """study_root, base_model, device: callables giving the current values when Start is pressed."""
        super().__init__(parent)
        self._study_root, self._base_model, self._device = study_root, base_model, device
        self.worker = None
        self.stop_event = threading.Event()
        self.result = None
        self.bridge = _Bridge()
        self.bridge.progress.connect(self._on_progress)

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 200)
        self.epochs.setValue(10)
        self.epochs.setPrefix("epochs ")
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
        self.use_button.clicked.connect(lambda: self.model_ready.emit(str(self.result.model_dir)))

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

        from napari_hcc.training.finetune import fine_tune

        root = self._study_root()
        if root is None:
            self._say("Open a scan of a BIDS study (with saved corrections) first.", error=True)
            return
        self.stop_event.clear()
        self.result = None
        self.use_button.setEnabled(False)
        self.bar.setRange(0, 0)
        self.status.setText("preparing the corrected scans…")
        self.worker = create_worker(fine_tune, root, base=self._base_model(), epochs=self.epochs.value(),
                                    device=self._device(), progress=self.bridge.progress.emit, stop=self.stop_event)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.worker.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.status.setText("stopping after this batch…")

    def _on_progress(self, info: dict) -> None:
        if info.get("phase") == "scoring":
            self.status.setText(f"scoring the old and the new model on {info['scans']} corrected scan(s)…")
            return
        total = info["epochs"] * info["batches"]
        self.bar.setRange(0, total)
        self.bar.setValue((info["epoch"] - 1) * info["batches"] + info["batch"])
        self.status.setText(f"epoch {info['epoch']}/{info['epochs']}, batch {info['batch']}/{info['batches']}: "
                            f"loss {info['loss']:.3f} (mask {info['seg']:.3f}, arm {info['arm']:.3f})")

    def _on_done(self, result) -> None:
        self.result = result
        if result.cancelled:
            self.status.setText(f"stopped after {result.epochs_run} epoch(s); no new model was made.")
            return
        where = "held-out corrections" if result.independent else "the corrections it trained on (too few rats to hold any out)"
        self.status.setText(
            f"New model {result.new_model} in {result.model_dir}.\n"
            f"Dice on {where} ({', '.join(result.held_out_scans)}): "
            f"{result.mean_before:.3f} before → {result.mean_after:.3f} after "
            f"({result.epochs_run} epochs, {result.seconds:.0f} s).")
        self.use_button.setEnabled(True)

    def _on_error(self, exc) -> None:
        self._say(str(exc), error=True)

    def _on_finished(self) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if self.result is not None and not self.result.cancelled else 0)

    def _say(self, message: str, error: bool = False) -> None:

        self.status.setText(message)
        (show_error if error else show_info)("napari-hcc: " + message)
