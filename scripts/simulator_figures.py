"""Pictures for docs/simulator.md: one rat per arm across the weeks, the composition maps, and (with a
second study made with `--protocol varied`) the labs of the varied world.

    python scripts/simulator_figures.py STUDY_DIR docs/images [VARIED_DIR]

STUDY_DIR is a study made by `napari-hcc simulate` (the docs use the default cohort, seed 0).
Each panel is the axial slice with the most tumor, shown as a radiologist would (anterior up, the
animal's right on the left), with the truth outline.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.orientation import to_display
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.plugin.layers import contrast_limits
from napari_hcc.vocabulary import ARMS, COMPONENTS


def _slice(path, k=None):
    vol = load_volume(path, "image")
    shown, _ = to_display(vol.data, vol.affine)
    return shown


def arms_by_week(study: Path, out: Path, sequence: str) -> Path:
    refs = find_scans(study)
    weeks = sorted({r.session for r in refs})
    rats = {arm: sorted({r.subject for r in refs if r.arm == arm})[0] for arm in ARMS}
    fig, axes = plt.subplots(len(ARMS), len(weeks), figsize=(2.6 * len(weeks), 2.6 * len(ARMS)))
    for i, arm in enumerate(ARMS):
        for j, ses in enumerate(weeks):
            ref = next(r for r in refs if r.subject == rats[arm] and r.session == ses)
            img = _slice({"T1w": ref.t1w, "T2w": ref.t2w, "CE": ref.ce}[sequence])
            mask = _slice(ref.mask) > 0
            k = int(np.argmax(mask.reshape(mask.shape[0], -1).sum(1)))
            lo, hi = contrast_limits(img)
            ax = axes[i, j]
            ax.imshow(img[k], cmap="gray", vmin=lo, vmax=hi)
            ax.contour(mask[k], levels=[0.5], colors="yellow", linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"week {ses[2:]}")
            if j == 0:
                ax.set_ylabel(f"{arm}\n(sub-{rats[arm]})")
    fig.suptitle(f"{sequence}: one rat per arm, slice with the most tumor, truth outline", fontsize=10)
    fig.tight_layout()
    path = out / f"simulated_{sequence}_arms_by_week.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def composition(study: Path, out: Path) -> Path:
    refs = [r for r in find_scans(study) if r.session == "wk2"]
    fig, axes = plt.subplots(len(ARMS), 6, figsize=(13, 2.3 * len(ARMS)))
    for i, arm in enumerate(ARMS):
        ref = next(r for r in refs if r.arm == arm)
        mask = _slice(ref.mask) > 0
        k = int(np.argmax(mask.reshape(mask.shape[0], -1).sum(1)))
        rows, cols = np.nonzero(mask[k])
        box = (slice(max(rows.min() - 8, 0), rows.max() + 9), slice(max(cols.min() - 8, 0), cols.max() + 9))
        panels = [("T2w", _slice(ref.t2w)), ("CE", _slice(ref.ce))]
        panels += [(c, _slice(bids.truth_fraction_path(study, ref.subject, ref.session, c))) for c in COMPONENTS]
        for j, (name, vol) in enumerate(panels):
            ax = axes[i, j]
            if j < 2:
                lo, hi = contrast_limits(vol)
                ax.imshow(vol[k][box], cmap="gray", vmin=lo, vmax=hi)
            else:
                ax.imshow(vol[k][box], cmap="magma", vmin=0, vmax=1 if name != "apoptosis" else 0.15)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name if j < 2 else f"{name} fraction")
            if j == 0:
                ax.set_ylabel(arm)
    fig.suptitle(
        "Week 2: images and the tissue-composition maps they were rendered from (apoptosis scale 0-0.15)", fontsize=10
    )
    fig.tight_layout()
    path = out / "simulated_composition_week2.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def labs(varied: Path, out: Path, rats: int = 8) -> Path:
    """Week 2 of the first rats of a varied study: every sequence each lab acquired, its middle slice in the
    plane it was acquired in."""
    subjects = sorted(p.name for p in varied.glob("sub-*"))[:rats]
    fig, axes = plt.subplots(len(subjects), 3, figsize=(7.5, 2.6 * len(subjects)))
    for i, sub in enumerate(subjects):
        for j, role in enumerate(("T1w", "T2w", "CE")):
            ax = axes[i, j]
            ax.axis("off")
            path = bids.image_path(varied, sub[4:], "wk2", role)
            if not path.exists():
                ax.set_title(f"{sub} {role}: not acquired", fontsize=7)
                continue
            data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
            # in its acquired plane: the simulator stores i towards the animal's left (shown on the right)
            # and j anterior (axial) or cranial (coronal), shown up
            img = data[:, :, data.shape[2] // 2].T[::-1]
            meta = json.loads(bids.sidecar(path).read_text())
            lo, hi = contrast_limits(img)
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(
                f"{sub} {role}: {meta['MagneticFieldStrength']} T {meta['PulseSequenceType']} {meta['SlicePlane']}",
                fontsize=7,
            )
    fig.suptitle("varied: a lab drawn per rat (week 2, middle slice of each sequence)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    path = out / "simulated_varied_labs.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    study, out = Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "docs/images")
    out.mkdir(parents=True, exist_ok=True)
    for seq in ("T1w", "T2w", "CE"):
        print(arms_by_week(study, out, seq))
    print(composition(study, out))
    if len(sys.argv) > 3:
        print(labs(Path(sys.argv[3]), out))
