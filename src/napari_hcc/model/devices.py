"""Compute devices as torch sees them: parse and validate the user's choice, describe what is there,
pick a precision. What can be known without torch (the CPU, its threads and bf16) is in `compute.py`.

`auto` picks CUDA, then Apple MPS, then the CPU. Explicit `cpu`, `cuda`, `cuda:N` and `mps` are
checked here, so a wrong choice ends in one sentence instead of a CUDA error deep inside torch.
"""

from __future__ import annotations

import contextlib
import re

import torch

from napari_hcc.errors import InputError
from napari_hcc.model.compute import check_precision, cpu_precision, describe_cpu
from napari_hcc.vocabulary import Precision

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str | None = "auto"):
    """The torch.device for 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', or an InputError saying why not."""

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise InputError(
                "device 'mps' was asked for, but Apple Metal (MPS) is not available on this machine; use --device cpu or auto."
            )
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if match:
        if not torch.cuda.is_available():
            raise InputError(
                f"device '{spec}' was asked for, but this machine has no usable CUDA GPU; use --device cpu or auto."
            )
        index = int(match.group(1) or torch.cuda.current_device())
        count = torch.cuda.device_count()
        if index >= count:
            raise InputError(
                f"device '{spec}' does not exist: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}."
            )
        return torch.device("cuda", index)
    raise InputError(f"unknown device '{spec}'; choose {DEVICE_CHOICES}.")


def _mps_available() -> bool:

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_precision(device, requested: Precision = "auto") -> Precision:
    """fp32, bf16 or fp16 for this device. auto: mixed precision on a GPU, bf16 on a CPU with native
    bf16, otherwise fp32."""

    if device.type == "cpu":
        return cpu_precision(requested)
    requested = check_precision(requested)
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "fp32"  # a device resolve_device never gives: no mixed precision it has not been measured with


def autocast_dtype(precision: str):

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device, precision: str):
    """Mixed precision for bf16/fp16 on this device; a no-op context for fp32."""

    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def describe_device(device) -> str:
    """e.g. 'cuda:0 (NVIDIA H200, 139 GiB)' or 'cpu (2 threads, native bf16)'."""

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda:{device.index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple Metal)"
    return describe_cpu(torch.get_num_threads())


def available_devices() -> list[str]:
    """One line for each device this machine can run the model on, best first."""

    lines = []
    if torch.cuda.is_available():
        lines += [describe_device(torch.device("cuda", i)) for i in range(torch.cuda.device_count())]
    if _mps_available():
        lines.append(describe_device(torch.device("mps")))
    lines.append(describe_device(torch.device("cpu")))
    return lines
