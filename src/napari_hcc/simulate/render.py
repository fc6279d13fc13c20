"""Render one MRI session of one rat: anatomy + tumor -> T1w, T2w, CE volumes and their truth.

The scene is rendered on a grid finer than the output (2x in-plane, 3x through-plane by default) and
averaged down, which gives realistic partial volume at organ and tumor boundaries. Noise is added
after averaging, at the output resolution, as a scanner would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_hcc.simulate import mri
from napari_hcc.simulate.anatomy import LABEL, TISSUES, build_anatomy, paint
from napari_hcc.simulate.biology import Rat, TumorState
from napari_hcc.simulate.tumor import TumorShape, apply_mass_effect, composition
from napari_hcc.vocabulary import COMPONENTS


@dataclass(frozen=True)
class Grid:
    """The acquisition grid: about 160 x 160 in-plane at 0.3 mm and 15 slices of 1.2 mm."""

    shape: tuple[int, int, int] = (160, 160, 15)
    spacing: tuple[float, float, float] = (0.3, 0.3, 1.2)
    supersample: tuple[int, int, int] = (2, 2, 3)

    def affine(self, slab_offset_mm: float = 0.0) -> np.ndarray:
        """Voxel -> scanner millimetres. Stored LAS (x flipped), as many DICOM converters write it."""
        sx, sy, sz = self.spacing
        nx, ny, nz = self.shape
        a = np.diag([-sx, sy, sz, 1.0])
        a[:3, 3] = [(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz + slab_offset_mm]
        return a

    def fine_affine(self, slab_offset_mm: float = 0.0) -> np.ndarray:
        ss = np.asarray(self.supersample, dtype=float)
        sub = np.eye(4)
        sub[:3, :3] = np.diag(1.0 / ss)
        sub[:3, 3] = 0.5 / ss - 0.5
        return self.affine(slab_offset_mm) @ sub

    @property
    def fine_shape(self) -> tuple[int, int, int]:
        return tuple(n * s for n, s in zip(self.shape, self.supersample))


@dataclass
class Pose:
    """How the rat lies in the scanner at one session."""

    angle_rad: float  # rotation about the scanner z axis
    shift_mm: tuple[float, float]  # in-plane translation
    slab_offset_mm: float  # where the slab sits along z, relative to the liver centre
    growth: float  # body growth since baseline
    stomach_filling: float
    motion_mm: dict = field(default_factory=dict)  # per-sequence in-plane shift vs the T1w


@dataclass
class RenderedSession:
    images: dict[str, np.ndarray]  # BIDS suffix -> int16 volume
    mask: np.ndarray  # uint8, whole tumor
    fractions: dict[str, np.ndarray]  # component -> float32 volume fraction of each voxel
    tissue: np.ndarray  # uint8 tissue labels (TISSUES)
    affine: np.ndarray
    acquisition: dict  # what the sidecars record per sequence
    truth: dict  # what the truth sidecar records


def draw_pose(rng: np.random.Generator, week: float, motion_max_mm: float) -> Pose:
    motion = {}
    for seq in mri.SEQUENCES[1:]:
        shift = rng.uniform(-1.0, 1.0, size=2) * motion_max_mm
        motion[seq.suffix] = (float(shift[0]), float(shift[1]))
    return Pose(
        angle_rad=float(np.deg2rad(rng.normal(0.0, 3.0))),
        shift_mm=(float(rng.normal(0.0, 0.8)), float(rng.normal(0.0, 0.8))),
        slab_offset_mm=float(rng.normal(0.0, 0.7)),
        growth=float(1.0 + 0.012 * week + rng.normal(0.0, 0.004)),
        stomach_filling=float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3)),
        motion_mm=motion,
    )


def _body_coords(grid: Grid, pose: Pose) -> list[np.ndarray]:
    """Body-frame millimetres of every fine voxel (scanner frame, then the rat's pose undone)."""
    aff = grid.fine_affine(pose.slab_offset_mm)
    nx, ny, nz = grid.fine_shape
    i = np.arange(nx, dtype=np.float32)[:, None, None]
    j = np.arange(ny, dtype=np.float32)[None, :, None]
    k = np.arange(nz, dtype=np.float32)[None, None, :]
    xw = aff[0, 0] * i + aff[0, 3] - pose.shift_mm[0]
    yw = aff[1, 1] * j + aff[1, 3] - pose.shift_mm[1]
    zw = aff[2, 2] * k + aff[2, 3]
    c, s = np.cos(pose.angle_rad), np.sin(pose.angle_rad)
    shape = grid.fine_shape
    x = np.broadcast_to(c * xw + s * yw, shape).astype(np.float32)
    y = np.broadcast_to(-s * xw + c * yw, shape).astype(np.float32)
    z = np.broadcast_to(zw, shape).astype(np.float32)
    return [x, y, z]


def _box_maker(grid: Grid, pose: Pose, vox):
    """Body-frame box -> slices of the fine grid that surely hold what it shows.

    Points of the box are pushed through the tumor's mass effect (`vox.forward`), then the pose;
    the bounding box of their images, plus a voxel, is where the tissue can appear.
    """
    inv = np.linalg.inv(grid.fine_affine(pose.slab_offset_mm))
    c, s = np.cos(pose.angle_rad), np.sin(pose.angle_rad)
    shape = grid.fine_shape
    t = np.linspace(0.0, 1.0, 9)

    def box_of(lo, hi):
        lo, hi = np.clip(lo, -60.0, 60.0), np.clip(hi, -60.0, 60.0)
        pts = np.stack(np.meshgrid(*[a + (b - a) * t for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
        pts = np.concatenate([pts, vox.forward(pts)])
        xw = c * pts[:, 0] - s * pts[:, 1] + pose.shift_mm[0]
        yw = s * pts[:, 0] + c * pts[:, 1] + pose.shift_mm[1]
        ijk = inv[:3, :3] @ np.stack([xw, yw, pts[:, 2]]) + inv[:3, 3:4]
        step = np.abs(np.diag(inv)[:3]) * ((hi - lo) / (len(t) - 1)) + 2  # sample spacing, in voxels
        lo_i = np.floor(ijk.min(axis=1) - step).astype(int)
        hi_i = np.ceil(ijk.max(axis=1) + step).astype(int) + 1
        return tuple(slice(max(0, a), min(n, max(0, b))) for a, b, n in zip(lo_i, hi_i, shape))

    return box_of


def _shift_whole_voxels(a: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Shift in-plane by whole fine voxels (0.15 mm steps), repeating the edge."""
    out = a
    for axis, n in enumerate(shift):
        if n:
            out = np.roll(out, n, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = slice(0, n) if n > 0 else slice(n, None)
            src = [slice(None)] * 3
            src[axis] = slice(n, n + 1) if n > 0 else slice(n - 1, n)
            out[tuple(edge)] = out[tuple(src)]
    return out


def _block_mean(a: np.ndarray, ss: tuple[int, int, int]) -> np.ndarray:
    nx, ny, nz = (n // s for n, s in zip(a.shape, ss))
    return a.reshape(nx, ss[0], ny, ss[1], nz, ss[2]).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)


def _block_mode(labels: np.ndarray, ss: tuple[int, int, int], n_labels: int) -> np.ndarray:
    nx, ny, nz = (n // s for n, s in zip(labels.shape, ss))
    blocks = labels.reshape(nx, ss[0], ny, ss[1], nz, ss[2]).transpose(0, 2, 4, 1, 3, 5).reshape(-1, int(np.prod(ss)))
    out_index = np.repeat(np.arange(blocks.shape[0]), blocks.shape[1])
    counts = np.bincount(out_index * n_labels + blocks.ravel(), minlength=blocks.shape[0] * n_labels)
    return counts.reshape(-1, n_labels).argmax(axis=1).astype(np.uint8).reshape(nx, ny, nz)


def render_session(
    rat: Rat,
    anatomy_params: dict,
    shape: TumorShape,
    state: TumorState,
    pose: Pose,
    rng: np.random.Generator,
    grid: Grid = Grid(),
) -> RenderedSession:
    ss = grid.supersample
    coords = _body_coords(grid, pose)
    plane = [coords[0][:, :, 0].copy(), coords[1][:, :, 0].copy()]  # before the mass effect
    anatomy = build_anatomy(anatomy_params, pose.stomach_filling, pose.growth)
    lobulation = float(np.clip((state.diameter_mm - 4.0) / 8.0, 0.3, 1.5))
    vox = apply_mass_effect(coords, shape, state.diameter_mm / 2.0, lobulation)
    labels = np.zeros(grid.fine_shape, dtype=np.uint8)
    box_of = _box_maker(grid, pose, vox)
    warp_box = box_of(vox.center - vox.reach_mm, vox.center + vox.reach_mm)
    paint(labels, coords, plane, warp_box, anatomy, box_of)
    del coords
    labels[vox.index] = LABEL["tumor"]
    comp = composition(shape, vox, state)

    # Strain-specific tumor relaxation (McA-RH7777 in Buffalo rats vs N1-S1 in Sprague-Dawley).
    tumor_scale = (1.0, 1.08) if rat.strain == "Buffalo" else (1.0, 1.0)
    necrosis_tissue = [mri.NECROSIS_LIQUEFACTIVE, mri.NECROSIS_COAGULATIVE]
    patch = state.patchy_necrosis

    flat_index = np.ravel_multi_index(vox.index, grid.fine_shape)
    bias = mri.bias_field(grid.shape, rng)
    images, acquisition, applied = {}, {}, {}
    viable = mri.TISSUE_TABLE["tumor"]
    for seq in mri.SEQUENCES:
        lut = np.array([mri.tissue_signal(mri.TISSUE_TABLE[t], seq) for t in TISSUES], dtype=np.float32)
        fine = lut[labels]
        s_viable = mri.spin_echo(
            viable.pd,
            viable.t1_ms * tumor_scale[0],
            viable.t2_ms * tumor_scale[1],
            viable.gd_mM * comp["perfusion"],
            seq,
        )
        s_nec = (1.0 - patch) * mri.tissue_signal(necrosis_tissue[0], seq) + patch * mri.tissue_signal(
            necrosis_tissue[1], seq
        )
        mix = (
            comp["viable"] * s_viable
            + comp["necrosis"] * s_nec
            + comp["apoptosis"] * mri.tissue_signal(mri.APOPTOSIS, seq)
            + comp["edema"] * mri.tissue_signal(mri.EDEMA_INFILTRATE, seq)
        )
        fine.ravel()[flat_index] = mix
        shift = pose.motion_mm.get(seq.suffix)
        if shift is not None:
            fine_aff = grid.fine_affine()
            steps = (int(round(shift[0] / fine_aff[0, 0])), int(round(shift[1] / fine_aff[1, 1])))
            fine = _shift_whole_voxels(fine, steps)
            # what was applied: whole voxels of the fine grid, as a shift of the content in RAS+ x and y
            applied[seq.suffix] = (float(steps[0] * fine_aff[0, 0]), float(steps[1] * fine_aff[1, 1]))
        signal = _block_mean(fine, ss) * bias
        snr = seq.snr_liver * float(np.exp(rng.normal(0.0, 0.1)))
        sigma = float(lut[LABEL["liver"]]) / snr
        noisy = mri.rician(signal, sigma, rng)
        # Receiver gain and reconstruction scaling differ per session and sequence.
        gain = float(4000.0 * np.exp(rng.normal(0.0, 0.3)))
        images[seq.suffix] = np.clip(np.rint(noisy * gain), 0, 32767).astype(np.int16)
        acquisition[seq.suffix] = {"noise_sigma": sigma * gain, "receiver_scale": gain, "snr_liver": snr}

    occupancy = _block_mean((labels == LABEL["tumor"]).astype(np.float32), ss)
    mask = (occupancy >= 0.5).astype(np.uint8)
    n_out = int(np.prod(grid.shape))
    out_index = np.ravel_multi_index(tuple(i // s for i, s in zip(vox.index, ss)), grid.shape)
    fractions = {}
    for name in COMPONENTS:
        total = np.bincount(out_index, weights=comp[name], minlength=n_out) / float(np.prod(ss))
        fractions[name] = total.reshape(grid.shape).astype(np.float32)
    tissue = _block_mode(labels, ss, len(TISSUES))
    tissue[mask > 0] = LABEL["tumor"]
    tissue[(mask == 0) & (tissue == LABEL["tumor"])] = LABEL["liver"]
    truth = {
        "week": state.week,
        "tumor_diameter_mm_nominal": state.diameter_mm,
        "tumor_volume_mm3_nominal": state.volume_mm3,
        "tumor_volume_mm3_mask": float(mask.sum() * np.prod(grid.spacing)),
        "composition": {c: getattr(state, c) for c in COMPONENTS},
        "viable_perfusion": state.perfusion,
        "pose": {
            "rotation_deg": float(np.rad2deg(pose.angle_rad)),
            "shift_mm": list(pose.shift_mm),
            "slab_offset_mm": pose.slab_offset_mm,
            "growth": pose.growth,
            "stomach_filling": pose.stomach_filling,
        },
        "motion_vs_T1w_mm": pose.motion_mm,
        "motion_applied_vs_T1w_mm": applied,
    }
    return RenderedSession(images, mask, fractions, tissue, grid.affine(pose.slab_offset_mm), acquisition, truth)
