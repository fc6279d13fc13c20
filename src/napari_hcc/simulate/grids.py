"""Where each sequence's voxels lie, the finer scene grid the rat is painted on, and the exact
partial-volume operator that takes the scene to a sequence's voxels.

Every sequence of a protocol has its own grid (matrix, pixel size, slice thickness and gap, number of
slices, plane). The scene is an axis-aligned box of the scanner frame that holds all of them, finer than
the finest (half a pixel in-plane, a third of a slice through-plane, as the `study` lab has always been
rendered) but at most `MAX_SCENE_VOXELS`. A sequence's voxel is the mean of the scene over its box:
overlap weights along each axis, so any pixel size, thickness, gap or plane is integrated exactly, and
on the `study` grids the operator is the 2 x 2 x 3 block mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from napari_hcc.simulate.protocol import SequenceProtocol

SUPERSAMPLE = (2, 2, 3)  # in-plane, in-plane, through the slice: the `study` lab's scene
MAX_SCENE_VOXELS = 4_610_000  # the study lab's 320 x 320 x 45
#: the scene of every other lab (varied, files, --like): two sub-slices per slice and a smaller cap, so that
#: a varied cohort renders in the time the study's does
QUICK_SUPERSAMPLE = (2, 2, 2)
QUICK_MAX_SCENE_VOXELS = 2_600_000
#: voxel axes (i, j, k) -> (scanner axis, sign); k is the slice axis. Axial is stored LAS, as many DICOM
#: converters write it; coronal has i right-to-left, j foot-to-head; sagittal i posterior-to-anterior.
PLANE_AXES = {
    "axial": ((0, -1), (1, 1), (2, 1)),
    "coronal": ((0, -1), (2, 1), (1, 1)),
    "sagittal": ((1, 1), (2, 1), (0, 1)),
}


@dataclass(frozen=True)
class SequenceGrid:
    shape: tuple[int, int, int]
    affine: np.ndarray  # voxel -> scanner mm
    extent: tuple[float, float, float]  # what one voxel integrates along i, j, k (pixel, pixel, thickness)
    axes: tuple[tuple[int, int], ...]  # (scanner axis, sign) of i, j, k

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(np.linalg.norm(self.affine[:3, v])) for v in range(3))


def sequence_grid(seq: SequenceProtocol, centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SequenceGrid:
    """The grid of `seq`, centred on `centre_mm` of the scanner frame."""
    shape = (int(seq.matrix[0]), int(seq.matrix[1]), int(seq.slices))
    spacing = (float(seq.pixel_mm[0]), float(seq.pixel_mm[1]), float(seq.slice_mm + seq.gap_mm))
    axes = PLANE_AXES[seq.plane]
    affine = np.eye(4)
    for v, (a, sign) in enumerate(axes):
        affine[:, v] = 0.0
        affine[a, v] = sign * spacing[v]
    affine[:3, 3] = np.asarray(centre_mm) - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return SequenceGrid(shape, affine, (spacing[0], spacing[1], float(seq.slice_mm)), axes)


@dataclass(frozen=True)
class SceneGrid:
    """An axis-aligned box of the scanner frame (RAS+), voxel i along x, j along y, k along z."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]  # scanner mm of voxel (0, 0, 0)

    @property
    def affine(self) -> np.ndarray:
        a = np.diag([*self.spacing, 1.0])
        a[:3, 3] = self.origin
        return a

    def centres(self, axis: int) -> np.ndarray:
        return self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis])


def _world_box(grid: SequenceGrid) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for v, (a, _sign) in enumerate(grid.axes):
        ends = grid.affine[a, 3] + grid.affine[a, v] * np.array([0, grid.shape[v] - 1])
        lo[a] = min(lo[a], ends.min() - grid.extent[v] / 2)
        hi[a] = max(hi[a], ends.max() + grid.extent[v] / 2)
    return lo, hi


def scene_grid(
    grids: list[SequenceGrid], within=None, supersample=SUPERSAMPLE, max_voxels: int = MAX_SCENE_VOXELS
) -> SceneGrid:
    """The box holding every grid (cut to `within`, a (lo, hi) box of where anything but air can be),
    finer than the finest of them, and at most `max_voxels`."""
    boxes = [_world_box(g) for g in grids]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    if within is not None:
        lo, hi = np.maximum(lo, within[0]), np.minimum(hi, within[1])
    step = np.full(3, np.inf)
    for g in grids:
        for v, (a, _sign) in enumerate(g.axes):
            step[a] = min(step[a], g.extent[v] / supersample[v])
    size = hi - lo
    n = np.maximum(1, np.round(size / step - 1e-6)).astype(int)
    if n.prod() > max_voxels:
        n = np.maximum(1, np.floor(n / (n.prod() / max_voxels) ** (1 / 3))).astype(int)
    spacing = size / n
    return SceneGrid(
        tuple(int(v) for v in n), tuple(float(v) for v in spacing), tuple(float(v) for v in lo + spacing / 2)
    )


@dataclass(frozen=True)
class Operator:
    """Scene -> sequence voxels: per scene axis, the (n_out, n_scene) overlap weights and the voxel axis
    of the sequence it becomes."""

    weights: tuple[np.ndarray, np.ndarray, np.ndarray]
    voxel_axis: tuple[int, int, int]  # scene axis a -> sequence voxel axis

    def apply(self, volume: np.ndarray, start: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """The mean of `volume` (the scene, or a box of it starting at `start`) over each output voxel."""
        out = volume.astype(np.float32, copy=False)
        order = np.argsort([w.shape[0] / max(w.shape[1], 1) for w in self.weights])  # shrink the most first
        for a in order:
            w = sparse.csr_matrix(self.weights[a][:, start[a] : start[a] + volume.shape[a]])  # a band: 2-4 per row
            moved = np.moveaxis(out, a, 0)
            flat = w @ moved.reshape(moved.shape[0], -1)
            out = np.moveaxis(flat.reshape((w.shape[0],) + moved.shape[1:]), 0, a)
        return np.ascontiguousarray(out.transpose(np.argsort(self.voxel_axis)), dtype=np.float32)

    def nearest(self, labels: np.ndarray) -> np.ndarray:
        """The scene label that fills most of each output voxel's box along every axis (for label maps)."""
        index = [w.argmax(axis=1) for w in self.weights]
        picked = labels[np.ix_(*index)]
        return np.ascontiguousarray(picked.transpose(np.argsort(self.voxel_axis)))


def operator(scene: SceneGrid, grid: SequenceGrid) -> Operator:
    weights: list = [None, None, None]
    voxel_axis = [0, 0, 0]
    for v, (a, _sign) in enumerate(grid.axes):
        p = grid.affine[a, 3] + grid.affine[a, v] * np.arange(grid.shape[v])
        w, h = grid.extent[v], scene.spacing[a]
        c = scene.centres(a)
        overlap = np.minimum(p[:, None] + w / 2, c[None, :] + h / 2) - np.maximum(
            p[:, None] - w / 2, c[None, :] - h / 2
        )
        weights[a] = (np.clip(overlap, 0.0, None) / w).astype(np.float32)
        voxel_axis[a] = v
    return Operator(tuple(weights), tuple(voxel_axis))
