"""The editable tumor layer (and the probability map) in the viewer: replaced in place when it is on the
same grid, because removing a layer costs napari about 0.4 s on the Qt thread and setting its data a
few milliseconds (a Labels layer then starts a fresh undo history)."""

from __future__ import annotations

import contextlib

import numpy as np
from napari import layers
from napari.utils.colormaps import DirectLabelColormap

from napari_hcc.plugin.layers import META_KEY, labels_layer

TUMOR_LAYER = "tumor"
PROBABILITY_LAYER = "tumor probability"
TUMOR_COLOR = "#ffd21f"  # yellow, so that it stands apart from a truth mask (red)
#: what the network called tumor and the anatomy gate left out (off the liver its head found)
LEFT_OUT_LAYER = "left out: off the liver"
LEFT_OUT_COLOR = "#2fd8ff"  # cyan: a candidate the reviewer may keep ("Keep what was left out")


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


def show_left_out_layer(viewer, mask, affine, geometry: dict, scan_meta: dict):
    """What the anatomy gate left out (`Prediction.left_out`, source grid), in cyan over the tumor layer.
    Not edited; "Keep what was left out" adds it to the tumor layer. None removes an earlier
    prediction's layer."""
    if mask is None:
        if LEFT_OUT_LAYER in viewer.layers:
            viewer.layers.remove(LEFT_OUT_LAYER)
        return None
    data, kwargs, _ = labels_layer(mask, affine, LEFT_OUT_LAYER, geometry, role="left-out")
    kwargs["metadata"][META_KEY]["scan"] = scan_meta
    layer = replace_layer(viewer, LEFT_OUT_LAYER, "labels", data, kwargs)
    layer.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: LEFT_OUT_COLOR})
    layer.editable = False
    return layer
