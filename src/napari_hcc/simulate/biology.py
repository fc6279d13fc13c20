"""Tumor biology of the simulated cohort: growth per arm, tissue composition, histology.

Everything here is image-free, so the cohort's statistics can be sampled for hundreds of rats in
milliseconds (used to calibrate and test the simulator). The numbers and their sources are in
``docs/simulator.md``.

Time is in weeks after the baseline scan (week 0, day 6 after implantation, before treatment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_hcc.vocabulary import ARMS

STRAINS = ("Buffalo", "Sprague-Dawley")

#: Tumor diameter at which Gompertz growth saturates (mm): a rat's left lobe cannot hold more.
D_MAX_MM = 22.0
#: Baseline diameter (mm): the group's related study reports 5.27 mm.
D0_MEDIAN_MM = 5.3


@dataclass(frozen=True)
class ArmEffect:
    """How an arm changes tumor biology, per unit of the rat's individual sensitivity."""

    growth_cut: float  # fraction of the proliferation rate removed
    shrink: float  # resorption of killed tissue, log-volume per week at full effect
    kill: float  # cytotoxic necrosis added per week (fraction of tumor volume)
    perfusion_cut: float  # fall in viable-tumor perfusion (anti-angiogenic effect)
    apoptosis: float  # apoptotic fraction added at full effect
    swelling: float  # transient volume gain from immune infiltrate and edema (NK)
    patchy_necrosis: float  # weight of multifocal (treatment) necrosis vs a central core


ARM_EFFECTS = {
    "Control": ArmEffect(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    # Sorafenib: anti-angiogenic and anti-proliferative; coagulative, patchy necrosis.
    "Sorafenib": ArmEffect(0.55, 0.15, 0.10, 0.50, 0.030, 0.0, 1.0),
    # NK cells through the hepatic artery: apoptosis, infiltrate and edema at the rim, swelling.
    "NK": ArmEffect(0.50, 0.20, 0.05, 0.05, 0.070, 0.55, 0.35),
    # Combination: both mechanisms.
    "Combination": ArmEffect(0.85, 0.55, 0.14, 0.45, 0.085, 0.30, 0.9),
}


@dataclass
class Rat:
    """One animal: its arm, strain and the random effects drawn for it."""

    participant_id: str
    arm: str
    strain: str
    d0_mm: float  # baseline tumor diameter
    growth_rate: float  # log-volume growth per week, untreated
    sensitivity: float  # 0 = non-responder, 1 = full responder
    necrosis_onset_mm: float  # diameter at which a hypoxic core starts
    perfusion: float  # baseline perfusion of viable tumor (relative)
    seed: int  # for the images of this rat
    extras: dict = field(default_factory=dict)


@dataclass
class TumorState:
    """The tumor of one rat at one session."""

    week: float
    diameter_mm: float  # equivalent-sphere diameter of the whole tumor
    volume_mm3: float
    necrosis: float  # volume fractions of the whole tumor
    apoptosis: float
    edema: float
    viable: float
    perfusion: float  # relative perfusion of the viable tissue (contrast uptake)
    patchy_necrosis: float  # 0 = central core only, 1 = multifocal treatment necrosis
    rim_infiltrate: float  # 0 = none, 1 = immune infiltrate concentrated at the rim


def sphere_volume(d_mm: float) -> float:
    return float(np.pi / 6.0 * d_mm**3)


def sphere_diameter(v_mm3: float) -> float:
    return float((6.0 * v_mm3 / np.pi) ** (1.0 / 3.0))


def draw_rat(rng: np.random.Generator, participant_id: str, arm: str) -> Rat:
    """Draw one rat's random effects. Strain is a random effect on growth and perfusion."""
    strain = STRAINS[int(rng.integers(len(STRAINS)))]
    strain_growth = 1.0 if strain == "Sprague-Dawley" else 0.82  # N1-S1 grows faster than McA-RH7777
    return Rat(
        participant_id=participant_id,
        arm=arm,
        strain=strain,
        d0_mm=float(D0_MEDIAN_MM * np.exp(rng.normal(0.0, 0.17))),
        # Log-volume growth rate per week: Control reaches about 14 mm by week 2 from 5.3 mm,
        # with the wide spread of orthotopic implants (13.99 +/- 8.01 mm in the group's study).
        growth_rate=float(2.1 * strain_growth * np.exp(rng.normal(0.0, 0.85))),
        sensitivity=float(rng.beta(3.0, 1.5)),
        necrosis_onset_mm=float(rng.normal(8.5, 1.2)),
        perfusion=float(np.exp(rng.normal(0.0, 0.12)) * (1.0 if strain == "Sprague-Dawley" else 1.08)),
        seed=int(rng.integers(2**31)),
    )


def effective_sensitivity(rat: Rat) -> float:
    """Response to the arm's treatment: the combination works if either of its drugs does."""
    if rat.arm == "Combination":
        return 1.0 - (1.0 - rat.sensitivity) ** 2
    return rat.sensitivity


def _cell_volume(rat: Rat, week: float) -> float:
    """Volume of tumor tissue (cells, living or dead) from Gompertz growth under treatment."""
    v0 = sphere_volume(rat.d0_mm)
    vmax = sphere_volume(D_MAX_MM)
    effect = ARM_EFFECTS[rat.arm]
    # Treatment starts right after the baseline scan: the rate falls from week 0 onwards.
    s = effective_sensitivity(rat)
    rate = rat.growth_rate * (1.0 - effect.growth_cut * s) - effect.shrink * s
    # Gompertz: d ln V / dt = rate * ln(Vmax / V) / ln(Vmax / V0).
    k = rate / np.log(vmax / v0)
    ln_v = np.log(vmax) - np.log(vmax / v0) * np.exp(-k * week)
    # A regressing tumor leaves a scar of at least 2 mm.
    return float(max(np.exp(ln_v), sphere_volume(2.0)))


def _swelling(rat: Rat, week: float) -> float:
    """Transient volume gain from infiltrate and edema: peaks about one week after NK cells."""
    amp = ARM_EFFECTS[rat.arm].swelling * effective_sensitivity(rat)
    if week <= 0 or amp == 0:
        return 0.0
    return float(amp * week * np.exp(1.0 - week))  # peak `amp` at week 1


def tumor_state(rat: Rat, week: float) -> TumorState:
    """The tumor's size and composition at `week` (0 = baseline, before treatment)."""
    effect = ARM_EFFECTS[rat.arm]
    s = effective_sensitivity(rat) if week > 0 else 0.0
    treated = min(week, 3.0)
    v_cells = _cell_volume(rat, week)
    swell = _swelling(rat, week)
    volume = v_cells * (1.0 + swell)
    diameter = sphere_diameter(volume)

    # Spontaneous hypoxic necrosis of large tumors (a central core), in every arm.
    d_cells = sphere_diameter(v_cells)
    spont = 0.38 / (1.0 + np.exp(-(d_cells - rat.necrosis_onset_mm) / 1.8))
    # Treatment necrosis accumulates with time; under anti-angiogenic drugs small tumors die too.
    treat_nec = 1.0 - np.exp(-effect.kill * s * treated * 2.2)
    necrosis_of_cells = 1.0 - (1.0 - spont) * (1.0 - treat_nec)
    # Edema and infiltrate are the swelling part of the volume (plus a little in every tumor).
    edema = swell / (1.0 + swell) + 0.02
    necrosis = necrosis_of_cells * (1.0 - edema)
    # Apoptosis (TUNEL): a few percent of cells, more under NK cells and drug.
    apoptosis = (0.015 + effect.apoptosis * s * min(treated, 2.0) / 2.0) * (1.0 - edema - necrosis)
    apoptosis += 0.004 * spont
    viable = max(0.0, 1.0 - necrosis - edema - apoptosis)
    perfusion = rat.perfusion * (1.0 - effect.perfusion_cut * s * min(treated, 1.5) / 1.5)
    return TumorState(
        week=float(week),
        diameter_mm=diameter,
        volume_mm3=volume,
        necrosis=float(necrosis),
        apoptosis=float(apoptosis),
        edema=float(edema),
        viable=float(viable),
        perfusion=float(perfusion),
        patchy_necrosis=float(effect.patchy_necrosis * (s > 0)),
        rim_infiltrate=float(min(1.0, 2.0 * effect.swelling) * (s > 0)),
    )


def draw_cohort(seed: int, rats_per_arm: int) -> list[Rat]:
    """The rats of a study, arms interleaved; a rat's draw depends only on (seed, its index)."""
    rats = []
    for i in range(rats_per_arm):
        for a, arm in enumerate(ARMS):
            index = i * len(ARMS) + a
            rng = np.random.default_rng([seed, 1, index])
            # Neutral IDs: the arm must not show in file names (blinded reading).
            rats.append(draw_rat(rng, f"rat{index + 1:02d}", arm))
    return rats
