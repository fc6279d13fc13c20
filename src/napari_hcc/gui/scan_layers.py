"""Put a scan into a viewer: replace the previous scan's layers, go to the tumor's slice."""

from __future__ import annotations

import numpy as np

from napari_hcc.io.orientation import to_display
from napari_hcc.io.scan import Scan
from napari_hcc.plugin.layers import META_KEY, image_layer, labels_layer, scan_layers, source_geometry


def is_scan_layer(layer) -> bool:
    return META_KEY in getattr(layer, "metadata", {}) and "scan" in layer.metadata[META_KEY]


def show_scan(viewer, scan: Scan, replace: bool = True) -> list:
    """Add the scan's layers (T1w, T2w, CE, mask); return them. Earlier scans' layers go first."""
    if replace:
        for layer in [lyr for lyr in viewer.layers if is_scan_layer(lyr)]:
            viewer.layers.remove(layer)
    added = []
    for data, kwargs, kind in scan_layers(scan):
        added.append(getattr(viewer, f"add_{kind}")(data, **kwargs))
    labels = [lyr for lyr in added if lyr.__class__.__name__ == "Labels"]
    if labels and labels[0].data.any():
        # Open on the slice with the most tumor: axis 0 of the display frame is the slice axis.
        k = int(np.argmax(labels[0].data.reshape(labels[0].data.shape[0], -1).sum(axis=1)))
        viewer.dims.set_point(0, float(labels[0].data_to_world((k, 0, 0))[0]))
    else:
        viewer.dims.set_point(0, float(np.mean(added[0].extent.world[:, 0])))
    viewer.reset_view()
    return added


def show_aligned(picker, scan: Scan) -> None:
    """Show a scan's aligned T2w and CE in the layers the widget read them from (same grid as the T1w)."""
    for role, data in (("T2w", scan.t2w), ("CE", scan.ce)):
        layer = picker.layer(role)
        if layer is not None:
            layer.data = to_display(data, scan.affine)[0]


def show_week(viewer, reference: Scan, week) -> list:
    """Add another session of the rat, aligned to `reference` (an `AlignedWeek`), as hidden layers on its grid."""
    geometry = source_geometry(reference.shape, reference.affine, reference.header, reference.paths.get("T1w"))
    how = "aligned" if week.alignment.accepted else "as acquired"
    layers = [image_layer(week.t1w, reference.affine, f"T1w ses-{week.session} ({how})", None, geometry,
                          colormap="gray", visible=False)]  # fmt: skip
    if week.mask is not None:
        layers.append(labels_layer(week.mask, reference.affine, f"tumor ses-{week.session} ({how})", geometry, None))
        layers[-1][1]["visible"] = False
    return [getattr(viewer, f"add_{kind}")(data, **kwargs) for data, kwargs, kind in layers]
