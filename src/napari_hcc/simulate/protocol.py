"""Protocols: how a lab acquires each sequence, as the varied world (issue 16) will draw and render them.

A protocol is the field strength and, per role (T1w, T2w, CE; any subset), the pulse-sequence family
(RARE, FLASH or bSSFP), TR, TE, flip angle, echo train, fat suppression, the grid (matrix, pixel size,
slice thickness and gap, number of slices), the plane and the SNR. It is JSON (`Protocol.to_json`,
`load_protocol`, each mistake in a file one sentence naming the file and the key), and it can be read
from a real study as `napari-hcc import` writes it (`protocol_from_study`, the ground of `simulate
--like`): the sidecars give the field and timing, the NIfTI grids the geometry.

`STUDY_PROTOCOL` is today's lab (the paper comparison); `labs.draw_lab` draws the `varied` world's labs;
`render` acquires every sequence on its own grid with the artifacts its protocol switches on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.io.acquisition import plane_of
from napari_hcc.io.json_files import check_roles, read_json_file, read_sidecar
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.simulate.artifacts import COIL_SIDES
from napari_hcc.vocabulary import PLANES, SEQUENCE_ROLES

FAMILIES = ("RARE", "FLASH", "bSSFP")
#: the tissue classes a `tissue_gain` may name (physics.tissue_class); a tumor takes the liver's
GAIN_CLASSES = ("liver", "muscle", "fat", "kidney", "spleen", "blood", "fluid", "marrow", "lung", "other")
#: what a sidecar's sequence words say about the family (searched in this order)
_FAMILY_WORDS = (
    ("bSSFP", r"fiesta|true-?fisp|trufi|bssfp|balanced|b-?ffe"),
    ("RARE", r"rare|turbo|tse|fse|haste|spin ?echo|\bse\b|\bspin"),
    ("FLASH", r"flash|spgr|gre|\bgr\b|gradient|ffe|vibe|lava|fl3d|fl2d"),
)


@dataclass(frozen=True)
class SequenceProtocol:
    family: str  # RARE, FLASH or bSSFP
    repetition_time_s: float
    echo_time_s: float
    flip_angle_deg: float = 90.0
    echo_train_length: int = 1
    fat_suppression: bool = False
    matrix: tuple[int, int] = (160, 160)
    pixel_mm: tuple[float, float] = (0.3, 0.3)
    slice_mm: float = 1.2
    gap_mm: float = 0.0
    slices: int = 15
    plane: str = "axial"
    slab_centre_mm: float = 0.0  # where the grid is centred along the body (cranial +), from the liver's centre
    snr: float = 20.0
    # how the lab's scanner spoils it (all off by default; `varied` and `--like` draw them per rat)
    phase_encoding: str = "j"  # the stored in-plane voxel axis phase is encoded along (BIDS i or j)
    bandwidth_hz_per_pixel: float = 0.0  # 0: no chemical shift drawn
    ghost_amplitude: float = 0.0  # respiratory modulation of the signal (fraction); 0: gated or none
    ghost_motion_mm: float = 0.0  # breathing excursion along phase encoding
    breaths_per_minute: float = 55.0
    kspace_fraction: float = 1.0  # acquired over reconstructed matrix: below 1, Gibbs ringing
    partial_fourier: float = 1.0
    flow_ghosts: float = 0.0  # fraction of vessel signal smeared along phase encoding
    coil: str = "volume"  # volume (smooth bias) or surface (a loop on one side)
    coil_side: str = "axis1-"
    coil_radius: float = 0.5  # surface loop radius, as a fraction of the field of view
    bias: float = 0.15  # strength of the smooth receive bias (log-polynomial sd x 2)
    motion_mm: float = 0.0  # largest in-plane shift against the reference sequence (per session)
    motion_deg: float = 0.0  # largest rotation about the scanner's z axis against the reference
    # a factor per tissue class (physics.tissue_class) on the signal the equations give: what the tables and
    # equations do not know about a lab's animals and sequence (`varied` draws it; empty: 1 for every class)
    tissue_gain: dict = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class Protocol:
    field_strength_t: float
    sequences: dict[str, SequenceProtocol] = field(default_factory=dict)
    source: str = ""  # where it came from: "study", a file, or a real study
    draw_artifacts: bool = False  # each rat's artifacts and SNR drawn at random (`labs.with_drawn_artifacts`)

    @property
    def reference_role(self) -> str:
        """The sequence the truth belongs to: the T1w, else the T2w."""
        return "T1w" if "T1w" in self.sequences else "T2w"

    def with_sequences(self, **changes) -> Protocol:
        """The same protocol with `changes` applied to every sequence."""
        return replace(self, sequences={r: replace(s, **changes) for r, s in self.sequences.items()})

    def to_json(self) -> str:
        data = {"field_strength_t": self.field_strength_t, "draw_artifacts": self.draw_artifacts,
                "sequences": {role: asdict(seq) for role, seq in self.sequences.items()}}  # fmt: skip
        return json.dumps(data, indent=2) + "\n"


#: today's lab (the simulator's `study` protocol, mri.SEQUENCES and render.Grid), in this schema
STUDY_PROTOCOL = Protocol(
    7.0,
    {
        "T1w": SequenceProtocol("RARE", 0.45, 0.009, 90.0, 2, snr=22.0),
        "T2w": SequenceProtocol("RARE", 3.0, 0.033, 90.0, 8, snr=15.0, motion_mm=0.3),
        "CE": SequenceProtocol("RARE", 0.45, 0.009, 90.0, 2, snr=24.0, motion_mm=0.3),
    },
    "study",
)

_RANGES = {
    "repetition_time_s": (0.002, 20.0),
    "echo_time_s": (0.0005, 0.5),
    "flip_angle_deg": (1.0, 180.0),
    "echo_train_length": (1, 256),
    "slice_mm": (0.02, 10.0),
    "gap_mm": (0.0, 10.0),
    "slices": (1, 1024),
    "slab_centre_mm": (-100.0, 100.0),
    "snr": (1.0, 1000.0),
    "bandwidth_hz_per_pixel": (0.0, 5000.0),
    "ghost_amplitude": (0.0, 1.0),
    "ghost_motion_mm": (0.0, 10.0),
    "breaths_per_minute": (0.0, 200.0),
    "kspace_fraction": (0.25, 1.0),
    "partial_fourier": (0.5, 1.0),
    "flow_ghosts": (0.0, 1.0),
    "coil_radius": (0.05, 5.0),
    "bias": (0.0, 1.0),
    "motion_mm": (0.0, 20.0),
    "motion_deg": (0.0, 30.0),
}
_CHOICES = {"family": FAMILIES, "plane": PLANES, "phase_encoding": ("i", "j"), "coil": ("volume", "surface"),
            "coil_side": tuple(COIL_SIDES)}  # fmt: skip


def _sequence(raw, where: str) -> SequenceProtocol:
    if not isinstance(raw, dict):
        raise InputError(f"{where} must be a JSON object.")
    known = set(SequenceProtocol.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"{where} has unknown key {unknown[0]!r}; known keys are {', '.join(sorted(known))}.")
    for key in ("family", "repetition_time_s", "echo_time_s"):
        if key not in raw:
            raise InputError(f"{where} has no {key!r}.")
    for key, choices in _CHOICES.items():
        if key in raw and raw[key] not in choices:
            raise InputError(f"{where}.{key} is {raw[key]!r}; it must be one of {', '.join(choices)}.")
    for key, (low, high) in _RANGES.items():
        if key in raw:
            value = raw[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                raise InputError(f"{where}.{key} is {value!r}; it must be a number from {low:g} to {high:g}.")
    for key in ("matrix", "pixel_mm"):
        if key in raw:
            value = raw[key]
            if not (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, (int, float)) and v > 0 for v in value)
            ):
                raise InputError(f"{where}.{key} is {value!r}; it must be two positive numbers.")
    gain = raw.get("tissue_gain", {})
    if not isinstance(gain, dict) or any(
        k not in GAIN_CLASSES or not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.05 <= v <= 20.0
        for k, v in gain.items()
    ):
        raise InputError(
            f"{where}.tissue_gain is {gain!r}; it must map tissue classes ({', '.join(GAIN_CLASSES)}) to factors "
            "from 0.05 to 20."
        )
    values = dict(raw)
    for key in ("matrix", "pixel_mm"):
        if key in values:
            values[key] = tuple(values[key])
    return SequenceProtocol(**values)


def parse_protocol(data, source: str) -> Protocol:
    if not isinstance(data, dict):
        raise InputError(f"protocol {source} must hold a JSON object with 'field_strength_t' and 'sequences'.")
    field_t = data.get("field_strength_t")
    if not isinstance(field_t, (int, float)) or not 0.5 <= field_t <= 21.1:
        raise InputError(
            f"protocol {source}: field_strength_t is {field_t!r}; it must be a field in tesla, 0.5 to 21.1."
        )
    sequences = data.get("sequences")
    if not isinstance(sequences, dict) or not sequences:
        raise InputError(f"protocol {source} has no 'sequences' object (roles {', '.join(SEQUENCE_ROLES)}).")
    check_roles(sequences, f"protocol {source}")
    if "T1w" not in sequences and "T2w" not in sequences:
        raise InputError(f"protocol {source} has neither a T1w nor a T2w; a scan needs at least one.")
    unknown = sorted(set(data) - {"field_strength_t", "sequences", "draw_artifacts"})
    if unknown:
        raise InputError(
            f"protocol {source} has unknown key {unknown[0]!r}; known keys are draw_artifacts, field_strength_t, "
            "sequences."
        )
    draw = data.get("draw_artifacts", False)
    if not isinstance(draw, bool):
        raise InputError(f"protocol {source}: draw_artifacts is {draw!r}; it must be true or false.")
    parsed = {role: _sequence(raw, f"protocol {source}: sequences.{role}") for role, raw in sequences.items()}
    return Protocol(float(field_t), parsed, source, draw)


def load_protocol(path: str | Path) -> Protocol:
    """A protocol from a JSON file, or an InputError naming the file and the problem."""
    return parse_protocol(read_json_file(path, "protocol"), Path(path).name)


def family_of(sidecar: dict) -> str:
    """RARE, FLASH or bSSFP from a sidecar's sequence words (and description); RARE when they say nothing."""
    words = " ".join(
        str(sidecar.get(k, ""))
        for k in ("PulseSequenceType", "ScanningSequence", "SequenceName", "SeriesDescription", "ProtocolName")
    ).lower()
    for family, pattern in _FAMILY_WORDS:
        if re.search(pattern, words):
            return family
    return "RARE"


def _from_image(image: Path) -> tuple[SequenceProtocol, float | None]:
    sidecar = read_sidecar(image)
    img = nib.load(str(image))
    affine = np.asarray(img.affine, dtype=float)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    plane = sidecar.get("SlicePlane") or plane_of(affine)
    # the voxel axis across the slices as acquired (a 3-D series may be stored reoriented by dcm2niix)
    world_axis = {"sagittal": 0, "coronal": 1, "axial": 2}.get(plane, 2)
    slice_axis = int(np.argmax(np.abs(affine[world_axis, :3]) / spacing))
    in_plane = [a for a in range(3) if a != slice_axis]
    thickness = float(sidecar.get("SliceThickness") or spacing[slice_axis])
    seq = SequenceProtocol(
        family=family_of(sidecar),
        repetition_time_s=float(sidecar.get("RepetitionTime") or 0.45),
        echo_time_s=float(sidecar.get("EchoTime") or 0.01),
        flip_angle_deg=float(sidecar.get("FlipAngle") or 90.0),
        echo_train_length=int(sidecar.get("EchoTrainLength") or 1),
        fat_suppression=bool(re.search(r"fat ?sat|\bfs\b|spir|spair|stir", json.dumps(sidecar).lower())),
        matrix=(int(img.shape[in_plane[0]]), int(img.shape[in_plane[1]])),
        pixel_mm=(round(float(spacing[in_plane[0]]), 4), round(float(spacing[in_plane[1]]), 4)),
        slice_mm=round(thickness, 4),
        gap_mm=round(max(0.0, float(spacing[slice_axis]) - thickness), 4),
        slices=int(img.shape[slice_axis]),
        plane=plane if plane in PLANES else "axial",
    )
    direction = str(sidecar.get("PhaseEncodingDirection") or sidecar.get("PhaseEncodingAxis") or "j").rstrip("-")
    bandwidth = sidecar.get("PixelBandwidth")
    seq = replace(
        seq,
        phase_encoding=direction if direction in ("i", "j") else "j",
        bandwidth_hz_per_pixel=float(bandwidth) if isinstance(bandwidth, (int, float)) and bandwidth > 0 else 0.0,
    )
    field_t = sidecar.get("MagneticFieldStrength")
    return seq, float(field_t) if field_t else None


def protocol_from_study(root: str | Path) -> Protocol:
    """The protocol a study was acquired with, from its sidecars and NIfTI grids (`simulate --like`).

    Each role is read from its first session that has it; the field is the most common one recorded."""
    root = Path(root)
    sessions = sorted(p for p in root.glob("sub-*/ses-*") if (p / "anat").is_dir())
    if not sessions:
        raise InputError(f"{root} holds no BIDS sessions (sub-*/ses-*/anat) to read a protocol from.")
    sequences: dict[str, SequenceProtocol] = {}
    fields: Counter = Counter()
    for session in sessions:
        subject, label = session.parent.name[4:], session.name[4:]
        for role in SEQUENCE_ROLES:
            image = bids.image_path(root, subject, label, role)
            if role in sequences or not image.exists():
                continue
            sequences[role], field_t = _from_image(image)
            if field_t:
                fields[field_t] += 1
    if not sequences:
        raise InputError(f"{root} has no T1w, T2w or CE images in its sessions.")
    field_t = fields.most_common(1)[0][0] if fields else 7.0
    return Protocol(field_t, sequences, f"like {root}", draw_artifacts=True)
