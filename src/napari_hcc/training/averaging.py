"""The running mean of a run's weights over its last epochs (stochastic weight averaging, Izmailov et al.
2018; `train --average-from N`).

On 2 CPU cores a run is a few epochs and its few validation rats pick between them noisily: the real
healthy rat's false tumor swung four-fold between consecutive epochs of one run, while the mean of the
epochs' weights never read like its worst member (docs/model.md). The mean is taken after each epoch
from epoch N on, kept beside the resumable state so an interrupted run resumes it, and published as the
model. BatchNorm's running statistics are averaged like the weights (the epochs lie close, so this is near
what recomputing them would give, and costs nothing); integer buffers (BatchNorm's batch counter) are the
last epoch's.

`torch.optim.swa_utils.AveragedModel` does the same per step in memory; it is not used because its
buffers option averages the integer batch counters too, and its state is a pickled module. This is a
dictionary of tensors saved as safetensors.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_hcc.io.atomic import atomic_path

MEAN_FILE = "mean.safetensors"


class WeightMean:
    """The mean of the networks given to `add`, in float32 on the CPU."""

    def __init__(self) -> None:
        self.mean: dict[str, torch.Tensor] = {}
        self.epochs: list[int] = []  # the epochs in the mean (1-based)

    @property
    def count(self) -> int:
        return len(self.epochs)

    def add(self, net: torch.nn.Module, epoch: int) -> None:
        """Add the network's weights after `epoch`; an epoch already in the mean (a run resumed after its
        mean was saved but before its state was) is not counted twice."""
        if epoch in self.epochs:
            return
        self.epochs.append(epoch)
        for k, v in net.state_dict().items():
            v = v.detach().to("cpu")
            if not v.is_floating_point():  # BatchNorm's batch counter: the last epoch's
                self.mean[k] = v.clone()
            elif k not in self.mean:
                self.mean[k] = v.float().clone()
            else:
                self.mean[k] += (v.float() - self.mean[k]) / self.count

    def network(self, like: torch.nn.Module) -> torch.nn.Module:
        """A copy of `like` that carries the mean weights (on `like`'s device, in eval mode)."""
        net = copy.deepcopy(like)
        state = net.state_dict()
        net.load_state_dict({k: self.mean[k].to(state[k].dtype) for k in state})
        return net.eval()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / MEAN_FILE) as tmp:
            tensors = {k: v.contiguous() for k, v in self.mean.items()}
            save_file(tensors, str(tmp), metadata={"epochs": json.dumps(self.epochs)})

    @classmethod
    def load(cls, folder: Path) -> WeightMean:
        """The mean saved in `folder`, or an empty one when none was saved there."""
        mean = cls()
        path = folder / MEAN_FILE
        if path.exists():
            with safe_open(str(path), "pt") as f:
                mean.epochs = json.loads(f.metadata()["epochs"])
                mean.mean = {k: f.get_tensor(k) for k in f.keys()}
        return mean
