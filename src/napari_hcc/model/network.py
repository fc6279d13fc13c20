"""The multi-task network: U-Net++ with an EfficientNet-B0 encoder (segmentation-models-pytorch).

Three outputs from one forward pass over a batch of axial slices, channels [T1w, T2w, CE]:

* `mask`: tumor logits, one per pixel (the U-Net++ segmentation head);
* `arm`: 4 logits for Control, Sorafenib, NK, Combination: smp's classification head (dropout,
  linear) on the deepest encoder features, the study's treatment-response target. The features are
  pooled with weights = the predicted tumor fraction of each cell (the paper pooled the whole slice,
  where liver, gut and muscle drown a small tumor); a tumor-free slice falls back to the plain average;
* `anatomy` (models that have the head, `architecture["anatomy"]`): logits of the anatomy classes
  (liver, tumor, kidney, gut, ...) per pixel, a 3 x 3 convolution on the decoder's last map beside the
  tumor head. Training it on the simulator's tissue maps teaches the decoder what every pixel is, not only
  whether it is tumor; inference keeps the tumors that lie in or on the liver (inference/liver_gate.py).
* `biomarkers`: 2 logits, viable (H&E) and apoptotic (TUNEL) fraction of the tumor. Histology is a
  property of the tumor, not of the slice, so this head pools the decoder's last feature map
  *inside the predicted tumor* (weights = the tumor probability, held out of the gradient so the
  biomarker loss cannot bend the mask) and joins that to the pooled deepest encoder features. A
  sigmoid maps the logits to fractions in (0, 1), so no estimate can leave the valid range.

Every head returns logits: losses use the logits (cross-entropy, BCE-with-logits) and inference
applies softmax / sigmoid.
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from napari_hcc.errors import InputError
from napari_hcc.model.card import DEFAULT_ARCHITECTURE

#: typical H&E viable and TUNEL apoptotic fractions, the biomarker head's starting point
TYPICAL_FRACTIONS = (0.6, 0.04)


class BiomarkerHead(nn.Module):
    """Tumor-weighted pooling of decoder features + pooled deep encoder features -> 2 logits."""

    def __init__(self, decoder_features: int, encoder_features: int, hidden: int, outputs: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(decoder_features + encoder_features, hidden), nn.SiLU(), nn.Linear(hidden, outputs)
        )
        if outputs == len(TYPICAL_FRACTIONS):  # start at typical values, not at 0.5 (apoptosis is ~0.04)
            with torch.no_grad():
                self.mlp[-1].bias.copy_(torch.logit(torch.tensor(TYPICAL_FRACTIONS)))

    def forward(self, decoder_map: torch.Tensor, deep: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
        weight = torch.sigmoid(mask_logits.detach().float()).to(decoder_map.dtype)
        inside = (decoder_map * weight).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + 1.0)
        return self.mlp(torch.cat([inside, deep.mean(dim=(2, 3))], dim=1))


class HCCNet(nn.Module):
    """U-Net++ / EfficientNet-B0 with an arm head and a histology-biomarker head."""

    def __init__(self, architecture: dict | None = None):
        super().__init__()

        arch = {**DEFAULT_ARCHITECTURE, **(architecture or {})}
        if arch["family"] != "UnetPlusPlus":
            raise ValueError(f"architecture family {arch['family']!r} is not supported (only UnetPlusPlus).")
        self.architecture = arch
        self.net = smp.UnetPlusPlus(
            encoder_name=arch["encoder"],
            encoder_depth=int(arch["encoder_depth"]),
            encoder_weights=None,  # never downloaded: see load_encoder_weights for a local file
            decoder_channels=list(arch["decoder_channels"]),
            in_channels=int(arch["in_channels"]),
            classes=int(arch["classes"]),
            aux_params={"classes": int(arch["arm_classes"]), "dropout": float(arch["arm_dropout"])},
        )
        for unused in ("_conv_head", "_bn1", "_fc"):  # classifier parts of EfficientNet the encoder never runs
            if hasattr(self.net.encoder, unused):
                delattr(self.net.encoder, unused)
        self.biomarkers = BiomarkerHead(
            int(arch["decoder_channels"][-1]),
            int(self.net.encoder.out_channels[-1]),
            int(arch["biomarker_hidden"]),
            int(arch["biomarkers"]),
        )
        if arch.get("anatomy"):
            add_anatomy_head(self, arch["anatomy"])

    @property
    def has_anatomy(self) -> bool:
        return bool(self.architecture.get("anatomy"))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(mask, arm, biomarkers) logits, and the anatomy logits last where the network has that head."""
        features = self.net.encoder(x)
        decoded = self.net.decoder(features)
        mask = self.net.segmentation_head(decoded)
        deep = features[-1]
        if self.architecture["arm_pooling"] == "tumor":
            # fraction of each deep cell that is tumor; a small floor makes a tumor-free slice a plain average
            weight = F.adaptive_avg_pool2d(torch.sigmoid(mask.detach().float()), deep.shape[-2:]).to(deep.dtype) + 1e-3
            pooled = (deep * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3))
            head = self.net.classification_head  # smp's head after its own pooling: dropout, linear, activation
            arm = head[4](head[3](head[2](pooled)))
        else:
            arm = self.net.classification_head(deep)
        biomarkers = self.biomarkers(decoded, deep, mask)
        if self.has_anatomy:
            return mask, arm, biomarkers, self.anatomy_head(decoded)
        return mask, arm, biomarkers


def add_anatomy_head(net: HCCNet, classes) -> HCCNet:
    """Give a network an anatomy head for `classes` (fresh weights; the rest of the network is kept), so a
    model trained without one can learn it (`train --init OLD --anatomy`)."""
    channels = int(net.architecture["decoder_channels"][-1])
    net.architecture = {**net.architecture, "anatomy": list(classes)}
    net.anatomy_head = nn.Conv2d(channels, len(classes), kernel_size=3, padding=1)
    return net


def drop_anatomy_head(net: HCCNet) -> HCCNet:
    """The network without its anatomy head (`train --init MODEL --no-anatomy`)."""
    if hasattr(net, "anatomy_head"):
        del net.anatomy_head
    net.architecture = {**net.architecture, "anatomy": []}
    return net


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly consumes a Conv2d's output into that convolution.

    Inference only (eval mode). The pairs are found by running a tiny input and checking that the
    tensor a BatchNorm receives *is* the tensor a convolution produced, so the rule holds for any
    encoder. Returns the number of folded pairs. About 10 % faster on a CPU.
    """

    produced: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    modules = dict(model.named_modules())
    hooks = []
    for name, module in modules.items():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: produced.__setitem__(id(o), name)))
        elif isinstance(module, nn.BatchNorm2d):
            hooks.append(
                module.register_forward_pre_hook(
                    lambda m, i, name=name: pairs.append((produced[id(i[0])], name)) if id(i[0]) in produced else None
                )
            )
    was_training = model.training
    model.eval()
    try:
        size = 2 ** (int(getattr(model, "architecture", {}).get("encoder_depth", 5)) + 1)
        with torch.no_grad():
            model(torch.zeros(1, int(getattr(model, "architecture", {}).get("in_channels", 3)), size, size))
    finally:
        for h in hooks:
            h.remove()
    consumers: dict[str, int] = {}
    for conv, _ in pairs:
        consumers[conv] = consumers.get(conv, 0) + 1
    folded = 0
    for conv_name, bn_name in pairs:
        if consumers[conv_name] != 1:
            continue
        fused = fuse_conv_bn_eval(modules[conv_name], modules[bn_name])
        _replace(model, conv_name, fused)
        _replace(model, bn_name, nn.Identity())
        folded += 1
    model.train(was_training)
    return folded


def _replace(model: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def load_encoder_weights(model: HCCNet, path: str | Path) -> int:
    """Load a local encoder weight file (e.g. ImageNet EfficientNet-B0) into the encoder.

    Accepts .safetensors, or a .pth/.pt state dict read with `weights_only=True` (no code runs).
    Keys may carry an `encoder.` prefix. Returns the number of tensors loaded; raises InputError
    when the file does not fit the encoder.
    """

    path = Path(path)
    if not path.is_file():
        raise InputError(f"encoder weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same sentence
        raise InputError(f"encoder weight file {path} could not be read ({type(exc).__name__}).") from None
    state = {k.removeprefix("encoder."): v for k, v in state.items()}
    own = model.net.encoder.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if len(usable) < 0.9 * len(own):
        raise InputError(
            f"encoder weight file {path} does not fit a {model.architecture['encoder']} encoder "
            f"({len(usable)} of {len(own)} tensors match)."
        )
    model.net.encoder.load_state_dict(usable, strict=False)
    return len(usable)
