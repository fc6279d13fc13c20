"""The tumor in the image: shape, mass effect on the liver around it, and tissue composition maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_hcc.simulate.biology import TumorState
from napari_hcc.simulate.shapes import Blob

#: Mean of exp(k (cos t - 1)) over the sphere, so that lobules leave the mean radius unchanged.
_KAPPA = 3.0
_BUMP_MEAN = float((1.0 - np.exp(-2.0 * _KAPPA)) / (2.0 * _KAPPA))
_KAPPA_FINE = 40.0  # narrow bumps: fingers about 13 degrees wide
_FIELD_N = 28  # noise fields live on a 28^3 grid over the normalised tumor [-1.3, 1.3]^3
_FIELD_HALF = 1.3


@dataclass
class TumorShape:
    """Where the tumor sits and how it is lobulated (fixed for a rat across weeks)."""

    anchor: np.ndarray  # body frame, mm: the implantation site under the capsule
    inward: np.ndarray  # unit vector from the anchor towards the lobe's centre
    bump_dirs: np.ndarray  # (K, 3) unit vectors
    bump_amps: np.ndarray  # (K,)
    fields: np.ndarray  # (4, N, N, N) smooth noise: necrosis patches, edema, apoptosis, perfusion
    fine_dirs: np.ndarray | None = None  # (M, 3) narrow bumps of an irregular, infiltrative margin
    fine_amps: np.ndarray | None = None  # (M,)


def draw_tumor_shape(
    rng: np.random.Generator, left_lobe: Blob, side_deg: tuple[float, float] = (115, 165)
) -> TumorShape:
    """An orthotopic implant just under the capsule of a lobe (by default the left lateral lobe, on its
    ventro-lateral side: `side_deg`, the angle range in the lobe's frame)."""
    phi = rng.uniform(np.deg2rad(side_deg[0]), np.deg2rad(side_deg[1]))
    a, b, c = left_lobe.axes
    u, v = 0.84 * a * np.cos(phi), 0.84 * b * np.sin(phi)
    ca, sa = np.cos(left_lobe.angle), np.sin(left_lobe.angle)
    anchor = np.array(
        [
            left_lobe.center[0] + ca * u - sa * v,
            left_lobe.center[1] + sa * u + ca * v,
            left_lobe.center[2] + rng.uniform(-0.25, 0.25) * c,
        ]
    )
    inward = np.asarray(left_lobe.center) - anchor
    inward[2] = 0.0
    inward /= np.linalg.norm(inward)
    k = 5
    dirs = rng.normal(size=(k, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    fields = rng.normal(size=(4, _FIELD_N, _FIELD_N, _FIELD_N))
    fields = np.stack([ndimage.gaussian_filter(f, 2.2, mode="wrap") for f in fields])
    fields = (fields - fields.mean(axis=(1, 2, 3), keepdims=True)) / fields.std(axis=(1, 2, 3), keepdims=True)
    return TumorShape(anchor, inward, dirs, np.abs(rng.normal(0.09, 0.04, size=k)), fields.astype(np.float32))


def tumor_center(shape: TumorShape, r0: float) -> np.ndarray:
    """A growing implant expands into the lobe as well as out of it: its centre moves inwards."""
    return shape.anchor + shape.inward * 0.45 * r0


def radius(shape: TumorShape, direction: np.ndarray, r0: float, lobulation: float) -> np.ndarray:
    """Tumor radius along unit `direction` (..., 3); lobules grow more marked as the tumor grows."""
    dots = direction @ shape.bump_dirs.T.astype(direction.dtype)
    bumps = (np.exp(_KAPPA * (dots - 1.0)) - _BUMP_MEAN) @ shape.bump_amps.astype(direction.dtype)
    if shape.fine_amps is not None and len(shape.fine_amps):
        bumps = bumps + _fine_bumps(shape, direction)
    return r0 * (1.0 + lobulation * bumps)


_TABLE = (181, 361)  # the fine bumps tabulated every degree of (polar angle, azimuth)


def _fine_bumps(shape: TumorShape, direction: np.ndarray) -> np.ndarray:
    """The margin's narrow bumps along each direction, read from a table of the sphere at one degree
    (linear between entries; the bumps are about 13 degrees wide)."""
    if getattr(shape, "_fine_table", None) is None:
        theta = np.deg2rad(np.arange(_TABLE[0]))[:, None]
        phi = np.deg2rad(np.arange(_TABLE[1]) - 180.0)[None, :]
        dirs = np.stack(
            np.broadcast_arrays(np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)), -1
        )
        table = np.exp(_KAPPA_FINE * (dirs @ shape.fine_dirs.T - 1.0)) @ shape.fine_amps
        shape._fine_table = table.astype(np.float32)
    theta = np.rad2deg(np.arccos(np.clip(direction[..., 2], -1.0, 1.0)))
    phi = np.rad2deg(np.arctan2(direction[..., 1], direction[..., 0])) + 180.0
    return ndimage.map_coordinates(shape._fine_table, np.stack([theta, phi]), order=1, mode="nearest")


def max_bump(shape: TumorShape) -> float:
    """The largest relative radius the bumps can add."""
    fine = float(shape.fine_amps.sum()) if shape.fine_amps is not None else 0.0
    return float(shape.bump_amps.sum()) + fine


@dataclass
class TumorVoxels:
    """The fine-grid voxels inside the tumor, with coordinates used by the composition model."""

    index: tuple  # fancy index into the fine grid
    u: np.ndarray  # normalised radius, 0 at the centre, 1 at the boundary
    nrel: np.ndarray  # (n, 3) position relative to the centre, in units of the mean radius
    reach_mm: float  # how far from the centre the mass effect moves tissue
    r_max: float  # largest tumor radius
    lam: float  # decay length of the mass effect

    center: np.ndarray | None = None

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Where tissue that sat at `points` (n, 3) before the tumor grew is shown now.

        The inverse of the radial map r -> (r^3 - R^3 exp(-(r - R)/lambda))^(1/3), through a table;
        the largest tumor radius is used, so the answer errs towards farther out.
        """
        r = np.linspace(self.r_max, self.reach_mm, 256)
        r0 = np.cbrt(r**3 - self.r_max**3 * np.exp(-(r - self.r_max) / self.lam))
        rel = points - self.center
        dist = np.linalg.norm(rel, axis=1)
        shown = np.where(dist < r0[-1], np.interp(dist, r0, r), dist)
        return self.center + rel * (shown / np.maximum(dist, 1e-6))[:, None]


def apply_mass_effect(coords: list[np.ndarray], shape: TumorShape, r0: float, lobulation: float) -> TumorVoxels:
    """Find the tumor voxels and push the anatomy outside it away from the centre, in place.

    A voxel at distance r > R from the centre shows the tissue that sat at
    r0 = (r^3 - R^3 exp(-(r - R)/lambda))^(1/3) before the tumor grew: volume is conserved near the
    tumor and the displacement fades within a few lambda, so the liver wraps around a growing mass.
    """
    x, y, z = coords
    center = tumor_center(shape, r0)
    lam = min(0.35 * r0 + 0.5, 3.0)
    r_max = r0 * (1.0 + lobulation * max_bump(shape))
    reach = r_max + 3.0 * lam
    cx, cy, cz = (float(v) for v in center)  # Python floats keep float32 coordinates float32
    near = (np.abs(x - cx) < reach) & (np.abs(y - cy) < reach) & (np.abs(z - cz) < reach)
    index = np.nonzero(near)
    c32 = center.astype(np.float32)
    rel = np.stack([x[index] - c32[0], y[index] - c32[1], z[index] - c32[2]], axis=-1)
    r = np.sqrt(np.einsum("ij,ij->i", rel, rel))
    within = r < reach  # the cube's corners are beyond the mass effect
    index, rel, r = tuple(i[within] for i in index), rel[within], np.maximum(r[within], 1e-6)
    d = rel / r[:, None]
    rd = radius(shape, d, r0, lobulation)
    inside = r < rd
    out = ~inside
    src = np.cbrt(r[out] ** 3 - rd[out] ** 3 * np.exp(-(r[out] - rd[out]) / lam))
    for axis in range(3):
        values = coords[axis][index]
        values[out] = float(center[axis]) + d[out, axis] * src
        coords[axis][index] = values
    tumor_index = tuple(i[inside] for i in index)
    return TumorVoxels(
        tumor_index,
        (r[inside] / rd[inside]).astype(np.float32),
        (rel[inside] / r0).astype(np.float32),
        float(reach),
        r_max,
        lam,
        center,
    )


def _field(shape: TumorShape, which: int, nrel: np.ndarray) -> np.ndarray:
    grid = (nrel + _FIELD_HALF) / (2 * _FIELD_HALF) * (_FIELD_N - 1)
    return ndimage.map_coordinates(shape.fields[which], grid.T, order=1, mode="nearest")


def _soft_fraction(score: np.ndarray, target: float, width: float = 0.06) -> np.ndarray:
    """A soft-edged region of `score`'s highest values covering `target` of the voxels."""
    if target <= 0.0 or score.size == 0:
        return np.zeros_like(score)
    theta = np.quantile(score, 1.0 - min(target, 0.999))
    return 1.0 / (1.0 + np.exp(-(score - theta) / width))


def composition(shape: TumorShape, vox: TumorVoxels, state: TumorState) -> dict[str, np.ndarray]:
    """Voxel-wise fractions (viable, necrosis, apoptosis, edema) and viable-tissue perfusion.

    Necrosis is a central hypoxic core in untreated tumors and multifocal patches under treatment;
    infiltrate and edema gather at the rim under NK cells; apoptosis is scattered, denser at the rim
    where NK cells arrive; perfusion of viable tissue is highest at the periphery.
    """
    u, nrel = vox.u, vox.nrel
    if u.size == 0:  # the tumor lies outside this grid's slab (a narrow sagittal or axial stack)
        empty = np.zeros(0, np.float32)
        return {name: empty for name in ("viable", "necrosis", "apoptosis", "edema", "perfusion")}
    patch = state.patchy_necrosis
    nec_score = (
        (1.0 - patch) * (1.0 - u)
        + patch * (0.3 * (1.0 - u) + 0.25 * _field(shape, 0, nrel))
        + 0.05 * _field(shape, 0, nrel)
    )
    necrosis = _soft_fraction(nec_score, state.necrosis / 0.97) * 0.97
    rim = state.rim_infiltrate
    ede_score = rim * u + (1.0 - rim) * 0.3 * u + 0.18 * _field(shape, 1, nrel)
    room = 1.0 - necrosis
    edema = _soft_fraction(ede_score, state.edema / max(room.mean(), 1e-3)) * room * 0.9
    apo_w = np.clip(0.6 + 0.35 * _field(shape, 2, nrel) + rim * u, 0.05, None) * (1.0 - necrosis - edema)
    apoptosis = np.minimum(state.apoptosis * apo_w / max(apo_w.mean(), 1e-6), 0.5 * (1.0 - necrosis - edema))
    viable = np.clip(1.0 - necrosis - edema - apoptosis, 0.0, 1.0)
    perfusion = state.perfusion * np.clip(0.55 + 0.7 * u**1.5 + 0.2 * _field(shape, 3, nrel), 0.1, None)
    return {
        "viable": viable.astype(np.float32),
        "necrosis": necrosis.astype(np.float32),
        "apoptosis": apoptosis.astype(np.float32),
        "edema": edema.astype(np.float32),
        "perfusion": perfusion.astype(np.float32),
    }
