"""NIfTI arrays and affines (RAS+, voxel centres) to SimpleITK images (LPS) and back, without moving a voxel."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_hcc.io.orientation import LPS_TO_RAS

FLIP = LPS_TO_RAS[:3, :3]  # RAS+ <-> LPS (ITK's world)


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


def unwrap(transform: sitk.Transform) -> sitk.Transform:
    """The one transform inside what `ImageRegistrationMethod.Execute` returns (a composite, or itself)."""
    return transform.GetNthTransform(0) if isinstance(transform, sitk.CompositeTransform) else transform


def ras_point(lps) -> np.ndarray:
    return FLIP @ np.asarray(lps, dtype=float)


def transform_matrix_ras(transform: sitk.Transform) -> np.ndarray:
    """The 4x4 RAS+ matrix of a rigid or affine ITK transform: a point of the fixed world -> the moving world."""
    t = unwrap(transform)
    m = np.asarray(t.GetMatrix(), dtype=float).reshape(3, 3)
    c = np.asarray(t.GetCenter(), dtype=float)
    lps = np.eye(4)
    lps[:3, :3] = m
    lps[:3, 3] = np.asarray(t.GetTranslation(), dtype=float) + c - m @ c
    return LPS_TO_RAS @ lps @ LPS_TO_RAS
