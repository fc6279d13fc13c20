"""Whether a scan looks like the world the model learned from, judged by the liver its anatomy head finds.

A rat's liver has a size. The model card records the largest liver any of its training sessions showed
(`postprocess.largest_liver_cm3`, from the simulator's tissue maps; `scripts/card_liver.py`). Where the
anatomy head calls much more than that liver (more than `UNLIKE_FACTOR` times), the head, and so the
tumor network beside it, is reading something it has never seen: a whole trunk in another contrast, a
field far larger than a rat's liver region. The healthy real rat of `../shared/realdata` is such a scan
(a coronal bSSFP trunk: 128 cm^3 of "liver" against at most 35 cm^3 in training, and a false tumor). The
output then says so, and the response (arm, viability, apoptosis) is not read from that mask. Too little
liver says nothing: a thin slab shows little of a normal liver.
"""

from __future__ import annotations

import numpy as np

from napari_hcc.inference.liver_gate import LIVER_LEVEL
from napari_hcc.inference.measure import volume_mm3

#: why the response is not read, as the panel says it (Response.unread_because)
UNLIKE_WORLD = "the scan is unlike the rats the model learned from"
#: a liver more than this many times the largest in training marks a scan as unlike the training world
UNLIKE_FACTOR = 2.0


def liver_cm3(liver: np.ndarray, affine: np.ndarray) -> float:
    """The volume the anatomy head calls liver (probability at least LIVER_LEVEL), in cm^3."""
    return volume_mm3(np.asarray(liver) >= LIVER_LEVEL, affine) / 1000.0


def unlike_world_note(found_cm3: float, largest_cm3: float | None) -> str | None:
    """The note for a scan whose liver is far beyond the largest in training, or None (also when the card
    records no largest liver)."""
    if not largest_cm3 or found_cm3 <= UNLIKE_FACTOR * largest_cm3:
        return None
    return (
        f"this scan is unlike the rats the model learned from: its anatomy head calls {found_cm3:.0f} cm^3 liver, "
        f"more than {UNLIKE_FACTOR:g} times the largest liver in training ({largest_cm3:.0f} cm^3); read the mask "
        "slice by slice, and the response is not read"
    )
