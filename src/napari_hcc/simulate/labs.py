"""The `varied` world: a preclinical lab drawn at random for every rat, and artifacts drawn onto a fixed
protocol (`--like` a real study, or a protocol file with "draw_artifacts").

A lab is a field (3 to 11.7 T), a plane (axial or coronal; `plane=` makes every lab scan in one plane,
sagittal included), a T1w (RARE or FLASH), a T2w (RARE with or without fat suppression, a fifth of them a
balanced SSFP), a contrast-enhanced T1w or not, grids of their own
(the T2w on another grid than the T1w half the time), an SNR, and the ways its scanner spoils images:
breathing ghosts (ungated), Gibbs ringing, partial Fourier, flow, chemical shift, a volume or a surface
coil, motion between sequences, and a factor on each tissue class's signal (what the tables and equations
do not know about the lab's animals). The ranges are those of published rodent abdominal protocols and the
real files in ../shared/realdata; they are documented in docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from napari_hcc.simulate.artifacts import ANATOMICAL_COIL_SIDES, ANIMAL_SIDES
from napari_hcc.simulate.protocol import GAIN_CLASSES, Protocol, SequenceProtocol

FIELDS_T = (3.0, 4.7, 7.0, 9.4, 11.7)
FIELD_WEIGHTS = (0.15, 0.2, 0.3, 0.25, 0.1)
#: the labs that scan the whole trunk rather than a slab around the liver (`whole_trunk`)
WHOLE_TRUNK_SHARE = 0.2
#: how far the liver reaches either side of its centre along the body (mm); every whole-trunk slab covers it
LIVER_HALF_SPAN_MM = 12.0
#: how far a lab widens its field of view for a larger rat (`fit_to_animal`; the whole-trunk labs' widest, mm)
MAX_FOV_MM = 160.0
#: and how many slices it goes to (the whole-trunk stacks' most)
MAX_SLICES = 64
#: the share of T2w acquisitions that are balanced SSFP (FIESTA, TrueFISP): labs on clinical 3 T scanners
BSSFP_SHARE = 0.2
#: the spread (sd of the log) of a lab's factor on each tissue class's signal (`draw_tissue_gain`)
TISSUE_GAIN_LOG_SD = 0.3


def _choice(rng: np.random.Generator, options, weights=None):
    return options[int(rng.choice(len(options), p=weights))]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_grid(rng: np.random.Generator, plane: str) -> dict:
    """Matrix, pixel, slices, thickness and gap covering a rat's liver (field of view 44-70 mm). The slices
    span 14-26 mm of the body's length (axial), its depth (coronal: 26-36 mm, the whole belly) or its width
    (sagittal: 28-44 mm, the standard rat being 41 mm wide)."""
    pixel = float(np.round(rng.uniform(0.16, 0.42), 3))
    matrix = int(np.clip(np.round(rng.uniform(44.0, 70.0) / pixel / 8) * 8, 96, 256))
    anisotropy = float(rng.uniform(1.0, 1.15)) if rng.random() < 0.3 else 1.0
    thickness = float(np.round(rng.uniform(0.7, 2.0), 2))
    gap = float(np.round(rng.uniform(0.0, 0.4 * thickness), 2)) if rng.random() < 0.4 else 0.0
    cover = rng.uniform(*{"axial": (14.0, 26.0), "coronal": (26.0, 36.0), "sagittal": (28.0, 44.0)}[plane])
    slices = int(np.clip(np.round(cover / (thickness + gap)), 8, 30))
    return {
        "matrix": (matrix, int(np.round(matrix / anisotropy / 8) * 8)),
        "pixel_mm": (pixel, float(np.round(pixel * anisotropy, 3))),
        "slice_mm": thickness,
        "gap_mm": gap,
        "slices": slices,
        "plane": plane,
    }


def draw_scanner(rng: np.random.Generator) -> dict:
    """What a lab's set-up gives every sequence: the coil, respiratory gating, the animal's breathing."""
    gated = rng.random() < 0.35
    return {
        "coil": _choice(rng, ("volume", "surface")),
        "coil_side": _choice(rng, ANIMAL_SIDES),  # on the animal; placed on each grid below
        "coil_radius": float(rng.uniform(0.3, 0.9)),
        "bias": float(rng.uniform(0.05, 0.4)),
        "breaths_per_minute": float(rng.uniform(35.0, 75.0)),
        "gated": gated,
    }


def draw_artifacts(rng: np.random.Generator, seq: SequenceProtocol, reference: bool, scanner: dict) -> SequenceProtocol:
    """How the lab's scanner spoils this sequence: breathing (unless gated), truncation, partial Fourier,
    flow, chemical shift, the coil, the SNR, and motion against the reference sequence."""
    gated = scanner["gated"]
    return replace(
        seq,
        phase_encoding=_choice(rng, ("i", "j")),
        bandwidth_hz_per_pixel=float(np.round(rng.uniform(80.0, 450.0))),
        ghost_amplitude=0.0 if gated else float(rng.uniform(0.02, 0.15)),
        ghost_motion_mm=0.0 if gated else float(rng.uniform(0.0, 0.5)),
        breaths_per_minute=scanner["breaths_per_minute"],
        kspace_fraction=1.0 if rng.random() < 0.5 else float(rng.uniform(0.55, 0.95)),
        partial_fourier=1.0 if rng.random() < 0.6 else float(rng.uniform(0.55, 0.85)),
        flow_ghosts=0.0 if rng.random() < 0.4 else float(rng.uniform(0.1, 0.6)),
        coil=scanner["coil"],
        coil_side=ANATOMICAL_COIL_SIDES[seq.plane][scanner["coil_side"]],
        coil_radius=scanner["coil_radius"],
        bias=scanner["bias"],
        motion_mm=0.0 if reference else float(rng.uniform(0.0, 1.5)),
        motion_deg=0.0 if reference else float(rng.uniform(0.0, 3.0)),
        snr=_log_uniform(rng, 6.0, 40.0),
    )


def _t1w(rng: np.random.Generator, grid: dict) -> SequenceProtocol:
    if rng.random() < 0.55:
        return SequenceProtocol("RARE", float(rng.uniform(0.3, 0.9)), float(rng.uniform(0.006, 0.012)), 90.0,
                                int(_choice(rng, (1, 2, 2, 4))), **grid)  # fmt: skip
    return SequenceProtocol("FLASH", float(rng.uniform(0.15, 0.4)), float(rng.uniform(0.0018, 0.0035)),
                            float(rng.uniform(35.0, 80.0)), 1, **grid)  # fmt: skip


def _t2w(rng: np.random.Generator, grid: dict) -> SequenceProtocol:
    if rng.random() < BSSFP_SHARE:
        tr = float(rng.uniform(0.004, 0.008))
        return SequenceProtocol("bSSFP", tr, tr / 2, float(rng.uniform(30.0, 60.0)), 1, **grid)
    return SequenceProtocol("RARE", float(rng.uniform(2.0, 5.0)), float(rng.uniform(0.025, 0.06)), 90.0,
                            int(_choice(rng, (4, 8, 8, 12, 16))), fat_suppression=bool(rng.random() < 0.4), **grid)  # fmt: skip


def draw_lab(rng: np.random.Generator, plane: str | None = None) -> Protocol:
    """One lab, drawn at random: field, plane, sequences (any subset with a T1w or a T2w), grids, artifacts.

    `plane` ("axial", "coronal" or "sagittal") makes the lab scan in that plane; every other draw is the one
    the lab would have had (the plane's own draw is still made)."""
    field_t = _choice(rng, FIELDS_T, FIELD_WEIGHTS)
    drawn = "axial" if rng.random() < 0.7 else "coronal"
    plane = plane or drawn
    grid = draw_grid(rng, plane)
    t2_grid = grid if rng.random() < 0.5 else draw_grid(rng, plane)
    kind = rng.random()
    sequences: dict[str, SequenceProtocol] = {}
    if kind >= 0.1:  # a tenth of labs scan T2w only
        sequences["T1w"] = _t1w(rng, grid)
    sequences["T2w"] = _t2w(rng, t2_grid)
    if kind >= 0.3:  # and a fifth more use no contrast agent
        sequences["CE"] = sequences["T1w"]  # the same acquisition, after contrast
    lab = with_drawn_artifacts(Protocol(field_t, sequences, "varied"), rng)
    if rng.random() < WHOLE_TRUNK_SHARE:  # drawn after the rest, so that every other lab is the one it was
        lab = whole_trunk(lab, rng)
    return with_tissue_gain(lab, rng)


def draw_tissue_gain(rng: np.random.Generator) -> dict[str, float]:
    """A factor on each tissue class's signal, log-normal (sd of the log `TISSUE_GAIN_LOG_SD`, within 0.5-2).

    The tissue table and the signal equations are one estimate of what a lab sees. Relaxation times of the
    same rat tissue differ between publications, strains, ages and diets by tens of percent, and the
    equations leave out magnetization transfer, diffusion, stimulated echoes and off-resonance. Measured
    against the real files (docs/simulator.md, "Realism"), the simulator's liver-to-muscle ratio is about
    half the real one on long-echo fast spin echo and about twice it on bSSFP. A network that reads
    organs by their grey values alone breaks on such a lab; drawing these factors for every `varied` lab
    makes it read shape and context as well. The tumor takes its liver's factor (`physics.gain`).
    """
    logs = np.clip(rng.normal(0.0, TISSUE_GAIN_LOG_SD, size=len(GAIN_CLASSES)), np.log(0.5), np.log(2.0))
    return {kind: float(np.round(np.exp(v), 3)) for kind, v in zip(GAIN_CLASSES, logs)}


def with_tissue_gain(protocol: Protocol, rng: np.random.Generator) -> Protocol:
    """The lab with a tissue gain drawn for each of its acquisitions; the CE is its T1w after contrast, so
    it shares the T1w's."""
    gains = {role: draw_tissue_gain(rng) for role in ("T1w", "T2w") if role in protocol.sequences}
    sequences = {role: replace(seq, tissue_gain=gains["T1w" if role == "CE" else role])
                 for role, seq in protocol.sequences.items()}  # fmt: skip
    return replace(protocol, sequences=sequences)


def whole_trunk(protocol: Protocol, rng: np.random.Generator) -> Protocol:
    """The same lab scanning the whole trunk on one grid: an axial stack of 40-80 mm in 1-2.5 mm slices, or a
    coronal (sagittal) field of view of 90-160 mm through the body's depth (width), centred anywhere from
    the liver to 30 mm caudal of it, as long as the whole liver stays in the slab (the real rat in ../shared/realdata is such a
    coronal scan)."""
    plane = protocol.sequences[protocol.reference_role].plane
    if plane in ("coronal", "sagittal"):
        pixel = float(np.round(rng.uniform(0.35, 0.65), 3))
        matrix = int(np.clip(np.round(rng.uniform(90.0, 160.0) / pixel / 8) * 8, 160, 320))
        thickness = float(np.round(rng.uniform(0.6, 1.6), 2))
        across = (26.0, 38.0) if plane == "coronal" else (36.0, 50.0)
        slices = int(np.clip(np.round(rng.uniform(*across) / thickness), 16, 64))
        along_body = matrix * pixel
    else:
        pixel = float(np.round(rng.uniform(0.22, 0.45), 3))
        matrix = int(np.clip(np.round(rng.uniform(50.0, 75.0) / pixel / 8) * 8, 112, 320))
        thickness = float(np.round(rng.uniform(1.0, 2.5), 2))
        slices = int(np.clip(np.round(rng.uniform(40.0, 80.0) / thickness), 16, 64))
        along_body = slices * thickness
    # a study of liver tumors covers the liver (z -12..+12 mm): the centre goes no further caudal than that allows
    reach = along_body / 2.0 - LIVER_HALF_SPAN_MM
    centre = float(np.round(rng.uniform(max(-30.0, -reach), min(0.0, reach)), 1))
    grid = {"matrix": (matrix, matrix), "pixel_mm": (pixel, pixel), "slice_mm": thickness, "gap_mm": 0.0,
            "slices": slices, "slab_centre_mm": centre}  # fmt: skip
    return replace(protocol, sequences={r: replace(s, **grid) for r, s in protocol.sequences.items()})


def fit_to_animal(protocol: Protocol, scale: float) -> Protocol:
    """The lab's grids for a rat `scale` times the standard one, as an operator fits a prescription to the
    animal: the field of view widens with the rat (the in-plane pixel grows, the matrix stays) up to
    `MAX_FOV_MM`, the stack gains slices (the thickness stays) up to `MAX_SLICES`, and the slab's centre
    moves with the anatomy, kept where the whole liver stays inside when the slab is longer than the liver.
    A smaller rat keeps the lab's grids."""
    if scale <= 1.0:
        return protocol

    def fit(seq: SequenceProtocol) -> SequenceProtocol:
        widest = max(m * p for m, p in zip(seq.matrix, seq.pixel_mm))
        wider = min(scale, max(1.0, MAX_FOV_MM / widest))
        pixel = tuple(float(np.round(p * wider, 3)) for p in seq.pixel_mm)
        slices = int(min(MAX_SLICES, max(seq.slices, np.round(seq.slices * scale))))
        along_body = slices * (seq.slice_mm + seq.gap_mm) if seq.plane == "axial" else seq.matrix[1] * pixel[1]
        room = along_body / 2.0 - LIVER_HALF_SPAN_MM * scale
        centre = seq.slab_centre_mm * scale
        if room > 0:
            centre = float(np.clip(centre, -room, room))
        return replace(seq, pixel_mm=pixel, slices=slices, slab_centre_mm=float(np.round(centre, 1)))

    return replace(protocol, sequences={role: fit(seq) for role, seq in protocol.sequences.items()})


def with_drawn_artifacts(protocol: Protocol, rng: np.random.Generator) -> Protocol:
    """A fixed lab's acquisitions (`--like`), with the artifacts and SNR of its rats drawn at random."""
    scanner = draw_scanner(rng)
    reference = protocol.reference_role
    drawn = {role: draw_artifacts(rng, seq, role == reference, scanner) for role, seq in protocol.sequences.items()}
    return replace(protocol, sequences=drawn)
