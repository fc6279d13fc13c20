"""The rat's motion between sequences of one session, applied to the painted scene.

A shift alone moves the scene by whole scene voxels (edges repeated), as the `study` lab has always
moved: exact and cheap. A shift with a rotation (degrees about the scanner's z axis, through the scene's
centre) moves the tissue labels by nearest neighbour on the scene grid (finer than every sequence, so the
sequence's partial volume stays smooth), and the tumor, whose signal varies voxel by voxel, is read back
from where each of its moved voxels came from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from napari_hcc.simulate.grids import SceneGrid


def whole_voxel_steps(scene: SceneGrid, motion: tuple[float, float, float]) -> tuple[int, int]:
    return int(round(motion[0] / scene.spacing[0])), int(round(motion[1] / scene.spacing[1]))


def shift_whole_voxels(volume: np.ndarray, steps: tuple[int, int]) -> np.ndarray:
    """`volume` shifted in-plane by whole voxels, repeating the edge."""
    out = volume
    for axis, n in enumerate(steps):
        if n:
            out = np.roll(out, n, axis=axis)
            edge, src = [slice(None)] * 3, [slice(None)] * 3
            edge[axis] = slice(0, n) if n > 0 else slice(n, None)
            src[axis] = slice(n, n + 1) if n > 0 else slice(n - 1, n)
            out[tuple(edge)] = out[tuple(src)]
    return out


def rigid_in_scene(scene: SceneGrid, motion: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) taking a moved scene voxel to the voxel its content came from."""
    dx, dy, deg = motion
    theta = np.deg2rad(deg)
    c, s = np.cos(theta), np.sin(theta)
    inverse_rotation = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    scale = np.asarray(scene.spacing)
    centre = (np.asarray(scene.shape) - 1) / 2.0
    matrix = np.diag(1 / scale) @ inverse_rotation @ np.diag(scale)
    offset = centre - matrix @ centre - np.diag(1 / scale) @ inverse_rotation @ np.array([dx, dy, 0.0])
    return matrix, offset


def move_labels(
    labels: np.ndarray, scene: SceneGrid, motion: tuple[float, float, float]
) -> tuple[np.ndarray, Callable[[tuple], np.ndarray]]:
    """The labels with the rat moved, and a function from moved voxel indices to source voxel coordinates."""
    matrix, offset = rigid_in_scene(scene, motion)
    moved = ndimage.affine_transform(labels, matrix, offset, order=0, mode="nearest", prefilter=False)

    def source(index: tuple) -> np.ndarray:
        return matrix @ np.stack(index).astype(np.float64) + offset[:, None]

    return moved, source
