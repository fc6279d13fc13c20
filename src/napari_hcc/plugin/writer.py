"""npe2 writer: a Labels layer saved as NIfTI on its source grid (affine and header kept), atomically."""

from __future__ import annotations

import numpy as np

from napari_hcc.io.masks import save_mask_like_source
from napari_hcc.plugin.layers import META_KEY


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Write a Labels layer as NIfTI on its source grid (affine and header kept), atomically."""

    source = (meta.get("metadata") or {}).get(META_KEY, {}).get("source")
    out = save_mask_like_source(
        np.asarray(data), path, source, meta.get("scale"), meta.get("affine"), meta.get("translate")
    )
    return [str(out)]
