"""The rat beyond the liver's slab: the thorax cranially, the lower abdomen and pelvis caudally.

A scan that covers the whole trunk (a coronal field of view of 90-160 mm, an axial stack of 40-80 mm, as
the real rat in ../shared/realdata is) shows a rat's heart and lungs above the diaphragm, and below the
liver a belly full of intestine (small-bowel loops running every way, the large cecum, the colon), the
psoas muscles along the spine, the bladder and the pelvic bones. Without them such a scan showed a
cylinder of fat beyond the liver, and a network never learnt what the rest of a rat looks like.

Beyond those, the limbs' muscle (simulator 2.3): caudal of the pelvis the hindquarters (the thighs with
their femurs, the gluteal muscles over the sacrum), cranial of the heart the shoulders with their humeri,
the chest's pectoral muscles and the neck. A 160 mm coronal field of view reaches them, and there the real
rat is a mass of muscle, not fat: a network that has never seen one calls it liver.

Everything here lies outside the `study` lab's slab (z above +14 mm or below -12 mm of the liver centre),
and is drawn from a generator of its own, so no earlier draw of a rat changed and a `study` scan is the
same, voxel for voxel. Coordinates are the body frame of `anatomy` (x: the animal's right, y: ventral,
z: cranial), in millimetres, for a 250-300 g rat; `growth` scales them as it scales the rest of the rat.
"""

from __future__ import annotations

import numpy as np

from napari_hcc.simulate.shapes import Blob, Tube, wobble

#: the caudal and cranial edges of the slab the trunk leaves alone (body frame, mm)
CAUDAL_EDGE_MM = -12.0
CRANIAL_EDGE_MM = 14.0


def draw_trunk(rng: np.random.Generator, size: float = 1.0) -> dict:
    """One rat's organs beyond the liver's slab (drawn once per rat)."""

    def jit(mm: float = 1.0) -> float:
        return float(rng.normal(0.0, mm))

    def sc(rel: float = 0.06) -> float:
        return float(size * np.exp(rng.normal(0.0, rel)))

    loops = []
    for _ in range(int(rng.integers(150, 200))):  # about a metre of small intestine, 3-5 mm wide
        radius, length = float(rng.uniform(1.6, 2.6)), float(rng.uniform(4.0, 8.0))
        lying = bool(rng.random() < 0.5)  # a loop across the slice, else along the body
        reach_z = 0.8 * radius if lying else length
        top = CAUDAL_EDGE_MM - reach_z - 0.5
        centre = (float(rng.uniform(-14, 14)), float(rng.uniform(-6, 11)), float(rng.uniform(-52.0, top)))
        loops.append((centre, radius, length, float(rng.uniform(0, np.pi)), lying, bool(rng.random() < 0.25)))
    return {
        "loops": loops,
        "cecum": (
            (-6.0 + jit(1.5), 2.0 + jit(1.0), -33.0 + jit(2.0)),
            (sc() * 9.0, sc() * 6.5, sc() * 10.0),
            float(np.deg2rad(30 + jit(15))),
            wobble(rng, 0.06),
        ),
        "colon": ((jit(0.8), -5.0 + jit(0.5), -50.0 + jit(2.0)), (sc() * 2.3, sc() * 2.0, sc() * 14.0)),
        "psoas": (5.0 + jit(0.4), -8.0 + jit(0.4), sc() * 2.6),
        "bladder": ((jit(0.8), 6.0 + jit(0.8), -62.0 + jit(2.0)), float(rng.uniform(0.5, 1.3)) * size),
        "pelvis": (6.5 + jit(0.5), -58.0 + jit(2.0)),
        "lungs": [
            ((s * (7.5 + jit(0.6)), -2.5 + jit(0.6), 28.0 + jit(1.0)), (sc() * 7.0, sc() * 7.5, sc() * 12.0))
            for s in (-1, 1)
        ],
        "heart": (
            (-1.5 + jit(0.6), 3.5 + jit(0.6), 26.0 + jit(1.0)),
            (sc() * 6.0, sc() * 5.5, sc() * 7.0),
            float(np.deg2rad(-25 + jit(8))),
        ),
        # drawn after everything above, so that adding them changed none of the earlier draws
        "thighs": [_limb(rng, s, (10.0, -1.5, -80.0), (10.0, 12.5, 20.0), 15.0, size) for s in (-1, 1)],
        "glutes": [_limb(rng, s, (6.0, -8.0, -70.0), (6.0, 5.0, 14.0), 0.0, size) for s in (-1, 1)],
        "femur": (7.0 + jit(0.5), 13.0 + jit(0.8), sc(0.1) * 1.5),
        "shoulders": [_limb(rng, s, (11.0, -2.0, 50.0), (8.0, 10.0, 12.0), -10.0, size) for s in (-1, 1)],
        "neck": ((jit(0.5), -6.0 + jit(0.5), 58.0 + jit(2.0)), (sc() * 10.0, sc() * 7.0, sc() * 14.0), 0.0, ()),
        "humerus": (9.0 + jit(0.5), 15.0 + jit(0.8), sc(0.1) * 1.2),
        "pectorals": [_limb(rng, s, (6.0, 9.5, 48.0), (8.0, 5.0, 11.0), 0.0, size) for s in (-1, 1)],
    }


def _limb(rng: np.random.Generator, side: int, centre, axes, degrees: float, size: float) -> tuple:
    """A muscle mass on one side (`side` -1 left, +1 right): centre, semi-axes, angle and boundary wobble."""
    c = (side * (centre[0] + rng.normal(0.0, 0.6)), centre[1] + rng.normal(0.0, 0.8), centre[2] + rng.normal(0.0, 2.0))
    ax = tuple(float(size * a * np.exp(rng.normal(0.0, 0.06))) for a in axes)
    return tuple(float(v) for v in c), ax, float(side * np.deg2rad(degrees + rng.normal(0.0, 6.0))), wobble(rng, 0.06)


def abdomen_shapes(p: dict, g: float) -> list:
    """The lower abdomen, pelvis and hindquarters, painted before the organs of the liver's slab (which cover
    them); the thigh and gluteal muscle first, under the gut, bladder and bones."""
    out: list = _muscles(p["thighs"] + p["glutes"], g)
    out += _paired_bones(p["femur"], (-5.0, -66.0), (1.0, -90.0), g)  # from the hip caudally and ventrally
    for centre, radius, length, angle, lying, gas in p["loops"]:
        axes = (length, radius, 0.8 * radius) if lying else (radius, 0.8 * radius, length)
        loop = Blob("bowel_wall", _scaled(centre, g), _scaled(axes, g), angle)
        out += [loop, loop.inner(0.45, "bowel_content")]
        if gas:  # a bubble on the loop's ventral side
            c = (loop.center[0], loop.center[1] + 0.4 * loop.axes[1], loop.center[2])
            out.append(Blob("gas", c, (0.5 * loop.axes[0], 0.35 * loop.axes[1], 0.5 * loop.axes[2]), angle))
    c, ax, ang, wob = p["cecum"]
    cecum = Blob("bowel_wall", _scaled(c, g), _scaled(ax, g), ang, wob)
    c, ax = p["colon"]
    colon = Blob("bowel_wall", _scaled(c, g), _scaled(ax, g))
    out += [cecum, cecum.inner(0.6, "bowel_content"), colon, colon.inner(0.5, "bowel_content")]
    x, y, r = p["psoas"]
    out += [Blob("muscle", (s * x * g, y * g, -36.0 * g), (r * g, r * g, 20.0 * g)) for s in (-1, 1)]
    c, filling = p["bladder"]
    bladder = Blob("muscle", _scaled(c, g), (4.5 * g * filling, 4.0 * g * filling, 6.0 * g * filling))
    out += [bladder, bladder.inner(0.4, "urine")]
    x, z = p["pelvis"]
    for s in (-1, 1):  # the ilium on either side, running caudally and ventrally from the sacrum
        p0, p1 = (s * 3.0 * g, -9.5 * g, (z + 8.0) * g), (s * x * g, -3.0 * g, (z - 10.0) * g)
        out += _bone(p0, p1, 1.4 * g, 0.8 * g)
    return out


def thorax_shapes(p: dict, g: float) -> list:
    """The shoulders and neck, then the lungs and heart above the diaphragm, painted after the liver."""
    out: list = _muscles(p["shoulders"] + p["pectorals"] + [p["neck"]], g)
    out += _paired_bones(p["humerus"], (-4.0, 44.0), (3.0, 60.0), g)  # from the shoulder cranially and ventrally
    out += [Blob("lung", _scaled(c, g), _scaled(ax, g)) for c, ax in p["lungs"]]
    c, ax, ang = p["heart"]
    heart = Blob("myocardium", _scaled(c, g), _scaled(ax, g), ang)
    return out + [heart, heart.inner(1.6, "blood_vessel")]  # the chambers: blood, dark by flow on spin echo


def _bone(p0, p1, radius: float, marrow: float) -> list[Tube]:
    """A bone from p0 to p1: its cortex, and the marrow inside."""
    return [Tube("cortical_bone", p0, p1, radius), Tube("bone_marrow", p0, p1, marrow)]


def _paired_bones(spec: tuple, start: tuple, end: tuple, g: float) -> list[Tube]:
    """A long bone on either side; `spec` is (x at `start`, x at `end`, radius), `start` and `end` are (y, z)."""
    inner, outer, r = spec
    out: list = []
    for s in (-1, 1):
        p0, p1 = (s * inner * g, start[0] * g, start[1] * g), (s * outer * g, end[0] * g, end[1] * g)
        out += _bone(p0, p1, r * g, 0.6 * r * g)
    return out


def _muscles(specs: list, g: float) -> list[Blob]:
    return [Blob("muscle", _scaled(c, g), _scaled(ax, g), angle, wob) for c, ax, angle, wob in specs]


def _scaled(values, g: float) -> tuple[float, float, float]:
    return tuple(float(v) * g for v in values)
