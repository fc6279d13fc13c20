"""Render one MRI session of one rat: anatomy + tumor -> each sequence of a protocol, and the truth.

The rat is painted once on the scene grid (`grids.scene_grid`: finer than every sequence, holding all of
them) as tissue labels and tumor composition; each sequence then sees it through its own physics
(`physics`) and is acquired on its own grid with its own artifacts (`acquire`). The truth (mask,
composition fractions, tissue labels) is given on the reference sequence's grid (the T1w, else the T2w).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from napari_hcc.simulate import mri, physics
from napari_hcc.simulate.acquire import acquire
from napari_hcc.simulate.anatomy import LABEL, TISSUES, build_anatomy, paint
from napari_hcc.simulate.biology import Rat, TumorState
from napari_hcc.simulate.details import satellites, texture, texture_field
from napari_hcc.simulate.grids import (
    MAX_SCENE_VOXELS,
    QUICK_MAX_SCENE_VOXELS,
    QUICK_SUPERSAMPLE,
    SUPERSAMPLE,
    SceneGrid,
    operator,
    scene_grid,
    sequence_grid,
)
from napari_hcc.simulate.motion import move_labels, shift_whole_voxels, whole_voxel_steps
from napari_hcc.simulate.protocol import Protocol
from napari_hcc.simulate.tumor import TumorShape, TumorVoxels, apply_mass_effect, composition
from napari_hcc.vocabulary import COMPONENTS

FAT_LABELS = [LABEL[t] for t in physics.FAT_TISSUES]


@dataclass
class Pose:
    """How the rat lies in the scanner at one session."""

    angle_rad: float  # rotation about the scanner z axis
    shift_mm: tuple[float, float]  # in-plane translation
    slab_offset_mm: float  # where the slab sits along z, relative to the liver centre
    growth: float  # body growth since baseline
    stomach_filling: float
    motion: dict = field(default_factory=dict)  # role -> (x mm, y mm, degrees about z) against the reference


@dataclass
class RenderedSession:
    images: dict[str, np.ndarray]  # role -> int16 volume
    affines: dict[str, np.ndarray]  # role -> voxel to scanner mm (each sequence has its own grid)
    mask: np.ndarray  # uint8, whole tumor, on the reference sequence's grid
    fractions: dict[str, np.ndarray]  # component -> float32 volume fraction of each voxel
    tissue: np.ndarray  # uint8 tissue labels (TISSUES)
    affine: np.ndarray  # the reference sequence's
    acquisition: dict  # role -> what was acquired and drawn
    truth: dict  # what the truth sidecar records


def draw_pose(rng: np.random.Generator, week: float, protocol: Protocol) -> Pose:
    motion = {}
    for role, seq in protocol.sequences.items():
        if role != protocol.reference_role:
            shift = rng.uniform(-1.0, 1.0, size=2) * seq.motion_mm
            deg = float(rng.uniform(-1.0, 1.0) * seq.motion_deg) if seq.motion_deg else 0.0
            motion[role] = (float(shift[0]), float(shift[1]), deg)
    return Pose(
        angle_rad=float(np.deg2rad(rng.normal(0.0, 3.0))),
        shift_mm=(float(rng.normal(0.0, 0.8)), float(rng.normal(0.0, 0.8))),
        slab_offset_mm=float(rng.normal(0.0, 0.7)),
        growth=float(1.0 + 0.012 * week + rng.normal(0.0, 0.004)),
        stomach_filling=float(np.clip(rng.normal(1.0, 0.12), 0.7, 1.3)),
        motion=motion,
    )


def _body_coords(scene: SceneGrid, pose: Pose) -> list[np.ndarray]:
    """Body-frame millimetres of every scene voxel (scanner frame, then the rat's pose undone)."""
    xw, yw, zw = (
        (scene.centres(a) - np.array(pose.shift_mm + (0.0,))[a])
        .astype(np.float32)
        .reshape([-1 if b == a else 1 for b in range(3)])
        for a in range(3)
    )
    c, s = np.float32(np.cos(pose.angle_rad)), np.float32(np.sin(pose.angle_rad))
    shape = scene.shape
    x = np.broadcast_to(c * xw + s * yw, shape).astype(np.float32)
    y = np.broadcast_to(-s * xw + c * yw, shape).astype(np.float32)
    z = np.broadcast_to(zw, shape).astype(np.float32)
    return [x, y, z]


def _box_maker(scene: SceneGrid, pose: Pose, vox: TumorVoxels):
    """Body-frame box -> slices of the scene that surely hold what it shows.

    Points of the box are pushed through the tumor's mass effect (`vox.forward`), then the pose;
    the bounding box of their images, plus a voxel, is where the tissue can appear.
    """
    inv = np.linalg.inv(scene.affine)
    c, s = np.cos(pose.angle_rad), np.sin(pose.angle_rad)
    shape = scene.shape
    t = np.linspace(0.0, 1.0, 9)

    def box_of(lo, hi):
        lo, hi = np.clip(lo, -90.0, 90.0), np.clip(hi, -90.0, 90.0)
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


def _tumor_box(vox: TumorVoxels, values: dict[str, np.ndarray]) -> tuple[tuple, dict[str, np.ndarray]]:
    """The tumor's per-voxel values as dense arrays over its bounding box of the scene (and the box's start)."""
    if not len(vox.index[0]):
        return (0, 0, 0), {k: np.zeros((1, 1, 1), np.float32) for k in values}
    lo = [int(i.min()) for i in vox.index]
    hi = [int(i.max()) + 1 for i in vox.index]
    local = tuple(i - a for i, a in zip(vox.index, lo))
    dense = {}
    for name, v in values.items():
        box = np.zeros([b - a for a, b in zip(lo, hi)], np.float32)
        box[local] = v
        dense[name] = box
    return tuple(lo), dense


def _tumor_signal(comp, rat: Rat, state: TumorState, seq, field_t: float, contrast: bool) -> np.ndarray:
    """The tumor's signal per voxel: its components' signals mixed by their volume fractions."""
    t2_scale = 1.08 if rat.strain == "Buffalo" else 1.0  # McA-RH7777 in Buffalo rats vs N1-S1 in Sprague-Dawley
    viable = mri.TISSUE_TABLE["tumor"]
    s_viable = physics.signal(
        viable.pd, viable.t1_ms, viable.t2_ms * t2_scale, viable.gd_mM * comp["perfusion"], "tumor", seq, field_t,
        contrast,
    )  # fmt: skip
    patch = state.patchy_necrosis

    def sig(tissue):
        return physics.tissue_signal("tumor", tissue, seq, field_t, contrast)

    s_nec = (1.0 - patch) * sig(mri.NECROSIS_LIQUEFACTIVE) + patch * sig(mri.NECROSIS_COAGULATIVE)
    return (
        comp["viable"] * s_viable * np.float32(physics.gain(seq, "tumor"))
        + comp["necrosis"] * s_nec
        + comp["apoptosis"] * sig(mri.APOPTOSIS)
        + comp["edema"] * sig(mri.EDEMA_INFILTRATE)
    )


def render_session(
    rat: Rat,
    anatomy_params: dict,
    shape: TumorShape,
    state: TumorState,
    pose: Pose,
    rng: np.random.Generator,
    protocol: Protocol,
    texture_rng: np.random.Generator | None = None,
    quick: bool = False,
) -> RenderedSession:
    """One session of `rat` acquired with `protocol`; `texture_rng` draws the parenchymal texture (none
    without it); `quick` paints a coarser scene (`grids.QUICK_SUPERSAMPLE`), as every lab but `study` does."""
    grids = {role: sequence_grid(seq, (0.0, 0.0, pose.slab_offset_mm + seq.slab_centre_mm))
             for role, seq in protocol.sequences.items()}  # fmt: skip
    anatomy = build_anatomy(anatomy_params, pose.stomach_filling, pose.growth)
    # the rat (and a fiducial tube beside it) lies within this reach of its centre; beyond it is air
    reach = 1.1 * max(anatomy.body.axes[:2]) + 5.0
    within = (np.array([pose.shift_mm[0] - reach, pose.shift_mm[1] - reach, -np.inf]),
              np.array([pose.shift_mm[0] + reach, pose.shift_mm[1] + reach, np.inf]))  # fmt: skip
    quality = (QUICK_SUPERSAMPLE, QUICK_MAX_SCENE_VOXELS) if quick else (SUPERSAMPLE, MAX_SCENE_VOXELS)
    scene = scene_grid(list(grids.values()), within, *quality)
    coords = _body_coords(scene, pose)
    plane = [coords[0][:, :, 0].copy(), coords[1][:, :, 0].copy()]  # before the mass effect
    lobulation = float(np.clip((state.diameter_mm - 4.0) / 8.0, 0.3, 1.5))
    vox = apply_mass_effect(coords, shape, state.diameter_mm / 2.0, lobulation)
    labels = np.zeros(scene.shape, dtype=np.uint8)
    box_of = _box_maker(scene, pose, vox)
    warp_box = box_of(vox.center - vox.reach_mm, vox.center + vox.reach_mm)
    paint(labels, coords, plane, warp_box, anatomy, box_of)
    details = anatomy_params.get("details", {})
    sat_index, sat_record = satellites(coords, labels, details, vox.center, state.diameter_mm / 2, LABEL["liver"])
    del coords
    labels[vox.index] = LABEL["tumor"]
    comp = composition(shape, vox, state)
    if sat_index is not None and len(sat_index[0]):  # satellites: the main mass's mean composition
        n = len(sat_index[0])
        mean = {c: getattr(state, c) for c in COMPONENTS} | {"perfusion": state.perfusion}
        comp = {k: np.concatenate([v, np.full(n, mean[k], np.float32)]) for k, v in comp.items()}
        vox = replace(vox, index=tuple(np.concatenate([a, b]) for a, b in zip(vox.index, sat_index)))
        labels[sat_index] = LABEL["tumor"]
    field_of_texture = None if texture_rng is None else texture_field(scene.shape, scene.spacing, texture_rng)
    unmoved_texture = None if field_of_texture is None else texture(labels, field_of_texture)

    field_t = protocol.field_strength_t
    bias_coef = rng.normal(0.0, 1.0, size=7)  # one receive field per session, seen on each sequence's grid
    fat = vessels = None
    if any(s.bandwidth_hz_per_pixel > 0 for s in protocol.sequences.values()):
        fat = np.isin(labels, FAT_LABELS).astype(np.float32)
    if any(s.flow_ghosts > 0 for s in protocol.sequences.values()):
        vessels = (labels == LABEL["blood_vessel"]).astype(np.float32)
    start, dense = _tumor_box(vox, {"tumor": np.ones(len(vox.index[0]), np.float32)} | comp)
    ops = {role: operator(scene, grid) for role, grid in grids.items()}
    images, affines, acquisition, applied = {}, {}, {}, {}
    for role, seq in protocol.sequences.items():
        contrast = role == "CE"
        lut = np.array(
            [physics.tissue_signal(t, mri.TISSUE_TABLE[t], seq, field_t, contrast) for t in TISSUES], dtype=np.float32
        )
        motion = pose.motion.get(role, (0.0, 0.0, 0.0))
        seen_fat, seen_vessels = fat, vessels
        if motion[2] == 0.0:
            fine = lut[labels]
            fine[vox.index] = _tumor_signal(comp, rat, state, seq, field_t, contrast)
            if unmoved_texture is not None:
                fine *= unmoved_texture
            steps = whole_voxel_steps(scene, motion)
            if steps != (0, 0):
                fine = shift_whole_voxels(fine, steps)
                seen_fat = None if fat is None else shift_whole_voxels(fat, steps)
                seen_vessels = None if vessels is None else shift_whole_voxels(vessels, steps)
            applied[role] = (steps[0] * scene.spacing[0], steps[1] * scene.spacing[1], 0.0)
        else:
            moved, source = move_labels(labels, scene, motion)
            fine = lut[moved]
            inside = np.nonzero(moved == LABEL["tumor"])
            tumor = _tumor_signal(dense, rat, state, seq, field_t, contrast)
            where = source(inside) - np.asarray(start, dtype=float)[:, None]
            fine[inside] = ndimage.map_coordinates(tumor, where, order=0, mode="nearest")
            if field_of_texture is not None:  # the moved tissue's texture amplitude (a field drawn at random anyway)
                fine *= texture(moved, field_of_texture)
            seen_fat = None if fat is None else np.isin(moved, FAT_LABELS).astype(np.float32)
            seen_vessels = None if vessels is None else (moved == LABEL["blood_vessel"]).astype(np.float32)
            applied[role] = motion
        grid = grids[role]
        out = acquire(
            fine, ops[role], grid, seq, field_t, float(lut[LABEL["liver"]]), bias_coef, rng,
            seen_fat, seen_vessels,
        )  # fmt: skip
        images[role], affines[role], acquisition[role] = out.image, grid.affine, out.record
        del fine

    ref = grids[protocol.reference_role]
    ref_op = ops[protocol.reference_role]
    occupancy = ref_op.apply(dense["tumor"], start)
    mask = (occupancy >= 0.5).astype(np.uint8)
    fractions = {name: ref_op.apply(dense[name], start) for name in COMPONENTS}
    tissue = ref_op.nearest(labels)
    tissue[mask > 0] = LABEL["tumor"]
    tissue[(mask == 0) & (tissue == LABEL["tumor"])] = LABEL["liver"]
    voxel_mm3 = float(np.prod(ref.spacing[:2]) * ref.extent[2])
    truth = {
        "week": state.week,
        "tumor_diameter_mm_nominal": state.diameter_mm,
        "tumor_volume_mm3_nominal": state.volume_mm3,
        "tumor_volume_mm3_mask": float(mask.sum() * voxel_mm3),
        "composition": {c: getattr(state, c) for c in COMPONENTS},
        "viable_perfusion": state.perfusion,
        "pose": {
            "rotation_deg": float(np.rad2deg(pose.angle_rad)),
            "shift_mm": list(pose.shift_mm),
            "slab_offset_mm": pose.slab_offset_mm,
            "growth": pose.growth,
            "stomach_filling": pose.stomach_filling,
        },
        "reference_sequence": protocol.reference_role,
        "motion_vs_reference": {r: {"shift_mm": list(m[:2]), "rotation_deg": m[2]} for r, m in pose.motion.items()},
        "motion_applied_vs_reference": {r: {"shift_mm": list(m[:2]), "rotation_deg": m[2]} for r, m in applied.items()},
        "scene_grid": {"shape": list(scene.shape), "spacing_mm": list(scene.spacing)},
    }
    if sat_record:
        truth["satellites"] = sat_record
    return RenderedSession(images, affines, mask, fractions, tissue, ref.affine, acquisition, truth)
