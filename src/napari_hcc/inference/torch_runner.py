"""The torch backend: the network itself on a CPU, a CUDA GPU or Apple MPS. numpy in, numpy out, as
the exported-graph backends (`graph_runner.py`), so the engine treats both alike.

GPU: mixed precision (bf16 where supported, else fp16), channels-last. CPU: channels-last, fp32, or
bf16 when the processor has native bf16. BatchNorm is folded into the convolutions. The engine imports
this module only when torch runs the network: a scan read by an exported graph never loads torch.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.devices import autocast, choose_precision, describe_device, resolve_device
from napari_hcc.model.graph import liver_channel
from napari_hcc.model.loading import LoadedModel
from napari_hcc.model.network import fold_batchnorm


def torch_device(spec):
    """A torch.device for a device name ('auto', 'cuda:1'), a `compute.Device` or a torch.device."""
    if spec is None or isinstance(spec, str):
        return resolve_device(spec)
    return torch.device(str(spec))


class TorchRunner:
    """The network placed on a device, ready for batches of slices."""

    def __init__(self, model: LoadedModel, device, precision: str = "auto"):
        self.model = model
        self.device = torch_device(device)
        self.precision = choose_precision(self.device, precision)
        net = build_network(model)
        fold_batchnorm(net)
        self.net = net.to(device=self.device, memory_format=torch.channels_last).eval()
        self.liver = liver_channel(model.card)

    def describe(self) -> str:
        return describe_device(self.device)

    def forward(self, x):
        """One batch through the network: (mask logits, arm logits, biomarker logits[, anatomy logits])
        as float32."""
        with torch.inference_mode(), autocast(self.device, self.precision):
            outputs = self.net(x)
        return tuple(o.float() for o in outputs)

    def passes(self, batch: np.ndarray, flips) -> list[np.ndarray]:
        """A batch through every TTA flip (each undone on the maps): [tumor probabilities (F, N, H, W),
        arm probabilities (F, N, arms), biomarkers (F, N, 2)] and, for a network with an anatomy head,
        liver probabilities (F, N, H, W), as float32 arrays."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        masks, arms, bios, livers = [], [], [], []
        for flip in flips:
            m, a, b, *organs = self.forward(torch.flip(x, flip) if flip else x)
            masks.append(torch.sigmoid(torch.flip(m, flip) if flip else m)[:, 0])
            arms.append(torch.softmax(a, dim=1))
            bios.append(torch.sigmoid(b))
            if organs and self.liver is not None:
                liver = torch.softmax(organs[0], dim=1)[:, self.liver]
                livers.append(torch.flip(liver, flip) if flip else liver)  # flips count from the end: (H, W)
        return [torch.stack(v).float().cpu().numpy() for v in (masks, arms, bios, livers) if v]

    def release_memory(self) -> None:
        """Give cached GPU memory back after an out-of-memory error."""
        if self.device.type == "cuda":
            with contextlib.suppress(Exception):
                torch.cuda.empty_cache()

    def on_cpu(self, requested_precision: str) -> TorchRunner:
        """The same network rebuilt on the CPU (fp32, or bf16 if it was asked for and can run)."""
        self.net = None
        self.release_memory()
        keep = requested_precision if requested_precision in ("fp32", "bf16") else "auto"
        return TorchRunner(self.model, "cpu", keep)
