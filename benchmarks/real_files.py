"""A model on the real rodent files of ../shared/realdata: how much "tumor" it finds, at each anatomy gate.

    python benchmarks/real_files.py --model MODEL [--realdata ../shared/realdata] [--work DIR]
        [--shares 0 0.1 0.25 0.4] [--backend auto]

The healthy rat's abdomen (ucsf_rat_abdomen_dicom) has no tumor, so every voxel found is false; the
issue's target is under 50 mm^3. The mouse (ucsf_mouse_tumor_dicom, a T2w-only scan) has a large tumor
but no mask, so it is judged by eye: `--pictures` writes slices with the outline for that. Each DICOM
folder is imported once into DIR (`napari-hcc import`, the same code as the CLI), then read once (one
plain pass, as `segment`); every gate post-processes the same maps. Prints one line per file and gate,
and writes DIR/real_files.csv.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from napari_hcc.importing.importer import import_study
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.measure import volume_mm3
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.io.study import find_scans
from napari_hcc.model.loading import load_model

FILES = ("ucsf_rat_abdomen_dicom", "ucsf_mouse_tumor_dicom")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--realdata", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "realdata")
    ap.add_argument("--work", type=Path, default=Path("real_files"), help="imported studies and the table")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.4])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--pictures", action="store_true", help="PNG slices with the tumor (red) and liver (yellow)")
    args = ap.parse_args()

    model = load_model(args.model)
    engine = Engine(model, device="cpu", backend=args.backend)
    print(f"{model.card.version} ({engine.backend})")
    rows = []
    for name in FILES:
        study = args.work / name
        if not study.is_dir():
            import_study([args.realdata / name], study)
        for ref in find_scans(study):
            scan = ref.load()
            prob, liver = engine.maps(scan)
            liver_cm3 = None if liver is None else round(volume_mm3(liver >= 0.5, scan.affine) / 1000, 1)
            print(f"{name} {scan.shape}: the head's liver {liver_cm3} cm^3")
            for share in args.shares:
                mask = PostProcess.from_card(model.card, min_liver_share=share).apply(prob, scan.affine, liver)
                _, pieces = ndimage.label(mask)
                volume = volume_mm3(mask, scan.affine)
                print(f"  gate {share}: tumor {volume:.0f} mm^3 in {pieces} pieces")
                rows.append([name, share, round(volume), pieces, liver_cm3])
                if args.pictures and share == 0:
                    _pictures(args.work / f"{name}_{model.card.version}.png", scan, mask, liver)
    args.work.mkdir(parents=True, exist_ok=True)
    with open(args.work / "real_files.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["file", "gate", "tumor_mm3", "pieces", "liver_cm3"], *rows])


def _pictures(path: Path, scan, mask: np.ndarray, liver) -> None:
    """The four slices with the most tumor (or the middle ones), the first sequence the scan has, outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = next(v for v in scan.channels() if v is not None and np.any(v))
    counts = mask.sum(axis=(0, 1))
    slices = sorted(np.argsort(counts)[-4:]) if counts.any() else np.linspace(0, mask.shape[2] - 1, 4).astype(int)
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.4))
    for ax, k in zip(axes, slices, strict=True):
        ax.imshow(image[:, :, k].T, cmap="gray", origin="lower")
        if liver is not None:
            ax.contour((liver[:, :, k] >= 0.5).T.astype(float), [0.5], colors="yellow", linewidths=0.7)
        if mask[:, :, k].any():
            ax.contour(mask[:, :, k].T.astype(float), [0.5], colors="red", linewidths=0.9)
        ax.set_title(f"slice {k + 1} of {mask.shape[2]}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
