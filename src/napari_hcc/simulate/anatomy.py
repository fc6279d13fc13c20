"""Anatomy of a rat abdomen at liver level, as a label volume.

Organs are ellipsoids (or tubes) with a smooth, rat-specific boundary perturbation, laid out as in an
axial MRI section of a 250-300 g rat at the level of the liver: body wall and fat, four liver lobes,
stomach, bowel loops, kidneys, spleen, spine, aorta, inferior vena cava, portal and hepatic veins, and
lung bases at the cranial edge. Coordinates are millimetres in the rat's own body frame
(x: the animal's right, y: ventral, z: cranial), centred on the imaged slab.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hcc.simulate.shapes import Blob, Body, Tube, wobble
from napari_hcc.simulate.trunk import abdomen_shapes, thorax_shapes

# Tissue labels of the truth `desc-tissue_dseg` volume (documented in docs/simulator.md).
TISSUES = (
    "background",  # 0: air
    "subcutaneous_fat",
    "muscle",
    "visceral_fat",
    "liver",
    "tumor",  # 5: whole tumor; its composition is in the fraction maps
    "stomach_wall",
    "stomach_content",
    "gas",
    "bowel_wall",
    "bowel_content",
    "kidney_cortex",
    "kidney_medulla",
    "spleen",
    "blood_vessel",
    "bone_marrow",
    "cortical_bone",
    "csf",
    "spinal_cord",
    "lung",
    "fiducial",  # 20: a water tube beside the animal (varied world)
    "myocardium",  # 21: the heart (`trunk`)
    "urine",  # 22: the bladder's content
)
LABEL = {name: i for i, name in enumerate(TISSUES)}


@dataclass
class Anatomy:
    """One rat's organs, in painting order (later shapes cover earlier ones)."""

    shapes: list
    liver_lobes: list[Blob]
    left_lobe: Blob
    body: Blob  # the outline of the whole body (its skin), scaled as the session's rat


def draw_anatomy(rng: np.random.Generator, size: float = 1.0) -> dict:
    """Rat-specific organ parameters (drawn once per rat; sessions vary them only slightly)."""

    def jit(mm: float = 1.0) -> float:
        return float(rng.normal(0.0, mm))

    def sc(rel: float = 0.06) -> float:
        return float(size * np.exp(rng.normal(0.0, rel)))

    return {
        "size": size,
        "body": (sc(0.04) * 20.5, sc(0.04) * 15.5, wobble(rng, 0.05)),
        "fat_mm": float(np.clip(rng.normal(0.9, 0.25), 0.4, 1.6)),
        "lll": (
            (-8.0 + jit(), 4.0 + jit(0.8), 1.0 + jit()),
            (sc() * 11.0, sc() * 7.5, sc() * 11.0),
            np.deg2rad(-15 + jit(6)),
            wobble(rng, 0.06),
        ),
        "ml": (
            (3.0 + jit(), 8.5 + jit(0.6), 2.5 + jit()),
            (sc() * 9.0, sc() * 5.0, sc() * 10.0),
            np.deg2rad(10 + jit(6)),
            wobble(rng, 0.06),
        ),
        "rll": (
            (11.5 + jit(), 0.0 + jit(), -0.5 + jit()),
            (sc() * 6.5, sc() * 8.0, sc() * 9.0),
            np.deg2rad(jit(8)),
            wobble(rng, 0.06),
        ),
        "cau": (
            (1.5 + jit(0.6), -4.0 + jit(0.5), -1.5 + jit()),
            (sc() * 5.0, sc() * 3.5, sc() * 7.0),
            np.deg2rad(jit(10)),
            wobble(rng, 0.05),
        ),
        "stomach": (
            (-7.5 + jit(), -4.0 + jit(0.7), -1.5 + jit()),
            (sc() * 6.0, sc() * 4.5, sc() * 7.0),
            np.deg2rad(20 + jit(10)),
            wobble(rng, 0.05),
        ),
        "kidney_r": (
            (8.5 + jit(0.7), -7.5 + jit(0.5), -7.0 + jit(1.5)),
            (sc() * 3.6, sc() * 4.6, sc() * 6.0),
            np.deg2rad(30 + jit(8)),
        ),
        "kidney_l": (
            (-8.5 + jit(0.7), -7.5 + jit(0.5), -10.5 + jit(1.5)),
            (sc() * 3.6, sc() * 4.6, sc() * 6.0),
            np.deg2rad(-30 + jit(8)),
        ),
        "spleen": (
            (-13.5 + jit(0.7), -4.0 + jit(0.7), -5.0 + jit(1.5)),
            (sc() * 2.0, sc() * 5.5, sc() * 7.0),
            np.deg2rad(-40 + jit(8)),
        ),
        "bowel": [
            (
                (float(rng.uniform(-10, 12)), float(rng.uniform(-1, 9)), float(rng.uniform(-12, -4))),
                float(rng.uniform(1.4, 2.4)),
                float(rng.uniform(2.5, 5.0)),
                float(rng.uniform(0, np.pi)),
            )
            for _ in range(int(rng.integers(7, 11)))
        ],
        "lungs": [
            ((s * (8.5 + jit(0.7)), -5.5 + jit(0.7), 13.5 + jit(1.0)), (sc() * 6.0, sc() * 5.0, 5.0)) for s in (-1, 1)
        ],
        "vessels": {
            "ivc": 1.4 * sc(0.1),
            "aorta": 1.0 * sc(0.1),
            "portal": 1.1 * sc(0.1),
            "hepatic": [(float(rng.uniform(-9, 12)), float(rng.uniform(2, 10))) for _ in range(3)],
        },
        "spine_x": jit(0.4),
    }


#: the range of a `varied` rat's body scale (`draw_body_scale`): bodies 37-70 mm wide, from a small adult
#: to the real FIESTA rat of ../shared/realdata (about 70 mm wide and 48 mm deep, prone)
BODY_SCALE_RANGE = (0.9, 1.7)


def draw_body_scale(rng: np.random.Generator) -> float:
    """A `varied` rat's size against the standard 250-300 g rat (every length times this; `study` rats are 1)."""
    return float(np.round(rng.uniform(*BODY_SCALE_RANGE), 3))


def build_anatomy(p: dict, stomach_filling: float = 1.0, growth: float = 1.0) -> Anatomy:
    """The shapes of one session: `growth` scales the rat (times its body scale, `p["scale"]`, where it was
    drawn one), `stomach_filling` the stomach."""
    g = growth * p.get("scale", 1.0)
    ba, bb, bw = p["body"]
    body = Blob("body", (0.0, 0.0, 0.0), (ba * g, bb * g, 1e6), 0.0, bw)
    mean_axis = 0.5 * (ba + bb) * g
    # Skin and subcutaneous fat, then the muscular body wall, then the abdominal cavity (fat-filled).
    layers = (
        ("subcutaneous_fat", 1.0),
        ("muscle", 1.0 - p["fat_mm"] / mean_axis),
        ("visceral_fat", 1.0 - (p["fat_mm"] + 1.1) / mean_axis),
    )
    shapes: list = [Body(body, layers)]

    def blob(label, spec, filling=1.0):
        c, ax, ang, *wob = spec
        axes = tuple(float(a * g * (filling if i < 3 else 1.0)) for i, a in enumerate(ax))
        return Blob(label, tuple(float(v * g) for v in c), axes, float(ang), wob[0] if wob else ())

    gas = p.get("details", {}).get("bowel_gas", [])
    for i, (c, r, length, ang) in enumerate(p["bowel"]):
        loop = Blob("bowel_wall", tuple(v * g for v in c), (r * g, r * g * 0.8, length), ang, ())
        shapes += [loop, loop.shrunk(0.45, "bowel_content")]
        if i < len(gas) and gas[i]:  # a gas bubble on the loop's upper (ventral) side
            shapes.append(Blob("gas", (loop.center[0], loop.center[1] + 0.35 * loop.axes[1], loop.center[2]),
                               (0.55 * loop.axes[0], 0.4 * loop.axes[1], 0.5 * length), ang))  # fmt: skip
    trunk = p.get("trunk")  # the rat beyond the liver's slab (`trunk`), where a session was drawn with it
    if trunk:
        shapes += abdomen_shapes(trunk, g)
    stomach = blob("stomach_wall", p["stomach"], stomach_filling)
    shapes += [stomach, stomach.shrunk(0.5, "stomach_content")]
    gas_c = (stomach.center[0], stomach.center[1] - 0.55 * stomach.axes[1], stomach.center[2] + 1.0)
    shapes.append(Blob("gas", gas_c, (1.8 * stomach_filling, 1.0 * stomach_filling, 2.5)))
    shapes.append(blob("spleen", p["spleen"]))
    for side in ("kidney_r", "kidney_l"):
        k = blob("kidney_cortex", p[side])
        shapes += [k, Blob("kidney_medulla", k.center, tuple(a * 0.55 for a in k.axes), k.angle)]
    lobes = [blob("liver", p[name]) for name in ("lll", "ml", "rll", "cau")]
    shapes += lobes  # painted by `paint_liver` so that lobes are split by fissures
    for c, ax in p["lungs"]:
        shapes.append(Blob("lung", tuple(v * g for v in c), tuple(a * g for a in ax)))
    if trunk:
        shapes += thorax_shapes(trunk, g)
    sx, v = p["spine_x"] * g, p["vessels"]
    shapes += [
        Blob("muscle", (sx - 4.6 * g, -11.0 * g, 0.0), (3.6 * g, 3.0 * g, 1e6)),
        Blob("muscle", (sx + 4.6 * g, -11.0 * g, 0.0), (3.6 * g, 3.0 * g, 1e6)),
        Blob("cortical_bone", (sx, -9.6 * g, 0.0), (2.8 * g, 2.3 * g, 1e6)),
        Blob("bone_marrow", (sx, -9.6 * g, 0.0), (2.3 * g, 1.8 * g, 1e6)),
        Blob("cortical_bone", (sx, -12.6 * g, 0.0), (1.8 * g, 1.6 * g, 1e6)),
        Blob("csf", (sx, -12.6 * g, 0.0), (1.15 * g, 1.0 * g, 1e6)),
        Blob("spinal_cord", (sx, -12.6 * g, 0.0), (0.8 * g, 0.7 * g, 1e6)),
        Tube("blood_vessel", (sx - 1.6 * g, -7.0 * g, -30.0), (sx - 1.6 * g, -7.0 * g, 30.0), v["aorta"] * g),
        Tube("blood_vessel", (2.8 * g, -5.2 * g, -30.0), (2.2 * g, -4.2 * g, 30.0), v["ivc"] * g),
        Tube("blood_vessel", (3.5 * g, -1.0 * g, -9.0), (-1.0 * g, 2.0 * g, 3.0), v["portal"] * g),
    ]
    parents = [((3.5 * g, -1.0 * g, -9.0), (-1.0 * g, 2.0 * g, 3.0))]  # the portal vein, then the hepatic veins
    for hx, hy in v["hepatic"]:  # hepatic veins run from the periphery up to the IVC
        shapes.append(Tube("blood_vessel", (hx * g, hy * g, -4.0), (2.4 * g, -4.4 * g, 12.0), 0.55 * g))
        parents.append(((hx * g, hy * g, -4.0), (2.4 * g, -4.4 * g, 12.0)))
    details = p.get("details")
    if details:
        shapes += vessel_branches(details, lobes, parents, g)
        shapes += fiducial_tube(details, (ba, bb), g)
    return Anatomy(shapes=shapes, liver_lobes=lobes, left_lobe=lobes[0], body=body)


def vessel_branches(details: dict, lobes: list, hepatic_ends: list, g: float) -> list[Tube]:
    """Branches from the hepatic veins and the portal vein out into the lobes: tubes from a point along a
    parent towards a lobe's periphery."""
    out = []
    for lobe_index, along, direction, length, radius in details["branches"]:
        lobe = lobes[lobe_index]
        parent_a, parent_b = hepatic_ends[lobe_index % len(hepatic_ends)]
        start = np.asarray(parent_a) + along * (np.asarray(parent_b) - np.asarray(parent_a))
        towards = np.asarray(lobe.center) - start + np.asarray(direction) * np.asarray(lobe.axes) * 0.6
        towards /= max(np.linalg.norm(towards), 1e-6)
        end = start + towards * length * g
        out.append(Tube("blood_vessel", tuple(start), tuple(end), radius * g, within="liver"))
    return out


def fiducial_tube(details: dict, body_axes: tuple[float, float], g: float) -> list[Tube]:
    if "fiducial" not in details:
        return []
    side, y, radius = details["fiducial"]
    x = side * (body_axes[0] * g + radius + 1.5)
    return [Tube("fiducial", (x, y, -90.0), (x, y, 90.0), radius)]


def paint(labels: np.ndarray, coords, plane, warp_box, anatomy: Anatomy, box_of) -> None:
    """Paint the anatomy into `labels` (fine grid) given body-frame coordinates of each voxel.

    `box_of(lo, hi)` turns a body-frame box into a conservative tuple of slices of the fine grid, so
    that each shape is evaluated only where it can be. Shapes that do not change along z (body,
    spine) are evaluated once on `plane` (the unwarped in-plane coordinates) and repeated over the
    slices, then evaluated again in 3D only inside `warp_box`, where the tumor moves tissue.
    """
    cavity = np.zeros(labels.shape, dtype=bool)
    for shape in anatomy.shapes:
        if shape is anatomy.liver_lobes[0]:
            _paint_liver(labels, coords, anatomy.liver_lobes, cavity, box_of)
        if shape in anatomy.liver_lobes:
            continue
        if isinstance(shape, Body) or (isinstance(shape, Blob) and shape.axes[2] >= 1e5):
            _paint_cylinder(labels, coords, plane, _intersect(warp_box, box_of(*shape.bounds())), shape, cavity)
            continue
        box = box_of(*shape.bounds())
        inside = shape.rho(*(c[box] for c in coords)) < 1.0
        if isinstance(shape, Blob):
            inside &= cavity[box]  # viscera stay inside the abdominal cavity
        elif shape.within:
            inside &= labels[box] == LABEL[shape.within]
        labels[box][inside] = LABEL[shape.label]


def _intersect(a: tuple, b: tuple) -> tuple:
    return tuple(slice(max(x.start, y.start), max(max(x.start, y.start), min(x.stop, y.stop))) for x, y in zip(a, b))


def _paint_cylinder(labels, coords, plane, warp_box, shape, cavity) -> None:
    outline = shape.outline if isinstance(shape, Body) else shape
    layers = shape.layers if isinstance(shape, Body) else ((shape.label, 1.0),)
    rho = np.repeat(outline.rho(plane[0], plane[1], np.float32(0.0))[:, :, None], labels.shape[2], axis=2)
    if warp_box is not None:
        rho[warp_box] = outline.rho(coords[0][warp_box], coords[1][warp_box], np.float32(0.0))
    for label, threshold in layers:
        labels[rho < threshold] = LABEL[label]
    if isinstance(shape, Body):
        cavity[...] = rho < layers[-1][1]


def _paint_liver(labels, coords, lobes: list[Blob], cavity, box_of) -> None:
    """Liver lobes; where two lobes meet, a thin fat fissure separates them."""
    best = np.full((2,) + labels.shape, 1e9, dtype=np.float32)  # smallest and second-smallest rho
    for lobe in lobes:
        box = box_of(*lobe.bounds())
        rho = lobe.rho(*(c[box] for c in coords))
        b0, b1 = best[(0,) + box], best[(1,) + box]
        best[(1,) + box] = np.minimum(b1, np.maximum(b0, rho))
        best[(0,) + box] = np.minimum(b0, rho)
    inside = (best[0] < 1.0) & cavity
    fissure = inside & (best[1] < 1.0) & ((best[1] - best[0]) < 0.035)
    labels[inside] = LABEL["liver"]
    labels[fissure] = LABEL["visceral_fat"]
