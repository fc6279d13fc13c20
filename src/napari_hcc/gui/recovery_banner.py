"""The "Unsaved edits found" banner of HCC Review and what it does: edits of the tumor layer are autosaved
to a recovery file (review/recovery.py) a second after each stroke; when the scan in view has such a
file that was never saved as a correction, the banner offers to restore it into the tumor layer (one
undo step) or to discard it."""

from __future__ import annotations

from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QVBoxLayout

from napari_hcc.gui import mask_tools
from napari_hcc.gui.run_panel import button
from napari_hcc.gui.tumor_layer import TUMOR_LAYER, show_tumor_layer
from napari_hcc.plugin.layers import META_KEY, labels_layer, layer_scan_meta, layer_source, scan_from_layers
from napari_hcc.review import recovery


class RecoveryBanner(QGroupBox):
    def __init__(self, review, parent=None):
        """review: the HCC Review widget (its viewer, picker, session and tumor layer)."""
        super().__init__("Unsaved edits found", parent)
        self.review = review
        bl = QVBoxLayout(self)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        br = QHBoxLayout()
        br.addWidget(button("Restore them", self.restore))
        br.addWidget(button("Discard", self.discard))
        bl.addWidget(self.label)
        bl.addLayout(br)
        self.setVisible(False)

    def offer(self, found) -> None:
        """Show the banner for a `Recovered` file, or hide it (None)."""
        if found is None:
            self.setVisible(False)
            return
        self.label.setText(
            f"Edits of {found.label or 'this scan'} from {found.saved} were not saved as a correction. "
            "Restore them into the tumor layer?"
        )
        self.setVisible(True)

    def _t1w(self):
        return self.review.picker.reference_layer()

    def check(self) -> None:
        self.offer(self.review.session.pending_recovery(layer_scan_meta(self._t1w())))

    def autosave(self) -> None:
        r, session = self.review, self.review.session
        if r.labels is None or r.labels not in r.viewer.layers or session.key is None:
            return
        mask, _, _ = layer_source(r.labels)
        recovery.write_recovery(session.key, mask, session.label, session.model_id)

    def restore(self) -> None:
        r, session, t1w = self.review, self.review.session, self._t1w()
        found = session.pending_recovery(layer_scan_meta(t1w))
        if found is None:
            return self.offer(None)
        _, affine, geometry = layer_source(t1w)
        data, kwargs, _ = labels_layer(found.mask, affine, TUMOR_LAYER, geometry, role="recovered")
        kwargs["metadata"][META_KEY]["scan"] = layer_scan_meta(t1w)
        if r.labels is not None and r.labels in r.viewer.layers and r.labels.data.shape == data.shape:
            mask_tools.apply_mask(r.labels, data)  # undoable, keeps the prediction's layer
        else:
            r.labels = show_tumor_layer(r.viewer, data, kwargs, r._on_paint)
            if session.scan is None:
                session.set_scan(*scan_from_layers(*r.picker.layers()), layer_scan_meta(t1w))
        self.offer(None)
        session.recovery_handled = True
        r._measure()
        r._say(f"restored the unsaved edits of {found.label or 'this scan'}.")

    def discard(self) -> None:
        key = self.review.session.key_for(layer_scan_meta(self._t1w()))
        if key:
            recovery.discard_recovery(key)
        self.offer(None)
