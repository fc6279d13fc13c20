""" "Least certain slices (click to go there)": the five slices of the prediction in view where the mask is
least certain, each a click away. It follows the evented state's `prediction`."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from napari_hcc.gui.state import ReviewState


class UncertainSlices(QWidget):
    def __init__(self, state: ReviewState, go_to_slice, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Least certain slices (click to go there):"))
        self.list = QListWidget()
        self.list.setMaximumHeight(90)
        self.list.itemClicked.connect(lambda item: go_to_slice(int(item.data(Qt.ItemDataRole.UserRole))))
        layout.addWidget(self.list)
        self._shown = None
        state.events.prediction.connect(self.show_prediction)

    def show_prediction(self, p) -> None:
        if p is None or (self._shown is not None and p.slices is self._shown.slices):
            return  # the same mask (a response read later keeps its slices): the list stays
        self._shown = p
        self.list.clear()
        uncertainty = p.slices.uncertainty
        order = np.argsort(-uncertainty, kind="stable")
        for k in [int(k) for k in order if uncertainty[k] > 0][:5]:
            text = f"slice {k}: uncertainty {uncertainty[k]:.3f}, max P(tumor) {p.slices.tumor_probability[k]:.2f}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, k)
            self.list.addItem(item)
