"""Scan-level tumor features for the response readout: what a radiologist reads inside the tumor.

Each sequence (T1w, T2w, CE) is divided by the median of a 1 mm shell of tissue around the tumor (the
surrounding liver), so scanner gain and coil profile cancel; the enhancement map is CE over T1w, voxel
by voxel, in those units. Of each map inside the tumor: mean, spread, the 10th to 90th percentiles, the
rim (outer 0.6 mm of the tumor) and the core (the rest); plus the log tumor volume. Then a radial
profile: the tumor's voxels ranked by their depth below its surface and cut into five shells of equal
volume, outermost first, with each map's mean in each shell. Distances are in mm (Euclidean distance
transform with the voxel spacing), so the features mean the same on any grid.

Why these: treatment changes the tumor's composition (necrosis, oedema, perfusion; docs/simulator.md),
and those are what T2w brightness, CE uptake and their heterogeneity show. Where they lie matters as
much as how much there is: oedema and immune infiltrate gather in the outer part of the tumor, necrosis
in its core, so the same mean can hide a bright rim or a bright centre; the equal-volume shells tell
them apart whatever the tumor's size (a fixed 0.6 mm rim is a different share of a 5 mm and a 20 mm
tumor). The features are cheap
(tens of milliseconds) and work on any mask: the predicted one at inference, the truth or a
radiologist's correction when the readout is fitted.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from napari_hcc.io.orientation import spacing
from napari_hcc.io.scan import Scan

#: three sequences and the enhancement map (CE / T1w voxel by voxel)
MAPS = ("t1", "t2", "ce", "enhancement")
PERCENTILES = (10, 25, 50, 75, 90)
STATISTICS = ("mean", "std") + tuple(f"p{q}" for q in PERCENTILES) + ("rim", "core")
SHELLS = 5  # equal-volume shells from the surface (1) to the core (5)
FEATURE_NAMES = (
    tuple(f"{m}_{k}" for m in MAPS for k in STATISTICS)
    + ("log_volume_mm3",)
    + tuple(f"{m}_shell{i + 1}" for m in MAPS for i in range(SHELLS))
)

#: the sequences each map needs: a session without some sequences reads only the features of its maps
MAP_NEEDS = {"t1": {"T1w"}, "t2": {"T2w"}, "ce": {"CE"}, "enhancement": {"T1w", "CE"}}


def subset_feature_names(subset: str) -> list[str]:
    """The FEATURE_NAMES a session with the sequences `subset` ('T1w+T2w', 'T2w', ...) can read."""
    roles = set(subset.split("+"))
    maps = {m for m, need in MAP_NEEDS.items() if need <= roles}
    return [n for n in FEATURE_NAMES if n == "log_volume_mm3" or n.split("_")[0] in maps]


SHELL_MM = 1.0  # surrounding tissue used as the intensity reference
RIM_MM = 0.6  # outer layer of the tumor


def tumor_features(scan: Scan, mask: np.ndarray) -> np.ndarray | None:
    """The FEATURE_NAMES vector for one scan and tumor mask (source grid); None without a tumor."""

    inside = np.asarray(mask) > 0
    if not inside.any():
        return None
    sp = spacing(scan.affine)
    # Distance transforms on the tumor's bounding box plus a margin: a few ms instead of a whole volume.
    margin = [int(np.ceil(SHELL_MM / s)) + 1 for s in sp]
    idx = np.argwhere(inside)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, inside.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    m = inside[box]
    outside_mm = ndimage.distance_transform_edt(~m, sampling=sp)
    inside_mm = ndimage.distance_transform_edt(m, sampling=sp)
    shell = (outside_mm > 0) & (outside_mm <= SHELL_MM)
    rim = m & (inside_mm <= RIM_MM)
    core = m & ~rim
    maps = {}
    for name, image in (("t1", scan.t1w), ("t2", scan.t2w), ("ce", scan.ce)):
        img = np.asarray(image[box], np.float64)
        ref = float(np.median(img[shell])) if shell.any() else float(np.median(img))
        maps[name] = img / (ref if abs(ref) > 1e-6 else 1e-6)
    maps["enhancement"] = maps["ce"] / np.maximum(maps["t1"], 1e-3)  # 1 = enhances like the surrounding liver
    values = []
    for name in MAPS:
        ratio = maps[name]
        v = ratio[m]
        rim_mean = float(ratio[rim].mean()) if rim.any() else float(v.mean())
        core_mean = float(ratio[core].mean()) if core.any() else rim_mean
        values += [float(v.mean()), float(v.std()), *np.percentile(v, PERCENTILES), rim_mean, core_mean]
    values.append(float(np.log(inside.sum() * float(np.prod(sp)) + 1.0)))
    # Equal-volume shells by depth (ties kept in voxel order, so the cut is reproducible).
    shells = np.array_split(np.argsort(inside_mm[m], kind="stable"), SHELLS)
    for name in MAPS:
        v = maps[name][m]
        values += [float(v[s].mean()) if len(s) else float(v.mean()) for s in shells]
    return np.asarray(values, np.float64)
