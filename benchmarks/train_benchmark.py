"""Training throughput: slices per second of the real training step (augmentation, forward, multi-task
loss, backward, AdamW), for each device and precision, on the sample study's slices.

    python benchmarks/train_benchmark.py [--devices cpu cuda] [--steps 20] [--batch-size 16]

Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.card import ModelCard
from napari_hcc.model.compute import cpu_native_bf16
from napari_hcc.model.devices import autocast, describe_device, resolve_device
from napari_hcc.model.network import HCCNet
from napari_hcc.training.augment import augment
from napari_hcc.training.dataset import build_dataset
from napari_hcc.training.losses import LossWeights, multitask_loss


def run(device, precision: str, ds, steps: int, batch: int) -> float:
    torch.manual_seed(0)
    net = HCCNet().to(device=device, memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    times = []
    for step in range(steps + 3):
        idx = rng.choice(len(ds.y), batch, replace=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        x = torch.from_numpy(ds.x[idx].astype(np.float32)).to(device)
        y = torch.from_numpy(ds.y[idx].astype(np.float32))[:, None].to(device)
        x, y = augment(x, y, gen)
        arm = torch.full((batch,), 1, device=device)
        bio = torch.full((batch, 2), 0.5, device=device)
        with autocast(device, precision):
            m, a, b = net(x.contiguous(memory_format=torch.channels_last))
        loss, _ = multitask_loss(m, a, b, y, arm, bio, LossWeights())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= 3:  # warm-up steps are not counted
            times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ds = build_dataset([sample_study()], ModelCard())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, native CPU bf16: {cpu_native_bf16()}"
    )
    print(f"{len(ds.y)} slices of 128 x 128 (0.375 mm); batch {args.batch_size}; median of {args.steps} steps\n")
    print("| device | precision | slices/s |")
    print("|---|---|---|")
    for spec in devices:
        device = resolve_device(spec)
        precisions = ["fp32"] + (["bf16"] if device.type != "cpu" or cpu_native_bf16() else [])
        for precision in precisions:
            rate = run(device, precision, ds, args.steps, args.batch_size)
            print(f"| {describe_device(device)} | {precision} | {rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
