"""MRI physics of the simulator: tissue relaxation, contrast uptake, spin-echo signal, bias and noise.

Relaxation times are for 7 T, the usual field of preclinical body MRI; the sources and the reasoning
behind each value are in ``docs/simulator.md``. Signal is the spin-echo equation
S = PD (1 - exp(-TR/T1)) exp(-TE/T2), with gadolinium shortening T1 and T2 through its relaxivities.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from napari_hcc.simulate.anatomy import TISSUES


@dataclass(frozen=True)
class Sequence:
    """Acquisition parameters written to the JSON sidecar (BIDS names)."""

    suffix: str  # BIDS file suffix, e.g. "T1w" or "ce-gd_T1w"
    pulse_sequence: str
    repetition_time_s: float
    echo_time_s: float
    echo_train_length: int
    contrast: bool
    snr_liver: float  # liver signal / noise standard deviation

    def sidecar(self, field_strength_t: float) -> dict:
        out = {
            "Manufacturer": "simulated (napari-hcc)",
            "MagneticFieldStrength": field_strength_t,
            "PulseSequenceType": self.pulse_sequence,
            "RepetitionTime": self.repetition_time_s,
            "EchoTime": self.echo_time_s,
            "EchoTrainLength": self.echo_train_length,
            "MRAcquisitionType": "2D",
        }
        if self.contrast:
            out.update(
                {
                    "ContrastBolusIngredient": "GADOLINIUM",
                    "ContrastBolusAgent": "Gd-DTPA",
                    "ContrastBolusDose_mmol_per_kg": 0.2,
                    "ContrastBolusDelay_s": 180,
                }
            )
        return out


SEQUENCES = (
    Sequence("T1w", "RARE (spin echo)", 0.45, 0.009, 2, False, 22.0),
    Sequence("T2w", "RARE (turbo spin echo)", 3.0, 0.033, 8, False, 15.0),
    Sequence("ce-gd_T1w", "RARE (spin echo), post-contrast", 0.45, 0.009, 2, True, 24.0),
)
FIELD_STRENGTH_T = 7.0

# Gd-DTPA relaxivities at 7 T (per mM per second).
R1_GD, R2_GD = 3.6, 5.3


@dataclass(frozen=True)
class Tissue:
    pd: float  # proton density, relative to water
    t1_ms: float
    t2_ms: float
    gd_mM: float  # gadolinium concentration at the post-contrast acquisition
    flow_void: float = 1.0  # signal kept by flowing blood on spin echo


TISSUE_TABLE = {
    "background": Tissue(0.0, 1000, 1, 0.0),
    "subcutaneous_fat": Tissue(0.95, 420, 55, 0.02),
    "muscle": Tissue(0.72, 1650, 27, 0.12),
    "visceral_fat": Tissue(0.92, 420, 55, 0.02),
    "liver": Tissue(0.72, 1150, 24, 0.30),
    "tumor": Tissue(0.82, 1650, 42, 0.42),  # viable tumor; other components below
    "stomach_wall": Tissue(0.75, 1500, 35, 0.25),
    "stomach_content": Tissue(0.85, 2200, 90, 0.0),
    "gas": Tissue(0.0, 1000, 1, 0.0),
    "bowel_wall": Tissue(0.75, 1500, 40, 0.30),
    "bowel_content": Tissue(0.80, 1800, 70, 0.0),
    "kidney_cortex": Tissue(0.80, 1400, 45, 1.20),
    "kidney_medulla": Tissue(0.85, 1900, 65, 0.80),
    "spleen": Tissue(0.80, 1750, 40, 0.35),
    "blood_vessel": Tissue(0.85, 2100, 40, 0.55, flow_void=0.3),
    "bone_marrow": Tissue(0.65, 900, 40, 0.15),
    "cortical_bone": Tissue(0.05, 1000, 1, 0.0),
    "csf": Tissue(1.0, 4000, 200, 0.0),
    "spinal_cord": Tissue(0.75, 1600, 35, 0.0),
    "lung": Tissue(0.12, 1300, 15, 0.05),
}
assert tuple(TISSUE_TABLE) == TISSUES

# Tumor components besides viable tissue.
NECROSIS_LIQUEFACTIVE = Tissue(0.88, 2400, 95, 0.04)
NECROSIS_COAGULATIVE = Tissue(0.84, 2000, 55, 0.06)
APOPTOSIS = Tissue(0.78, 1500, 34, 0.18)
EDEMA_INFILTRATE = Tissue(0.90, 2100, 72, 0.40)


def spin_echo(pd, t1_ms, t2_ms, gd_mM, seq: Sequence):
    """Spin-echo magnitude signal; post-contrast sequences see gadolinium's shortening."""
    r1 = 1.0 / np.asarray(t1_ms, dtype=np.float32)
    r2 = 1.0 / np.asarray(t2_ms, dtype=np.float32)
    if seq.contrast:
        r1 = r1 + R1_GD * 1e-3 * np.asarray(gd_mM, dtype=np.float32)
        r2 = r2 + R2_GD * 1e-3 * np.asarray(gd_mM, dtype=np.float32)
    tr, te = seq.repetition_time_s * 1e3, seq.echo_time_s * 1e3
    return (pd * (1.0 - np.exp(-tr * r1)) * np.exp(-te * r2)).astype(np.float32)


def tissue_signal(tissue: Tissue, seq: Sequence, tumor_scale: tuple[float, float] = (1.0, 1.0)) -> float:
    """Signal of a homogeneous tissue (`tumor_scale` scales T1 and T2, e.g. per strain)."""
    return (
        float(spin_echo(tissue.pd, tissue.t1_ms * tumor_scale[0], tissue.t2_ms * tumor_scale[1], tissue.gd_mM, seq))
        * tissue.flow_void
    )


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """Smooth multiplicative receive-coil sensitivity: a random low-order polynomial, about +/-15%."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = [x, y, z, x * y, x * x - 1 / 3, y * y - 1 / 3, 0.5 * z * z]
    coef = rng.normal(0.0, strength / 2.0, size=len(terms))
    log_b = sum(c * t for c, t in zip(coef, terms))
    return np.exp(log_b).astype(np.float32)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of signal plus complex Gaussian noise: Rician in tissue, Rayleigh in air."""
    re = signal + rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    im = rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    return np.sqrt(re * re + im * im)


def describe() -> dict:
    """The tissue table and sequences, for the study's documentation sidecar."""
    return {
        "field_strength_T": FIELD_STRENGTH_T,
        "gd_relaxivity_per_mM_s": {"r1": R1_GD, "r2": R2_GD},
        "sequences": [asdict(s) for s in SEQUENCES],
        "tissues": {k: asdict(v) for k, v in TISSUE_TABLE.items()},
        "tumor_components": {
            "necrosis_liquefactive": asdict(NECROSIS_LIQUEFACTIVE),
            "necrosis_coagulative": asdict(NECROSIS_COAGULATIVE),
            "apoptosis": asdict(APOPTOSIS),
            "edema_infiltrate": asdict(EDEMA_INFILTRATE),
        },
    }
