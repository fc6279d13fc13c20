"""Endpoint histology, sampled from the composition maps the way a pathologist samples a tumor.

The tumor is cut into a few sections (here: three axial sections through it, one through its largest
cross-section); in each, a few high-power fields are read. H&E viability is the viable share of the
tumor area read; the TUNEL index is apoptotic cells among cellular (non-necrotic, non-edematous)
tumor. Both carry reader and staining noise.
"""

from __future__ import annotations

import numpy as np

N_SECTIONS = 3
FIELDS_PER_SECTION = 6
FIELD_MM = 1.0  # side of a high-power field


def sample_histology(
    fractions: dict[str, np.ndarray], spacing: tuple[float, float, float], rng: np.random.Generator
) -> dict[str, float]:
    tumor = fractions["viable"] + fractions["necrosis"] + fractions["apoptosis"] + fractions["edema"]
    area = tumor.sum(axis=(0, 1))
    if area.max() <= 0:
        return {"viability": float("nan"), "apoptosis": float("nan")}
    biggest = int(area.argmax())
    others = [k for k in np.nonzero(area > 0.25 * area.max())[0] if k != biggest]
    picks = [biggest] + list(rng.choice(others, size=min(N_SECTIONS - 1, len(others)), replace=False))
    half = max(1, int(round(FIELD_MM / spacing[0] / 2)))
    sums = {k: 0.0 for k in fractions}
    for k in picks:
        cells = np.argwhere(tumor[:, :, k] > 0.5)
        for i, j in cells[rng.choice(len(cells), size=min(FIELDS_PER_SECTION, len(cells)), replace=False)]:
            field = (slice(max(0, i - half), i + half + 1), slice(max(0, j - half), j + half + 1), k)
            for name, f in fractions.items():
                sums[name] += float(f[field].sum())
    total = sum(sums.values())
    viability = sums["viable"] / total
    apoptosis = sums["apoptosis"] / max(sums["viable"] + sums["apoptosis"], 1e-9)
    # Reader and staining variability: +/-0.03 absolute on H&E, ~12% relative on TUNEL counts.
    viability = float(np.clip(viability + rng.normal(0.0, 0.03), 0.0, 1.0))
    apoptosis = float(np.clip(apoptosis * np.exp(rng.normal(0.0, 0.12)) + rng.normal(0.0, 0.002), 0.0, 1.0))
    return {"viability": viability, "apoptosis": apoptosis}
