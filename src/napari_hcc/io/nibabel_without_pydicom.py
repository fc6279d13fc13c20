"""nibabel for the whole package, imported without pydicom where it can be.

nibabel's NIfTI module imports pydicom whenever it is installed, only to show a NIfTI header's DICOM
extension (code 2) as a pydicom Dataset; pydicom pulls in requests, and together they were 0.25 s of the
1.07 s that `napari-hcc predict` spent importing (docs/benchmarks.md). napari-hcc never reads those
extensions, and nibabel documents its fallback without pydicom: the extension stays the raw bytes it read,
and those bytes are written back unchanged. So nibabel is imported here with pydicom hidden, which is the
same as running it where pydicom is not installed. Where pydicom is already loaded (the DICOM importer
ran first), nibabel simply gets it.

Every module of the package takes nibabel from here (an import-linter contract in pyproject.toml holds
it), so the first import, whichever path makes it, is this one. `nib.processing` (resampling, which
needs scipy.ndimage) is loaded with it.
"""

from __future__ import annotations

import sys

_hide_pydicom = "nibabel" not in sys.modules and "pydicom" not in sys.modules
if _hide_pydicom:
    sys.modules["pydicom"] = None  # type: ignore[assignment]  # `import pydicom` raises ImportError
try:
    import nibabel as nib
    import nibabel.processing  # noqa: F401 - loaded for nib.processing
finally:
    if _hide_pydicom:
        del sys.modules["pydicom"]

__all__ = ["nib"]
