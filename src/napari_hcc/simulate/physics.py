"""MRI signal physics across labs: relaxation that depends on the field, contrast-agent relaxivity per
field, and the signal equations of the three sequence families a preclinical lab uses.

The tissue table (`mri.TISSUE_TABLE`) holds relaxation times at 7 T. At another field B0, T1 follows
a power law, T1(B0) = T1(7 T) (B0 / 7 T)^b (Bottomley et al., Med Phys 1984; the exponents per tissue
class are set so that liver R1 follows the field dependence of Waterton's survey of 143 liver studies,
MAGMA 2021, 34:779), T2 shortens slightly with the field (de Graaf et al., NMR Biomed 2006, rat tissue
at 4.7-11.7 T), and T2* adds a reversible dephasing rate R2' that grows in proportion to the field.
The reasoning and the tables are in docs/simulator.md.

Signal equations (magnitude, proton density PD, E1 = exp(-TR/T1), E2 = exp(-TR/T2)):

- RARE (spin echo, effective echo time): PD (1 - E1) exp(-TE/T2)
- FLASH (spoiled gradient echo): PD sin(a) (1 - E1) / (1 - cos(a) E1) exp(-TE/T2*)
- bSSFP (balanced, on resonance): PD sin(a) (1 - E1) / (1 - (E1 - E2) cos(a) - E1 E2) exp(-TE/T2)

Fat suppression leaves 8 % of fat's signal; flowing blood keeps `flow_void` of its signal on spin echo
and is brightened by inflow on gradient echoes.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from napari_hcc.simulate import mri
from napari_hcc.simulate.mri import Tissue
from napari_hcc.simulate.protocol import SequenceProtocol

REFERENCE_FIELD_T = 7.0
#: T1 field-dependence exponents b in T1 ~ B0^b, by tissue class
T1_EXPONENT = {
    "liver": 0.50,
    "tumor": 0.40,
    "muscle": 0.40,
    "fat": 0.15,
    "kidney": 0.35,
    "spleen": 0.40,
    "blood": 0.35,
    "fluid": 0.10,
    "marrow": 0.20,
    "other": 0.35,
}
T2_EXPONENT = -0.10
#: reversible dephasing R2' at 7 T (1/s), grows in proportion to the field
R2_PRIME_7T = {"liver": 55.0, "spleen": 60.0, "lung": 400.0, "fat": 30.0, "blood": 30.0, "other": 20.0}
#: Gd-DTPA relaxivities in plasma at 37 C (per mM per s) by field: Rohrer et al., Invest Radiol 2005
#: (1.5, 3 and 4.7 T); 7 T as the simulator used it; 9.4 and 11.7 T extrapolating the slow fall of r1
#: and slow rise of r2 that small extracellular agents show at high field.
GD_RELAXIVITY = {1.5: (4.1, 4.6), 3.0: (3.7, 5.2), 4.7: (3.8, 5.1), 7.0: (3.6, 5.3), 9.4: (3.4, 5.5), 11.7: (3.3, 5.6)}
FAT_SUPPRESSION_RESIDUAL = 0.08
INFLOW_GAIN = 1.4  # a vessel on a 2-D gradient echo: fresh spins every TR

_CLASS = {
    "liver": "liver",
    "tumor": "tumor",
    "muscle": "muscle",
    "subcutaneous_fat": "fat",
    "visceral_fat": "fat",
    "kidney_cortex": "kidney",
    "kidney_medulla": "kidney",
    "spleen": "spleen",
    "blood_vessel": "blood",
    "csf": "fluid",
    "stomach_content": "fluid",
    "bowel_content": "fluid",
    "bone_marrow": "marrow",
    "lung": "lung",
    "fiducial": "fluid",
    "myocardium": "muscle",
    "urine": "fluid",
}
FAT_TISSUES = ("subcutaneous_fat", "visceral_fat")


def tissue_class(name: str) -> str:
    return _CLASS.get(name, "other")


def gd_relaxivity(field_t: float) -> tuple[float, float]:
    """(r1, r2) of Gd-DTPA at `field_t`, interpolated in log field between the table's entries."""
    fields = np.array(sorted(GD_RELAXIVITY))
    values = np.array([GD_RELAXIVITY[f] for f in fields])
    x = np.log(np.clip(field_t, fields[0], fields[-1]))
    return float(np.interp(x, np.log(fields), values[:, 0])), float(np.interp(x, np.log(fields), values[:, 1]))


def at_field(t1_ms, t2_ms, kind: str, field_t: float):
    """T1, T2 and T2* (ms) of a tissue class at `field_t`, from their 7 T values."""
    ratio = field_t / REFERENCE_FIELD_T
    t1 = np.asarray(t1_ms, dtype=np.float32) * np.float32(ratio ** T1_EXPONENT.get(kind, T1_EXPONENT["other"]))
    t2 = np.asarray(t2_ms, dtype=np.float32) * np.float32(ratio**T2_EXPONENT)
    r2_prime = R2_PRIME_7T.get(kind, R2_PRIME_7T["other"]) * ratio * 1e-3  # per ms
    t2_star = 1.0 / (1.0 / t2 + np.float32(r2_prime))
    return t1, t2, t2_star


def signal(pd, t1_ms, t2_ms, gd_mM, kind: str, seq: SequenceProtocol, field_t: float, contrast: bool):
    """Magnitude signal of tissue with 7 T relaxation times (`t1_ms`, `t2_ms`) and gadolinium `gd_mM`
    (read only when `contrast`), acquired with `seq` at `field_t`."""
    t1, t2, t2_star = at_field(t1_ms, t2_ms, kind, field_t)
    r1, r2, r2s = 1.0 / t1, 1.0 / t2, 1.0 / t2_star
    if contrast:
        g1, g2 = gd_relaxivity(field_t)
        gd = np.asarray(gd_mM, dtype=np.float32) * np.float32(1e-3)
        r1, r2, r2s = r1 + g1 * gd, r2 + g2 * gd, r2s + g2 * gd
    tr, te = seq.repetition_time_s * 1e3, seq.echo_time_s * 1e3
    e1 = np.exp(-tr * r1)
    if seq.family == "RARE":
        s = (1.0 - e1) * np.exp(-te * r2)
    else:
        a = np.deg2rad(seq.flip_angle_deg)
        if seq.family == "FLASH":
            s = np.sin(a) * (1.0 - e1) / (1.0 - np.cos(a) * e1) * np.exp(-te * r2s)
        else:  # bSSFP
            e2 = np.exp(-tr * r2)
            s = np.sin(a) * (1.0 - e1) / (1.0 - (e1 - e2) * np.cos(a) - e1 * e2) * np.exp(-te * r2)
    return (np.asarray(pd, dtype=np.float32) * s).astype(np.float32)


def gain(seq: SequenceProtocol, kind: str) -> float:
    """The lab's factor on the signal of tissue class `kind` (`SequenceProtocol.tissue_gain`); a tumor takes
    the liver's, so that a lesion's contrast against its liver stays the physics' own."""
    return float(seq.tissue_gain.get("liver" if kind == "tumor" else kind, 1.0))


def tissue_signal(
    name: str, tissue: Tissue, seq: SequenceProtocol, field_t: float, contrast: bool, t2_scale: float = 1.0
) -> float:
    """Signal of a homogeneous tissue, with fat suppression, flow and the lab's tissue gain as the sequence
    sees them."""
    kind = tissue_class(name)
    s = float(signal(tissue.pd, tissue.t1_ms, tissue.t2_ms * t2_scale, tissue.gd_mM, kind, seq, field_t, contrast))
    s *= gain(seq, kind)
    if name in FAT_TISSUES and seq.fat_suppression:
        s *= FAT_SUPPRESSION_RESIDUAL
    if tissue.flow_void != 1.0:
        s *= tissue.flow_void if seq.family == "RARE" else INFLOW_GAIN if seq.family == "FLASH" else 1.0
    return s


def describe() -> dict:
    """The tissue table and its field dependence, for the study's documentation sidecar."""
    return {
        "reference_field_T": REFERENCE_FIELD_T,
        "t1_field_exponents": T1_EXPONENT,
        "t2_field_exponent": T2_EXPONENT,
        "r2_prime_at_7T_per_s": R2_PRIME_7T,
        "gd_relaxivity_per_mM_s_by_field_T": {str(k): {"r1": v[0], "r2": v[1]} for k, v in GD_RELAXIVITY.items()},
        "tissues_at_7T": {k: asdict(v) for k, v in mri.TISSUE_TABLE.items()},
        "tumor_components_at_7T": {
            "necrosis_liquefactive": asdict(mri.NECROSIS_LIQUEFACTIVE),
            "necrosis_coagulative": asdict(mri.NECROSIS_COAGULATIVE),
            "apoptosis": asdict(mri.APOPTOSIS),
            "edema_infiltrate": asdict(mri.EDEMA_INFILTRATE),
        },
    }
