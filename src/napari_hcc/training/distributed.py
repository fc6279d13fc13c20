"""What a training process needs to know about its place in a run: its rank among `torchrun`'s processes,
its device and threads, and the learning rate at each optimiser step."""

from __future__ import annotations

import math
import os

import torch

from napari_hcc.model.devices import resolve_device


def dist_env() -> tuple[int, int, int]:
    """This process's rank, the number of processes and its local rank (one process: 0, 1, 0)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def device_for(spec: str, world: int, local_rank: int):
    """The device of this process: its own GPU under DDP, or its share of the CPU cores."""
    device = resolve_device(spec)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1 and device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return device


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to 1 % of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))
