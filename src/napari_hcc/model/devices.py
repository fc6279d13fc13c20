"""Compute devices: parse and validate the user's choice, describe what is there, pick a precision.

`auto` picks CUDA, then Apple MPS, then the CPU. Explicit `cpu`, `cuda`, `cuda:N` and `mps` are
checked here, so a wrong choice ends in one sentence instead of a CUDA error deep inside torch.
"""

from __future__ import annotations

import contextlib
import re
from functools import lru_cache

import torch

from napari_hcc.errors import InputError
from napari_hcc.vocabulary import PRECISIONS, Precision

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


@lru_cache(maxsize=1)
def cpu_native_bf16() -> bool:
    """True when the processor computes bfloat16 natively (AVX512-BF16 or AMX on x86, BF16 on Arm)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = set()
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def choose_precision(device, requested: Precision = "auto") -> Precision:
    """fp32, bf16 or fp16 for this device. auto: mixed precision on a GPU, bf16 on a CPU with native
    bf16, otherwise fp32."""

    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision '{requested}'; choose {', '.join(PRECISIONS)}.")
    if requested != "auto":
        if device.type == "cpu" and requested == "fp16":
            raise InputError("fp16 is not supported on the CPU; use fp32 or bf16.")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if cpu_native_bf16() else "fp32"


def autocast_dtype(precision: str):

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def autocast(device, precision: str):
    """Mixed precision for bf16/fp16 on this device; a no-op context for fp32."""

    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA/MPS/CPU allocation failure (as opposed to any other runtime error)."""

    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def describe_device(device) -> str:
    """e.g. 'cuda:0 (NVIDIA H200, 139 GiB)' or 'cpu (2 threads, native bf16)'."""

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda:{device.index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple Metal)"
    return f"cpu ({torch.get_num_threads()} threads{', native bf16' if cpu_native_bf16() else ''})"


def available_devices() -> list[str]:
    """One line for each device this machine can run the model on, best first."""

    lines = []
    if torch.cuda.is_available():
        lines += [describe_device(torch.device("cuda", i)) for i in range(torch.cuda.device_count())]
    if _mps_available():
        lines.append(describe_device(torch.device("mps")))
    lines.append(describe_device(torch.device("cpu")))
    return lines
