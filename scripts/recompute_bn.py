"""A copy of a model whose BatchNorm running statistics are recomputed over training batches, as stochastic
weight averaging's `torch.optim.swa_utils.update_bn` does after averaging weights.

`train --average-from` averages BatchNorm's statistics with the weights. This measures the alternative:
the batches are made by the trainer's own `training.batches.make_batch` (half tumor slices, windows holding the tumor, the
augmentation, sequence dropout). Measured on the twelfth run's mean (docs/model.md): worse with the
anatomy gate on every figure and no better without it, so the trainer keeps averaged statistics.

    python scripts/recompute_bn.py --model MODEL --study TRAIN [--study TRAIN2] --out FOLDER [--batches 64]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import update_bn

from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.export import save_like
from napari_hcc.model.loading import load_model
from napari_hcc.training.augment import AugmentConfig
from napari_hcc.training.batches import make_batch
from napari_hcc.training.dataset import build_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--study", required=True, action="append", type=Path, help="the studies the model trained on")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--batches", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--sequence-dropout", type=float, default=0.5)
    args = ap.parse_args()

    start = time.perf_counter()
    model = load_model(args.model)
    net = build_network(model).to(memory_format=torch.channels_last)
    ds = build_dataset(args.study, model.card, anatomy=bool(model.card.architecture.get("anatomy")))
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    tumor, every = np.asarray(ds.tumor_slices), np.arange(len(ds.y))
    half = args.batch_size // 2
    batches = []
    for _ in range(args.batches):
        part = np.sort(np.concatenate([rng.choice(tumor, half, replace=False), rng.choice(every, half, replace=False)]))
        batch = make_batch(
            ds,
            part,
            crop_px=args.crop,
            draws=rng,
            gen=gen,
            device=torch.device("cpu"),
            augment_cfg=AugmentConfig(),
            sequence_dropout=args.sequence_dropout,
            zero_missing=True,
        )
        batches.append(batch.x.contiguous(memory_format=torch.channels_last))
    with torch.no_grad():
        update_bn(batches, net)
    net.eval()
    how = f"BatchNorm statistics recomputed over {args.batches} training batches"
    entry = save_like(net, args.model, args.out, f"{model.card.version}-bn", how)
    print(f"model {args.out}: {how} in {time.perf_counter() - start:.0f} s; graph: {'yes' if entry else 'none'}")


if __name__ == "__main__":
    main()
