"""A rat's weeks aligned to one session, for the weekly view: each other session's T1w (and mask)
registered rigidly to the chosen session's T1w and resampled once onto its grid, in world coordinates.

Between weeks the animal is taken out and put back, so larger moves are plausible than between the
sequences of one session (up to 20 mm and 20 degrees). The tumor grows between weeks; the body and
the liver dominate the match, so a rigid transform aligns the anatomy and leaves the growth visible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_hcc.io.scan import Scan, ScanRef
from napari_hcc.progress import CancelFlag, check_cancel
from napari_hcc.registration.align import Alignment, register

WEEK_MAX_SHIFT_MM = 20.0
WEEK_MAX_ROTATION_DEG = 20.0


@dataclass
class AlignedWeek:
    subject: str | None
    session: str | None
    t1w: np.ndarray  # on the reference session's grid
    mask: np.ndarray | None  # the session's mask (truth or manual), on the reference grid
    alignment: Alignment


def resample_through(data, affine, matrix_ras, ref_shape, ref_affine, order: int = 1) -> np.ndarray:
    """`data` (on `affine`) on the reference grid, through `matrix_ras` (reference world -> data world)."""
    index = np.linalg.inv(np.asarray(affine)) @ np.asarray(matrix_ras) @ np.asarray(ref_affine)
    out = ndimage.affine_transform(
        np.asarray(data, dtype=np.float32), index[:3, :3], index[:3, 3], output_shape=tuple(ref_shape),
        order=order, mode="constant", cval=0.0,
    )  # fmt: skip
    return out


def align_week(reference: Scan, other: Scan) -> AlignedWeek:
    """One other session of the rat aligned to `reference` (rigid, Mattes MI on the T1w)."""
    t1w, result = register(
        reference.t1w, reference.affine, other.t1w, other.affine, "T1w",
        max_shift_mm=WEEK_MAX_SHIFT_MM, max_rotation_deg=WEEK_MAX_ROTATION_DEG,
    )  # fmt: skip
    mask = None
    if other.mask is not None:
        matrix = result.matrix_ras if result.accepted else np.eye(4)
        mask = resample_through(other.mask, other.affine, matrix, reference.shape, reference.affine, order=0)
        mask = (mask > 0.5).astype(np.uint8)
    return AlignedWeek(other.subject, other.session, t1w, mask, result)


def align_weeks(reference: Scan, others: list[ScanRef], cancel: CancelFlag | None = None) -> Iterator[AlignedWeek]:
    """Each of `others` (the rat's other sessions) aligned to `reference`, one at a time."""
    for ref in others:
        check_cancel(cancel, "aligning the weeks")
        yield align_week(reference, ref.load())
