"""What a machine computes with, known without importing torch: the CPU, its threads and bf16, and
whether a GPU may be there at all.

A scan read on the CPU by an exported graph (OpenVINO, ONNX Runtime) never needs torch, so the
engine asks here first: `cpu_without_torch("auto")` is the CPU when no GPU can be present (no NVIDIA
driver, not an Apple-silicon Mac) and None when torch has to look (`devices.py`, which imports it).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.vocabulary import PRECISIONS, Precision


@dataclass(frozen=True)
class Device:
    """A compute device named as torch names it ('cpu', 'cuda:0'), for code that runs without torch."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = Device("cpu")


def gpu_may_be_present() -> bool:
    """False when this machine certainly has no GPU torch could use: no NVIDIA driver loaded (Linux,
    Windows) and not an Apple-silicon Mac (MPS)."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        return gpus.is_dir() and any(gpus.iterdir())
    return True  # elsewhere torch has to look


def cpu_without_torch(spec: str | None) -> Device | None:
    """The CPU for device 'cpu', or for 'auto' on a machine without a GPU; None when torch must decide."""
    spec = (spec or "auto").strip().lower()
    if spec == "cpu" or (spec == "auto" and not gpu_may_be_present()):
        return CPU
    return None


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


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among these logical CPUs (Linux); their count otherwise."""
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:
            return len(cpus)
    return len(cores) or len(cpus)


def cpu_threads() -> int:
    """The threads the network runs on, as torch counts them: torch's own setting when torch is loaded
    (`torch.set_num_threads`), else OMP_NUM_THREADS, else the physical cores this process may use."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return int(torch.get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1
    return _physical_cores(cpus)


def describe_cpu(threads: int) -> str:
    """e.g. 'cpu (2 threads, native bf16)'."""
    return f"cpu ({threads} threads{', native bf16' if cpu_native_bf16() else ''})"


def check_precision(requested: str | None) -> str:
    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise InputError(f"unknown precision '{requested}'; choose {', '.join(PRECISIONS)}.")
    return requested


def cpu_precision(requested: Precision | None = "auto") -> Precision:
    """fp32 or bf16 on the CPU. auto: bf16 where the processor computes it natively, else fp32."""
    requested = check_precision(requested)
    if requested == "fp16":
        raise InputError("fp16 is not supported on the CPU; use fp32 or bf16.")
    if requested == "auto":
        return "bf16" if cpu_native_bf16() else "fp32"
    return requested


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA/MPS/CPU allocation failure (as opposed to any other runtime error), told by its type
    (torch.OutOfMemoryError, MemoryError) or its message."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
