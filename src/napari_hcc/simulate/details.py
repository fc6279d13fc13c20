"""What makes the drawn rat look less like a cartoon: liver parenchymal texture, branching hepatic and portal
vessels, gas in bowel loops, and (the `varied` world's anatomy variants) tumors in other lobes, with
irregular infiltrative margins and satellite nodules, and a fiducial tube beside the animal, as
preclinical labs tape one there for orientation and intensity.

Drawn from a generator of their own, so that adding them changed no other draw of the study's rats.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_hcc.simulate.anatomy import LABEL

#: the tumor's lobe in the varied world, and the side of the lobe it is implanted on (degrees, lobe frame)
TUMOR_SITES = {"lll": (115.0, 165.0), "ml": (60.0, 120.0), "rll": (15.0, 65.0)}
TEXTURE_SD = {"liver": 0.05, "tumor": 0.06, "muscle": 0.03, "spleen": 0.05, "kidney_cortex": 0.04}
TEXTURE_CORRELATION_MM = 0.6


def draw_details(rng: np.random.Generator, variants: bool) -> dict:
    """A rat's vessel branches and bowel gas; with `variants`, its tumor site and a fiducial tube."""
    branches = [
        (int(rng.integers(0, 4)), float(rng.uniform(0.3, 0.8)), rng.normal(0.0, 1.0, size=3).tolist(),
         float(rng.uniform(4.0, 8.0)), float(rng.uniform(0.3, 0.55)))
        for _ in range(int(rng.integers(6, 10)))
    ]  # fmt: skip
    details = {"branches": branches, "bowel_gas": [bool(rng.random() < 0.3) for _ in range(10)]}
    if variants:
        details["tumor_lobe"] = str(rng.choice(list(TUMOR_SITES), p=[0.6, 0.2, 0.2]))
        if rng.random() < 0.5:  # an irregular, infiltrative margin: narrow fingers into the liver
            dirs = rng.normal(size=(int(rng.integers(8, 20)), 3))
            details["margin_fingers"] = {
                "dirs": (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).tolist(),
                "amps": np.abs(rng.normal(0.12, 0.06, size=len(dirs))).tolist(),
            }
        if rng.random() < 0.25:  # satellite nodules around the main mass
            n = int(rng.integers(1, 4))
            dirs = rng.normal(size=(n, 3))
            details["satellites"] = [
                {"dir": (d / np.linalg.norm(d)).tolist(), "gap": float(rng.uniform(0.3, 1.0)),
                 "size": float(rng.uniform(0.12, 0.25))}
                for d in dirs
            ]  # fmt: skip
        if rng.random() < 0.3:
            details["fiducial"] = (
                float(rng.choice([-1.0, 1.0])),
                float(rng.uniform(-6.0, 6.0)),
                float(rng.uniform(1.0, 2.0)),
            )
    return details


def texture_field(shape, spacing, rng: np.random.Generator) -> np.ndarray:
    """A unit Gaussian random field over the scene with correlation length about `TEXTURE_CORRELATION_MM`:
    drawn on a grid of half that spacing (a whole multiple of the scene's), smoothed, and repeated onto
    the scene (each sequence's voxels average the steps away)."""
    factor = [max(1, int(round(TEXTURE_CORRELATION_MM / 2.0 / s))) for s in spacing]
    coarse = tuple(-(-n // f) for n, f in zip(shape, factor))
    field = ndimage.gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), 1.0, mode="wrap")
    field /= max(float(field.std()), 1e-6)
    for axis, f in enumerate(factor):
        field = np.repeat(field, f, axis=axis)
    return np.ascontiguousarray(field[: shape[0], : shape[1], : shape[2]])


def texture_sd() -> np.ndarray:
    """The texture's relative amplitude per tissue label."""
    sd = np.zeros(len(LABEL), dtype=np.float32)
    for name, value in TEXTURE_SD.items():
        sd[LABEL[name]] = value
    return sd


def texture(labels: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The multiplicative parenchymal texture of each voxel of `labels`."""
    return 1.0 + texture_sd()[labels] * field


def satellites(coords: list[np.ndarray], labels: np.ndarray, details: dict, centre, radius_mm: float, liver: int):
    """Satellite nodules: small spheres in the liver at `gap` tumor radii beyond the main mass's surface
    along `dir`, of `size` times its radius (they grow and shrink with it). Returns the scene index of their
    voxels and what the truth records."""
    found, record = [], []
    for sat in details.get("satellites", []):
        centre_s = np.asarray(centre) + np.asarray(sat["dir"]) * radius_mm * (1.0 + sat["gap"])
        r = max(sat["size"] * radius_mm, 0.3)
        near = np.ones(labels.shape, bool)
        for axis in range(3):
            near &= np.abs(coords[axis] - np.float32(centre_s[axis])) < r
        index = np.nonzero(near)
        d2 = sum((coords[a][index] - np.float32(centre_s[a])) ** 2 for a in range(3))
        keep = (d2 < r * r) & (labels[index] == liver)
        found.append(tuple(i[keep] for i in index))
        record.append({"centre_mm": centre_s.tolist(), "radius_mm": r, "voxels": int(keep.sum())})
    if not found:
        return None, record
    return tuple(np.concatenate([f[a] for f in found]) for a in range(3)), record
