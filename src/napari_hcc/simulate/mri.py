"""The simulator's tissues: proton density, relaxation at 7 T and gadolinium uptake, and Rician noise.

Relaxation times are for 7 T, the usual field of preclinical body MRI; `physics` carries them to other
fields and into each sequence family's signal. The sources and the reasoning behind each value are in
``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hcc.simulate.anatomy import TISSUES


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
    "fiducial": Tissue(1.0, 900, 120, 0.0),  # doped water
    "myocardium": Tissue(0.78, 1500, 30, 0.35),
    "urine": Tissue(0.98, 3000, 600, 2.0),  # gadolinium is cleared by the kidneys into the bladder
}
assert tuple(TISSUE_TABLE) == TISSUES

# Tumor components besides viable tissue.
NECROSIS_LIQUEFACTIVE = Tissue(0.88, 2400, 95, 0.04)
NECROSIS_COAGULATIVE = Tissue(0.84, 2000, 55, 0.06)
APOPTOSIS = Tissue(0.78, 1500, 34, 0.18)
EDEMA_INFILTRATE = Tissue(0.90, 2100, 72, 0.40)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of signal plus complex Gaussian noise: Rician in tissue, Rayleigh in air."""
    re = signal + rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    im = rng.normal(0.0, sigma, size=signal.shape).astype(np.float32)
    return np.sqrt(re * re + im * im)
