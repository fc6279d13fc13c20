"""NIfTI arrays and affines (RAS+, voxel centres) to SimpleITK images (LPS) and back, without moving a voxel."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

#: RAS+ <-> LPS (ITK's world): x and y change sign
FLIP = np.diag([-1.0, -1.0, 1.0])


def to_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A float32 SimpleITK image on exactly the grid of (data, affine)."""
    a = np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    direction = FLIP @ (a[:3, :3] / spacing)
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(data, (2, 1, 0)), dtype=np.float32))
    image.SetSpacing([float(v) for v in spacing])
    image.SetOrigin([float(v) for v in FLIP @ a[:3, 3]])
    image.SetDirection([float(v) for v in direction.ravel()])
    return image


def from_sitk(image: sitk.Image) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)))


def transform_matrix_ras(transform: sitk.Transform) -> np.ndarray:
    """The 4x4 RAS+ matrix of an affine-like ITK transform: a point of the fixed world -> the moving world."""
    t = sitk.AffineTransform(3)
    if isinstance(transform, sitk.CompositeTransform):
        transform = transform.GetNthTransform(0)
    t.SetMatrix(transform.GetMatrix())
    t.SetTranslation(transform.GetTranslation())
    t.SetCenter(transform.GetCenter())
    m = np.asarray(t.GetMatrix(), dtype=float).reshape(3, 3)
    c = np.asarray(t.GetCenter(), dtype=float)
    offset = np.asarray(t.GetTranslation(), dtype=float) + c - m @ c
    lps = np.eye(4)
    lps[:3, :3] = m
    lps[:3, 3] = offset
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip
