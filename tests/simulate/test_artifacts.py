"""Each k-space or image artifact: present (measured) when drawn, absent (the input unchanged) when not."""

import numpy as np
import pytest

from napari_hcc.simulate import artifacts


def _body(n=128, radius=30, slices=2):
    """A bright disk (the body) in air, in a (n, n, slices) volume."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    disk = ((i - n / 2) ** 2 + (j - n / 2) ** 2 <= radius**2).astype(np.float32)
    return np.repeat(disk[:, :, None], slices, axis=2)


def test_respiratory_ghosts_repeat_the_body_along_phase_encoding_only():
    body = _body()
    assert artifacts.respiratory_ghosts(body, 0, 0.0, 32, np.random.default_rng(0)) is body
    ghosted = artifacts.respiratory_ghosts(body, 0, 0.3, 32, np.random.default_rng(0))
    n = body.shape[0]
    # air above and below the body (along phase encoding, axis 0) against air beside it (along the readout)
    along_pe = ghosted[:20, n // 2 - 10 : n // 2 + 10, 0].mean()
    along_ro = ghosted[n // 2 - 10 : n // 2 + 10, :20, 0].mean()
    assert along_pe > 0.02 and along_ro < 0.25 * along_pe
    # 32 breaths during the acquisition: the first ghost is the body moved 32 pixels along phase encoding,
    # so the air 1-31 pixels above the body's top edge (row 34) is bright, and the air beside it is not
    profile = ghosted[:, n // 2, 0]
    assert profile[4:30].min() > 0.05 and ghosted[n // 2, 2:30, 0].max() < 0.02
    again = artifacts.respiratory_ghosts(body, 0, 0.3, 32, np.random.default_rng(0))
    np.testing.assert_array_equal(ghosted, again)  # deterministic per seed


def test_truncation_rings_at_edges():
    body = _body()
    assert artifacts.truncate(body, (1.0, 1.0)) is body
    rung = artifacts.truncate(body, (0.5, 0.5))
    inside_edge = rung[64, 64 - 30 : 64 - 20, 0]  # just inside the disk's edge
    assert inside_edge.max() > 1.05  # Gibbs overshoot (about 9% for a step)
    assert rung[64, 22:32, 0].max() > 0.02  # ripples in the air beside it


def _edge_width(profile):
    """10-90% rise distance (pixels) of a rising edge."""
    p = (profile - profile.min()) / (profile.max() - profile.min())
    return int(np.argmax(p >= 0.9) - np.argmax(p >= 0.1))


def test_partial_fourier_blurs_along_phase_encoding():
    body = _body()
    assert artifacts.partial_fourier(body, 0, 1.0) is body
    blurred = artifacts.partial_fourier(body, 0, 0.55)
    along_pe = _edge_width(blurred[20:64, 64, 0])
    along_ro = _edge_width(blurred[64, 20:64, 0])
    assert along_pe > along_ro
    with pytest.raises(ValueError, match="partial Fourier fraction"):
        artifacts.partial_fourier(body, 0, 0.3)


def test_flow_smears_a_vessel_along_phase_encoding():
    body = _body()
    i, j = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    vessel = np.repeat((((i - 64) ** 2 + (j - 50) ** 2) <= 9)[:, :, None], 2, axis=2)
    image = body + 2.0 * vessel
    assert artifacts.flow_ghosts(image, vessel, 0, 0.0, np.random.default_rng(1)) is image
    flowed = artifacts.flow_ghosts(image, vessel, 0, 0.8, np.random.default_rng(1))
    change = np.abs(flowed - image)[:, :, 0]
    column = change[:, 47:54].mean()  # the vessel's phase-encoding column, outside the vessel too
    elsewhere = change[:, 90:110].mean()
    assert column > 5 * elsewhere and column > 0.02


def test_chemical_shift_moves_fat_along_the_readout():
    assert artifacts.chemical_shift_pixels(7.0, 300.0) == pytest.approx(3.38, abs=0.01)
    body = _body()
    fat = np.zeros_like(body)
    fat[50:60, 60:70, :] = 1.0  # a fat pad
    assert artifacts.chemical_shift(body, np.zeros_like(body), 1, 3.0) is body
    shifted = artifacts.chemical_shift(body * 2, fat, 1, 3.0)[50:60, :, 0]
    # the pad's fat lands 3 pixels along axis 1 (the readout): a dark band where it was, a bright one where
    # it now overlaps water, and nothing moves along axis 0
    np.testing.assert_allclose(shifted[:, 60:63], 0.0, atol=1e-4)
    np.testing.assert_allclose(shifted[:, 70:73], 4.0, atol=1e-4)
    np.testing.assert_allclose(shifted[:, 63:70], 2.0, atol=1e-4)


def test_surface_coil_falls_off_with_depth():
    sens = artifacts.surface_coil((64, 48, 3), "axis1-", 0.3)
    assert sens.shape == (64, 48, 3) and sens.mean() == pytest.approx(1.0, abs=1e-5)
    profile = sens[10, :, 0]
    assert np.all(np.diff(profile) < 0) and profile[0] / profile[-1] > 10
    flipped = artifacts.surface_coil((64, 48, 3), "axis1+", 0.3)
    np.testing.assert_allclose(flipped[10, ::-1, 0], profile, rtol=1e-6)
