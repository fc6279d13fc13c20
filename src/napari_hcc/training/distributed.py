"""A training process's place in a run: its rank among `torchrun`'s processes, its device and threads."""

from __future__ import annotations

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
