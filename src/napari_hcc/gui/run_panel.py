"""The "Scan and model" panel of HCC Review: which layers are T1w, T2w and CE, which model on which
device, TTA and the probability map; Run and Cancel, the progress bar and the status line.

It shows the evented state (`busy`, `status`) and writes the reader's choices into it (`model_spec`,
`device`); the widget decides what Run does."""

from __future__ import annotations

import time
from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_hcc.gui.layer_picker import LayerPicker
from napari_hcc.gui.state import ReviewState
from napari_hcc.model.catalog import list_models
from napari_hcc.progress import Progress
from napari_hcc.vocabulary import BACKENDS, DEVICE_KINDS

#: the least time between two moves of the progress bar during a run (its last step always shows)
PROGRESS_EVERY_S = 0.3
CHOOSE = "__choose__"


def button(text: str, slot, tip: str = "") -> QPushButton:
    b = QPushButton(text)
    b.clicked.connect(slot)
    if tip:
        b.setToolTip(tip)
    return b


class RunPanel(QWidget):
    def __init__(self, viewer, state: ReviewState, run, cancel, run_key: str, parent=None):
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        inputs = QGroupBox("Scan and model")
        il = QVBoxLayout(inputs)
        self.picker = LayerPicker(viewer)
        il.addWidget(self.picker)
        self.model_box = QComboBox()
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_box.setMinimumContentsLength(12)
        self.fill_models()
        self.model_box.activated.connect(self._model_chosen)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICE_KINDS)
        self.device_box.currentTextChanged.connect(lambda text: setattr(state, "device", text))
        self.backend_box = QComboBox()
        self.backend_box.addItems(BACKENDS)
        self.backend_box.setToolTip(
            "what runs the network: auto takes the model's exported graph under OpenVINO on a CPU "
            "(else ONNX Runtime, else torch) and torch on a GPU"
        )
        self.backend_box.currentTextChanged.connect(lambda text: setattr(state, "backend", text))
        boxes = (("Model", self.model_box), ("Device", self.device_box), ("Backend", self.backend_box))
        for text, box in boxes:
            row = QHBoxLayout()
            row.addWidget(QLabel(text))
            row.addWidget(box, 1)
            il.addLayout(row)
        self.tta_box = QCheckBox("Test-time flips (4 passes, 4x slower)")
        self.tta_box.setToolTip("the uncertainty becomes the spread over four flipped passes instead of the entropy")
        self.probability_box = QCheckBox("Show the probability map")
        self.align_box = QCheckBox("Align T2w and CE to the T1w (rigid)")
        self.align_box.setToolTip(
            "register the sequences by mutual information before reading; the T2w and CE layers then show the "
            "aligned images, and the notes give the shift and rotation found"
        )
        il.addWidget(self.tta_box)
        il.addWidget(self.align_box)
        il.addWidget(self.probability_box)
        self.device_note = QLabel("")
        self.device_note.setWordWrap(True)
        il.addWidget(self.device_note)
        layout.addWidget(inputs)

        run_row = QHBoxLayout()
        self.run_button = button(f"Run ({run_key})", run, "predict the tumor mask and the response")
        self.cancel_button = button("Cancel", cancel)
        self.cancel_button.setEnabled(False)
        run_row.addWidget(self.run_button, 1)
        run_row.addWidget(self.cancel_button)
        layout.addLayout(run_row)
        self.progress_bar = QProgressBar()
        self._progress_shown = 0.0  # when the bar last moved (show_progress)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        layout.addWidget(self.progress_bar)
        self.status = QLabel(state.status)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        state.events.status.connect(self._show_status)
        state.events.busy.connect(self._show_busy)

    # -- the model -------------------------------------------------------------------------------

    def fill_models(self, select: str | None = None) -> None:
        self.model_box.clear()
        for name, folder, card, problem in list_models():
            text = f"{name} ({card.name} {card.version})" if card else f"{name} (unreadable: {problem})"
            self.model_box.addItem(text, None if name == "default" else str(folder))
        self.model_box.addItem("Choose a model file…", CHOOSE)
        index = self.model_box.findData(select) if select else 0
        self.model_box.setCurrentIndex(max(0, index))
        self.state.model_spec = self.model_box.currentData()

    def _model_chosen(self, index: int) -> None:
        if self.model_box.itemData(index) == CHOOSE:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a model", "", "Model weights (*.safetensors)")
            if not path:
                self.model_box.setCurrentIndex(0)
                return
            self.model_box.insertItem(index, Path(path).name, path)
            self.model_box.setCurrentIndex(index)
        self.state.model_spec = self.model_box.currentData()

    def show_device(self, engine) -> None:
        text = f"Running on {engine.device_name}, {engine.precision}."
        if engine.backend_note:
            text += f" Note: {engine.backend_note}."
        if engine.device.type == "cpu":
            text += " No GPU in use (on a CPU a scan takes seconds, a large field of view longer)."
            self.device_note.setStyleSheet("color: #e0a030;")
        else:
            self.device_note.setStyleSheet("")
        self.device_note.setText(text)

    # -- a run -----------------------------------------------------------------------------------

    def show_progress(self, update: Progress) -> None:
        """The run's only progress display. Not napari's activity dock as well, and never an indeterminate
        bar: each animates about 30 times a second, and in a window holding napari's OpenGL canvas every
        repaint re-composites the whole window. Where OpenGL is drawn in software (Mesa's llvmpipe: no GPU,
        remote desktops, Xvfb) that took the cores from the network and made the run 1.7 times slower
        (docs/benchmarks.md, "GUI responsiveness"). For the same reason the bar moves at most every
        `PROGRESS_EVERY_S` until the last step: a scan read in a fraction of a second shows only its end."""
        now = time.monotonic()
        if update.done < update.total and now - self._progress_shown < PROGRESS_EVERY_S:
            return
        self._progress_shown = now
        self.progress_bar.setRange(0, update.total)
        self.progress_bar.setValue(update.done)

    def _show_status(self, text: str) -> None:
        self.status.setText(text)

    def _show_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if busy:  # an empty bar until the first batch, not an endless "busy" one: see `show_progress`
            self._progress_shown = time.monotonic()
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
        else:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1 if self.state.prediction is not None else 0)
