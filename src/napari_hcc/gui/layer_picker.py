"""Pick the T1w, T2w and CE image layers; filled in by itself from layer metadata and names. Each can be
"none" (a lab without contrast agent, or with a T2w only): the model reads any subset with a T1w or a T2w."""

from __future__ import annotations

import re

from napari.layers import Image
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QFormLayout, QWidget

from napari_hcc.plugin.layers import META_KEY
from napari_hcc.vocabulary import SEQUENCE_ROLES

#: name patterns, tried after the metadata role; CE first so that "T1 post-Gd" is not taken as T1w
NAME_PATTERNS = {
    "CE": re.compile(r"(^|[^a-z])(ce|gd|contrast|post|t1c|t1ce|t1\+c|dce)([^a-z]|$)", re.I),
    "T2w": re.compile(r"t2", re.I),
    "T1w": re.compile(r"t1", re.I),
}


def guess_roles(layers) -> dict[str, object]:
    """role -> layer: napari-hcc's own metadata first, then the layer names."""

    images = [lyr for lyr in layers if isinstance(lyr, Image) and getattr(lyr.data, "ndim", 0) == 3]
    chosen: dict[str, object] = {}
    for role in SEQUENCE_ROLES:
        for lyr in reversed(images):  # the newest scan's layer when several are open
            if (lyr.metadata.get(META_KEY) or {}).get("role") == role:
                chosen[role] = lyr
                break
    for role in ("CE", "T2w", "T1w"):
        if role in chosen:
            continue
        for lyr in images:
            if lyr not in chosen.values() and NAME_PATTERNS[role].search(lyr.name):
                chosen[role] = lyr
                break
    return chosen


NONE = "none"


class LayerPicker(QWidget):
    changed = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.boxes = {role: QComboBox() for role in SEQUENCE_ROLES}
        for box in self.boxes.values():
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(8)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for role, box in self.boxes.items():
            box.currentIndexChanged.connect(lambda _i: self.changed.emit())
            form.addRow(role, box)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _e: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Re-list the image layers; keep the user's choices when still there, else guess."""

        names = [
            lyr.name for lyr in self.viewer.layers if isinstance(lyr, Image)
        ]  # napari hands plugins proxies: isinstance, not type()
        guess = guess_roles(self.viewer.layers)
        for role, box in self.boxes.items():
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems([NONE, *names])
            keep = current if current in names and not self._guess_is_newer(role, guess) else None
            pick = keep or (guess[role].name if role in guess else NONE)
            box.setCurrentIndex(1 + names.index(pick) if pick in names else 0)
            box.blockSignals(False)
        self.changed.emit()

    def _guess_is_newer(self, role: str, guess: dict) -> bool:
        """A freshly opened scan (napari-hcc metadata) replaces the previous choice."""
        layer = guess.get(role)
        return layer is not None and (layer.metadata.get(META_KEY) or {}).get("role") == role

    def layer(self, role: str):
        """The chosen layer of a role; None for "none"."""
        name = self.boxes[role].currentText()
        return self.viewer.layers[name] if self.boxes[role].currentIndex() > 0 and name in self.viewer.layers else None

    def reference_layer(self):
        """The layer whose grid the scan is read on: the T1w, else the T2w."""
        return self.layer("T1w") or self.layer("T2w")

    def layers(self) -> tuple:
        return tuple(self.layer(role) for role in SEQUENCE_ROLES)
