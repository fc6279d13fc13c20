"""Augmentation cost per training batch: the project's batched transforms (`training/augment.py`)
against torchio's per-subject transforms doing the same kinds of thing (affine, bias field, gamma,
noise, ghosting, blur), on one batch of 16 slices of 3 x 128 x 128, with the machine's threads.

    python benchmarks/augment_benchmark.py [--repeats 20]

torchio is not a dependency of napari-hcc; install it to run this (`pip install torchio`). Figures go
in docs/benchmarks.md, beside the training step they would add to.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from napari_hcc.training.augment import AugmentConfig, augment


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    x = torch.rand(16, 3, 128, 128)
    y = (torch.rand(16, 1, 128, 128) > 0.9).float()
    gen = torch.Generator().manual_seed(0)
    ours = timed(lambda: augment(x, y, gen, AugmentConfig()), args.repeats)
    print(f"napari-hcc batched augment: {1000 * ours:.1f} ms per batch of 16")
    try:
        import torchio as tio
    except ImportError:
        print("torchio is not installed: pip install torchio")
        return
    transform = tio.Compose(
        [
            tio.RandomAffine(scales=(0.9, 1.1), degrees=(0, 0, 10), translation=(3, 3, 0)),
            tio.RandomBiasField(coefficients=0.15),
            tio.RandomGamma(log_gamma=0.2),
            tio.RandomNoise(std=0.03),
            tio.RandomGhosting(p=0.15),
            tio.RandomBlur(p=0.15),
        ]
    )

    def per_subject():
        for i in range(len(x)):
            subject = tio.Subject(
                image=tio.ScalarImage(tensor=x[i][..., None]), mask=tio.LabelMap(tensor=y[i][..., None].to(torch.uint8))
            )
            transform(subject)

    theirs = timed(per_subject, max(3, args.repeats // 4))
    print(f"torchio {tio.__version__} per-subject transforms: {1000 * theirs:.1f} ms per batch of 16")


if __name__ == "__main__":
    main()
