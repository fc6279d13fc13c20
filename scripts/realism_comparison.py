"""How far the simulated world is from real rodent MRI: the real mouse and rat of ../shared/realdata
(imported with `napari-hcc import`), cohorts simulated `--like` them, and the `study` and `varied`
worlds, measured the same way and pictured side by side.

    python scripts/realism_comparison.py [WORK_DIR]

Writes docs/images/realism_slices.png and prints the table of docs/simulator.md ("Realism, measured").

Measured per image, all normalised by the median of the body (Otsu's foreground, largest component):
liver and muscle median and spread, liver texture (grey-level co-occurrence contrast and homogeneity at
one pixel, scikit-image, 16 levels over the ROI's 1st-99th percentiles), the noise (air far from the body,
Rayleigh mean / 1.2533, over the liver median) and ghosting (air in line with the body along phase
encoding over air beside it). Liver and muscle are the truth labels on simulated images and hand-placed
boxes on the real ones (no labels exist; the boxes are drawn in the picture).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to
from scipy import ndimage
from skimage.feature import graycomatrix, graycoprops
from skimage.filters import threshold_otsu

from napari_hcc.cli import main
from napari_hcc.io import bids
from napari_hcc.io.json_files import read_sidecar
from napari_hcc.simulate.anatomy import LABEL

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
# hand-placed boxes on the real scans, (axis-0 range, axis-1 range, axis-2 range) in stored voxels
REAL_ROIS = {
    "mouse": {
        "liver": ((95, 118), (125, 150), (23, 24)),
        "muscle": ((122, 132), (94, 104), (22, 24)),
        "slice": (2, 23),
    },
    "rat": {"liver": ((105, 140), (38, 44), (140, 170)), "muscle": ((103, 114), (23, 28), (90, 130)), "slice": (1, 40)},
}


def body_mask(image: np.ndarray) -> np.ndarray:
    """The animal: Otsu's threshold of the smoothed image, halved so that dark organs stay in, the largest
    component, holes filled slice by slice."""
    smooth = ndimage.gaussian_filter(image, 1.5)
    body = smooth > 0.5 * threshold_otsu(smooth)
    labels, n = ndimage.label(ndimage.binary_opening(body, iterations=1))
    if n:
        body = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    return np.stack([ndimage.binary_fill_holes(body[:, :, k]) for k in range(body.shape[2])], axis=2)


def box(shape, ranges) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in ranges)] = True
    return mask


def glcm(image: np.ndarray, roi: np.ndarray, slice_axis: int) -> tuple[float, float]:
    lo, hi = np.percentile(image[roi], [1, 99])
    q = np.clip((image - lo) / max(hi - lo, 1e-6) * 15, 0, 15).astype(np.uint8)
    contrast, homogeneity = [], []
    for k in np.unique(np.nonzero(roi)[slice_axis]):
        plane, m = np.take(q, k, axis=slice_axis), np.take(roi, k, axis=slice_axis)
        rows, cols = np.nonzero(m)
        patch = plane[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        if min(patch.shape) < 4:
            continue
        g = graycomatrix(patch, [1], [0, np.pi / 2], levels=16, symmetric=True, normed=True)
        contrast.append(graycoprops(g, "contrast").mean())
        homogeneity.append(graycoprops(g, "homogeneity").mean())
    return float(np.mean(contrast)), float(np.mean(homogeneity))


def measure(image: np.ndarray, liver: np.ndarray, muscle: np.ndarray, slice_axis: int, pe_axis: int) -> dict:
    body = body_mask(image)
    ref = float(np.median(image[body]))
    far = ~ndimage.binary_dilation(body, iterations=6)
    hits = np.broadcast_to(body.any(axis=pe_axis, keepdims=True), body.shape)
    along, beside = far & hits, far & ~hits
    liver_median = float(np.median(image[liver]))
    contrast, homogeneity = glcm(image, liver, slice_axis)
    return {
        "liver": liver_median / ref,
        "liver_iqr": float(np.subtract(*np.percentile(image[liver], [75, 25]))) / ref,
        "muscle": float(np.median(image[muscle])) / ref,
        "liver_over_muscle": liver_median / float(np.median(image[muscle])),
        "glcm_contrast": contrast,
        "glcm_homogeneity": homogeneity,
        "noise_over_liver": float(image[beside].mean() / 1.2533 / liver_median) if beside.any() else float("nan"),
        "ghost_ratio": float(image[along].mean() / image[beside].mean()) if beside.any() else float("nan"),
    }


def simulated(root: Path, role: str, limit: int) -> list[tuple[str, np.ndarray, dict, np.ndarray, int]]:
    """(label, image, measures, picture slice, slice axis) of the first `limit` sessions' `role` image."""
    out = []
    for session in sorted(root.glob("sub-*/ses-*"))[:limit]:
        sub, ses = session.parent.name[4:], session.name[4:]
        path = bids.image_path(root, sub, ses, role)
        if not path.exists():
            continue
        img = nib.load(path)
        image = np.asarray(img.dataobj, dtype=np.float32)
        labels = nib.load(bids.truth_tissue_path(root, sub, ses))
        if labels.shape != image.shape or not np.allclose(labels.affine, img.affine):  # the T2w on a grid of its own
            labels = resample_from_to(labels, img, order=0)
        tissue = np.asarray(labels.dataobj)
        meta = read_sidecar(path)
        pe = 0 if meta.get("PhaseEncodingDirection") == "i" else 1
        liver = ndimage.binary_erosion(tissue == LABEL["liver"])
        muscle = ndimage.binary_erosion(tissue == LABEL["muscle"])
        k = int(np.argmax((tissue == LABEL["liver"]).sum(axis=(0, 1))))
        out.append((meta.get("SlicePlane", "axial"), image, measure(image, liver, muscle, 2, pe), image[:, :, k], 2))
    return out


def real(name: str, study: Path) -> tuple[np.ndarray, dict, np.ndarray]:
    path = next(study.rglob("*_T2w.nii.gz"))
    image = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    rois = REAL_ROIS[name]
    liver, muscle = box(image.shape, rois["liver"]), box(image.shape, rois["muscle"])
    axis, k = rois["slice"]
    meta = read_sidecar(path)
    pe = 0 if str(meta.get("PhaseEncodingAxis", "j")).startswith("i") else 1
    boxes = [  # the boxes that cross the pictured slice
        [r for a, r in enumerate(rois[t]) if a != axis] if rois[t][axis][0] <= k < rois[t][axis][1] else None
        for t in ("liver", "muscle")
    ]
    return image, measure(image, liver, muscle, axis, pe), np.take(image, k, axis=axis), boxes


def run(work: Path) -> None:
    for name, folder in (("mouse", "ucsf_mouse_tumor_dicom"), ("rat", "ucsf_rat_abdomen_dicom")):
        main(["import", str(REALDATA / folder), "-o", str(work / f"real-{name}"), "--quiet"])
        main(["simulate", "--out", str(work / f"like-{name}"), "--like", str(work / f"real-{name}"),
              "--rats-per-arm", "1", "--weeks", "2", "--quiet"])  # fmt: skip
    main(["simulate", "--out", str(work / "study"), "--rats-per-arm", "1", "--weeks", "2", "--quiet"])
    main(["simulate", "--out", str(work / "varied"), "--protocol", "varied", "--rats-per-arm", "2", "--weeks", "2",
          "--quiet"])  # fmt: skip
    rows, pictures = [], []
    for label, root, role, limit in (("study T2w", "study", "T2w", 4), ("varied T2w", "varied", "T2w", 8),
                                     ("like mouse", "like-mouse", "T2w", 4), ("like rat", "like-rat", "T2w", 4)):  # fmt: skip
        found = simulated(work / root, role, limit)
        measures = [m for _, _, m, _, _ in found]
        rows.append(
            (label, f"{len(found)} sims", {k: float(np.nanmedian([m[k] for m in measures])) for k in measures[0]})
        )
        axial = [f for f in found if f[0] == "axial"] or found
        pictures.append((label, axial[0][3], []))
    for name in ("mouse", "rat"):
        _, m, picture, boxes = real(name, work / f"real-{name}")
        rows.append((f"real {name}", "1 scan", m))
        pictures.append((f"real {name} (liver, muscle boxes)", picture, boxes))
    keys = list(rows[0][2])
    print("| images | n | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for label, n, m in rows:
        print(f"| {label} | {n} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    fig, axes = plt.subplots(1, len(pictures), figsize=(3.2 * len(pictures), 3.6))
    for ax, (label, picture, boxes) in zip(axes, pictures):
        ax.imshow(picture.T, cmap="gray", origin="lower", vmin=0, vmax=np.percentile(picture, 99.5))
        for ranges, colour in zip(boxes, ("tab:orange", "tab:cyan")):
            if ranges is None:
                continue
            (x0, x1), (y0, y1) = ranges
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linewidth=1))
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "images" / "realism_slices.png", dpi=90)


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="hcc-realism-")))
