"""The editable tumor layer (and the probability map) in the viewer: replaced in place when it is on the
same grid, because removing a layer costs napari about 0.4 s on the Qt thread and setting its data a
few milliseconds (a Labels layer then starts a fresh undo history)."""

from __future__ import annotations

import contextlib

import numpy as np
from napari import layers
from napari.utils.colormaps import DirectLabelColormap

TUMOR_LAYER = "tumor"
PROBABILITY_LAYER = "tumor probability"
TUMOR_COLOR = "#ffd21f"  # yellow, so that it stands apart from a truth mask (red)


def replace_layer(viewer, name: str, kind: str, data, kwargs):
    """Show `data` in the layer `name`: the same layer when it is on the same grid, else a new one."""
    old = viewer.layers[name] if name in viewer.layers else None
    cls = {"labels": layers.Labels, "image": layers.Image}[kind]
    if (
        isinstance(old, cls)  # isinstance: plugins get proxies of layers
        and old.data.shape == data.shape
        and np.allclose(old.scale, kwargs["scale"])
        and np.allclose(old.affine.affine_matrix, kwargs["affine"])
    ):
        old.metadata = kwargs["metadata"]
        old.data = data
        return old
    if old is not None:
        viewer.layers.remove(name)
    return getattr(viewer, f"add_{kind}")(data, **kwargs)


def show_tumor_layer(viewer, data, kwargs, on_paint):
    """The editable tumor layer in yellow; `on_paint` hears every brush stroke (connected once)."""
    fresh = TUMOR_LAYER not in viewer.layers
    layer = replace_layer(viewer, TUMOR_LAYER, "labels", data, kwargs)
    if fresh or not isinstance(layer.colormap, DirectLabelColormap):
        layer.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: TUMOR_COLOR})
    with contextlib.suppress(TypeError, ValueError):
        layer.events.paint.disconnect(on_paint)
    layer.events.paint.connect(on_paint)
    return layer
