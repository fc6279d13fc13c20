"""One acquired image series as a scanner wrote it, before any role is given to it.

Both scanner readers (`io/dicom.py`, `io/bruker.py`) describe what they find as `Acquisition`s: who and
when (animal, study date), what (series description, pulse sequence, timing, in BIDS sidecar names), and
whether it can be a 3-D image of the abdomen at all (`left_out` says why not: a tri-planar localiser,
one of several echoes, a parameter map, diffusion, ...). The pixels are read only when `read()` is
called. Geometry follows NIfTI: RAS+ millimetres, voxel centres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_hcc.io.orientation import axcodes, spacing

#: The plane of a slice stack, from the voxel axis nearest each world axis (RAS).
_PLANES = {0: "sagittal", 1: "coronal", 2: "axial"}


def plane_of(affine: np.ndarray) -> str:
    """'axial', 'coronal' or 'sagittal': the anatomical plane of the slices (the third voxel axis)."""
    normal = np.asarray(affine)[:3, 2]
    return _PLANES[int(np.argmax(np.abs(normal)))]


@dataclass
class Acquisition:
    """One image series (a DICOM series, or one slice package of a ParaVision scan)."""

    source: str  # "dicom", "bruker" or "nifti"
    name: str  # how the user knows it: "series 2 'T2 FSE Axial'", "scan 3 'T2_TurboRARE' package 2"
    description: str  # series description / protocol name: what role patterns match
    subject: str  # animal ID as recorded (not yet a BIDS label)
    study_date: str  # YYYYMMDD
    shape: tuple[int, ...]
    affine: np.ndarray  # RAS+ voxel centres
    sidecar: dict = field(default_factory=dict)  # BIDS sidecar fields read from the headers
    left_out: str | None = None  # why it is no image to import, or None
    files: tuple[Path, ...] = ()  # source files (DICOM instances, or the scan's 2dseq)
    reader: Callable[[], np.ndarray] | None = None
    acquired_plane: str | None = None  # the plane as acquired, where the stored grid was reoriented

    @property
    def orientation(self) -> str:
        return axcodes(self.affine)

    @property
    def plane(self) -> str:
        return self.acquired_plane or plane_of(self.affine)

    @property
    def voxel_mm(self) -> tuple[float, float, float]:
        return spacing(self.affine)

    def read(self) -> np.ndarray:
        """The voxels as a float32 array of `shape` (scaled to the stored physical values)."""
        if self.reader is None:
            raise RuntimeError(f"{self.name} has no pixel data to read.")
        data = np.asarray(self.reader(), dtype=np.float32)
        if data.shape != tuple(self.shape):
            raise RuntimeError(f"{self.name}: read {data.shape}, expected {self.shape}.")
        return data

    def geometry_fields(self) -> dict:
        """Sidecar fields that describe the grid (added to what the headers say)."""
        return {
            "AcquisitionMatrixShape": [int(n) for n in self.shape],
            "VoxelSizeMm": [round(v, 6) for v in self.voxel_mm],
            "ImageOrientation": self.orientation,
            "SlicePlane": self.plane,
        }
