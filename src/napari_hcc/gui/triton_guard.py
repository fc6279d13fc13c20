"""Keep Triton out of a napari process whose OpenGL runs on Mesa's LLVM.

Loading the model imports torchvision, which imports `torch._dynamo`, which tries `import triton`.
Triton carries its own LLVM; in a process where Mesa (llvmpipe, radeonsi) has already loaded
libLLVM for napari's canvas, Triton's import crashes the whole process (a segmentation fault, seen
under Xvfb with Mesa on Debian). The model runs in eager mode and never needs Triton, so in that
situation we make `import triton` fail cleanly, which torch handles as "Triton not installed".
"""

from __future__ import annotations

import sys
from pathlib import Path


def mesa_llvm_loaded() -> bool:
    try:
        return "libLLVM" in Path("/proc/self/maps").read_text(errors="replace")
    except OSError:  # not Linux: no /proc, and no such clash known
        return False


def keep_triton_out() -> bool:
    """Block Triton if it is not loaded yet and libLLVM is; return True when it was blocked."""
    if "triton" in sys.modules:
        return sys.modules["triton"] is None
    if not mesa_llvm_loaded():
        return False
    sys.modules["triton"] = None  # `import triton` now raises ImportError
    return True
