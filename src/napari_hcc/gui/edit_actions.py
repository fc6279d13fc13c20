"""What the review widget does with the tumor layer after a run: hear the reviewer's brush strokes,
apply the editing helpers (gui/mask_tools.py, each one undo step), keep what the anatomy gate left out,
re-measure, and read the response again from the edited mask (inference/reread.py, in a background
worker). A mixin of `ReviewWidget`, which provides the viewer, the layers, the panels and `_say`/`_start`.
"""

from __future__ import annotations

import numpy as np
from napari.qt.threading import create_worker

from napari_hcc.errors import InputError
from napari_hcc.gui import mask_tools
from napari_hcc.gui.tumor_layer import LEFT_OUT_LAYER
from napari_hcc.gui.workers import reread_scan
from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3
from napari_hcc.plugin.layers import layer_source


class EditActions:
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
        self.edit_panel.said(fn.__name__, changed)

    def interpolate(self) -> None:
        drawn = [k for k in self.edited if self.labels is not None and self.labels.data[k].any()]
        if len(drawn) < 2:
            return self._say(
                "Draw (or correct) the tumor on two slices first; Interpolate fills the slices between them.",
                error=True,
            )
        self._helper(mask_tools.interpolate, drawn[-2], drawn[-1])

    def remove_islands(self) -> None:
        self._helper(mask_tools.remove_islands, self.island_mm3.value())

    def fill_holes(self) -> None:
        self._helper(mask_tools.fill_holes)

    def keep_left_out(self) -> None:
        if LEFT_OUT_LAYER not in self.viewer.layers:
            return self._say("The anatomy gate left nothing out of this prediction.", error=True)
        self._helper(mask_tools.add_mask, self.viewer.layers[LEFT_OUT_LAYER].data)

    def _measure(self) -> np.ndarray | None:
        """Show the tumor layer's volume and diameter; return its mask on the scan's grid."""
        if self.labels is None or self.session.scan is None:
            return None
        mask, affine, _ = layer_source(self.labels)
        self.panel.show_measurements(volume_mm3(mask, affine), longest_axial_diameter_mm(mask, affine), edited=True)
        return mask

    def reread_response(self) -> None:
        if self.worker is not None:
            return
        prediction = self.session.prediction
        if prediction is None or self.labels is None or self.labels not in self.viewer.layers:
            return self._say("Run the model first: the response is read again from the tumor layer.", error=True)
        mask = self._measure()  # the panel's volume and diameter are those of the mask the response is read from
        self.cancel_event.clear()
        args = (*self.state.compute, prediction, self.session.scan, mask.astype(np.uint8), self.cancel_event)
        self._start(create_worker(reread_scan, self.session.engines, *args))
