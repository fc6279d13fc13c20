"""Tumor size in millimetres: the longest axial diameter (RECIST) and the volume, on grids a user's
scanner writes (anisotropic, oblique, slices along any array axis)."""

import numpy as np
import pytest

from napari_hcc.inference.measure import longest_axial_diameter_mm, volume_mm3


def _rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    out = np.eye(4)
    out[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return out


@pytest.mark.parametrize("degrees", [0.0, 30.0])
def test_the_longest_diameter_is_the_rectangles_diagonal_in_mm(degrees):
    # arrays are (x, y, z) with 1 mm slices along z: a 10 x 4 voxel block on 0.25 x 0.5 mm pixels
    affine = _rotation(degrees) @ np.diag([0.25, 0.5, 1.0, 1.0])
    mask = np.zeros((20, 12, 5), bool)
    mask[3:13, 4:8, 2] = True
    mask[5:7, 5:7, 3] = True  # a smaller piece on the next slice does not win
    assert longest_axial_diameter_mm(mask, affine) == pytest.approx(np.hypot(9 * 0.25, 3 * 0.5))
    assert volume_mm3(mask, affine) == pytest.approx((40 + 4) * 0.25 * 0.5 * 1.0)


def test_a_ring_a_line_and_a_single_voxel():
    affine = np.diag([0.2, 0.2, 1.0, 1.0])
    x, y = np.mgrid[:41, :41]
    r = np.hypot(x - 20, y - 20)
    mask = np.zeros((41, 41, 3), bool)
    mask[..., 0] = (r <= 15) & (r > 12)  # hollow: the diameter spans the hole
    assert longest_axial_diameter_mm(mask, affine) == pytest.approx(30 * 0.2)
    line = np.zeros_like(mask)
    line[5, 3:11, 1] = True  # collinear voxels
    assert longest_axial_diameter_mm(line, affine) == pytest.approx(7 * 0.2)
    dot = np.zeros_like(mask)
    dot[5, 5, 2] = True
    assert longest_axial_diameter_mm(dot, affine) == 0.0


def test_slices_along_the_first_array_axis():
    # a coronal-style file whose slice axis is the first array axis (2 mm), in-plane 0.3 mm
    affine = np.array([[0, 0, 0.3, 0], [0, 0.3, 0, 0], [2.0, 0, 0, 0], [0, 0, 0, 1]])
    mask = np.zeros((4, 30, 30), bool)
    mask[1, 2:12, 5:25] = True
    assert longest_axial_diameter_mm(mask, affine) == pytest.approx(np.hypot(9 * 0.3, 19 * 0.3))
