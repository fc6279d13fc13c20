"""MRI artifacts, each modelled where it arises: in k-space (ghosting, truncation, partial Fourier, flow)
or in the image (coil sensitivity, chemical shift of fat along the readout).

All functions work slice by slice on a complex or real 3-D volume whose in-plane axes are 0 and 1 and
whose slice axis is 2 (the simulator's stored grid), with the phase-encoding axis given (0 or 1; the
readout is the other). Each takes its strength as a number, and a strength of zero returns the input
unchanged, so a protocol switches an artifact off by drawing zero. Nothing here draws random numbers
by itself: the caller passes a `numpy.random.Generator`, so a cohort stays deterministic per seed.

This module is the first part of the varied world (issue 16); the `study` protocol does not use it yet.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft


def to_kspace(image: np.ndarray) -> np.ndarray:
    """Centred 2-D Fourier transform of each slice (axes 0, 1); scipy's pocketfft, single precision for
    single-precision input (ten times numpy's speed on these strided axes)."""
    return sfft.fftshift(sfft.fft2(sfft.ifftshift(image, axes=(0, 1)), axes=(0, 1)), axes=(0, 1))


def from_kspace(kspace: np.ndarray) -> np.ndarray:
    """The inverse of `to_kspace` (complex)."""
    return sfft.fftshift(sfft.ifft2(sfft.ifftshift(kspace, axes=(0, 1)), axes=(0, 1)), axes=(0, 1))


def _lines(n: int) -> np.ndarray:
    """k-space line index of each row, centred (-n/2 .. n/2-1)."""
    return np.arange(n) - n // 2


def respiratory_ghosts(
    image: np.ndarray,
    pe_axis: int,
    amplitude: float,
    breaths_per_acquisition: float,
    rng: np.random.Generator,
    motion_mm: float = 0.0,
    pixel_mm: float = 1.0,
) -> np.ndarray:
    """Breathing during phase encoding: each k-space line is acquired at another phase of the breath, so
    the signal is modulated periodically along phase encoding (amplitude, as a fraction of the signal) and
    shifted (motion_mm along phase encoding). The image gets ghosts of the body displaced along phase
    encoding by `breaths_per_acquisition` pixels (the breaths during the acquisition of all lines; modulo
    the matrix), and their multiples. Returns the magnitude."""
    if amplitude == 0 and motion_mm == 0:
        return np.abs(image) if np.iscomplexobj(image) else image
    k = to_kspace(image)
    n = image.shape[pe_axis]
    phase0 = rng.uniform(0.0, 2 * np.pi)
    # lines are acquired in order (linear encoding): line i at time i/n of the acquisition
    breath = np.sin(2 * np.pi * breaths_per_acquisition * np.arange(n) / n + phase0)
    gain = 1.0 + amplitude * breath
    shift_px = motion_mm / pixel_mm * breath
    ky = _lines(n) / n
    modulation = gain * np.exp(-2j * np.pi * ky * shift_px)
    shape = [1, 1, 1]
    shape[pe_axis] = n
    return np.abs(from_kspace(k * modulation.reshape(shape))).astype(np.float32)


def truncate(image: np.ndarray, kept_fraction: tuple[float, float]) -> np.ndarray:
    """An acquisition matrix smaller than the reconstructed one: only the central `kept_fraction` of k-space
    along axes 0 and 1 is measured, the rest zero-filled with no window. Edges ring (Gibbs) and blur."""
    if kept_fraction == (1.0, 1.0):
        return np.abs(image) if np.iscomplexobj(image) else image
    k = to_kspace(image)
    for axis, fraction in enumerate(kept_fraction):
        n = image.shape[axis]
        keep = np.abs(_lines(n)) <= fraction * n / 2
        shape = [1, 1, 1]
        shape[axis] = n
        k = k * keep.reshape(shape)
    return np.abs(from_kspace(k)).astype(np.float32)


def partial_fourier(image: np.ndarray, pe_axis: int, fraction: float) -> np.ndarray:
    """Partial Fourier along phase encoding: only `fraction` (0.5-1) of the lines measured, from one side
    past the centre, the rest zero-filled (no homodyne), as the simplest reconstructions do: the image
    blurs along phase encoding and loses some signal at fine detail."""
    if fraction >= 1.0:
        return np.abs(image) if np.iscomplexobj(image) else image
    if not 0.5 <= fraction < 1.0:
        raise ValueError(f"partial Fourier fraction must be in [0.5, 1], not {fraction}")
    k = to_kspace(image)
    n = image.shape[pe_axis]
    keep = _lines(n) >= -n // 2 + int(round((1.0 - fraction) * n))
    shape = [1, 1, 1]
    shape[pe_axis] = n
    return np.abs(from_kspace(k * keep.reshape(shape))).astype(np.float32)


def flow_ghosts(
    image: np.ndarray, vessels: np.ndarray, pe_axis: int, strength: float, rng: np.random.Generator
) -> np.ndarray:
    """Pulsatile flow: the signal of vessel voxels gets a random phase per phase-encoding line, which
    smears it into a band of ghosts along phase encoding through the vessel (`strength`: the fraction of
    the vessel signal that is smeared)."""
    if strength == 0 or not vessels.any():
        return image
    flowing = np.where(vessels, image, 0).astype(np.complex64)
    k = to_kspace(flowing)
    n = image.shape[pe_axis]
    shape = [1, 1, 1]
    shape[pe_axis] = n
    jitter = np.exp(1j * rng.normal(0.0, np.pi, size=n)).reshape(shape)
    ghost = from_kspace(k * jitter) - flowing
    return np.abs(image + strength * ghost).astype(np.float32)


def chemical_shift(image: np.ndarray, fat: np.ndarray, readout_axis: int, shift_px: float) -> np.ndarray:
    """Fat precesses about 3.4 ppm slower than water, so along the readout it is placed `shift_px` pixels
    away (field x 3.4 ppm x 42.58 MHz/T / bandwidth per pixel): a bright band on one side of fat-water
    edges and a dark one on the other. `fat` is the fat fraction (0-1) of each voxel."""
    if shift_px == 0 or not np.any(fat):
        return image
    fat_signal = image * fat
    water = image - fat_signal
    k = to_kspace(fat_signal.astype(np.complex64))
    n = image.shape[readout_axis]
    shape = [1, 1, 1]
    shape[readout_axis] = n
    moved = from_kspace(k * np.exp(-2j * np.pi * _lines(n) / n * shift_px).reshape(shape))
    return np.abs(water + moved).astype(np.float32)


def chemical_shift_pixels(field_t: float, bandwidth_hz_per_pixel: float) -> float:
    """The fat-water displacement along the readout, in pixels: 3.4 ppm of the proton frequency."""
    return 3.4e-6 * 42.577478e6 * field_t / bandwidth_hz_per_pixel


#: the grid edge a loop lies on, as (axis, at the high end): an in-plane axis, or the slice axis (a loop under
#: a coronal slab lies behind its first or last slice, so the fall-off runs through the slices)
COIL_SIDES = {"axis0-": (0, False), "axis0+": (0, True), "axis1-": (1, False), "axis1+": (1, True),
              "axis2-": (2, False), "axis2+": (2, True)}  # fmt: skip
#: the sides of the animal a loop can lie on
ANIMAL_SIDES = ("right", "left", "dorsal", "ventral")
#: where a loop on each side of the animal lies on a grid of each plane (grids.PLANE_AXES)
ANATOMICAL_COIL_SIDES = {
    plane: dict(zip(ANIMAL_SIDES, edges))
    for plane, edges in {
        "axial": ("axis0-", "axis0+", "axis1-", "axis1+"),
        "coronal": ("axis0-", "axis0+", "axis2-", "axis2+"),
        "sagittal": ("axis2+", "axis2-", "axis0-", "axis0+"),
    }.items()
}


def surface_coil(shape: tuple[int, int, int], side: str, radius_fraction: float) -> np.ndarray:
    """Receive sensitivity of a loop coil lying on one edge of the grid (`COIL_SIDES`), falling off with
    depth as a loop's field on its axis, 1 / (1 + (d / r)^2)^(3/2), with the loop's radius r a fraction of
    the grid's extent along that axis (the field of view, or the slab for the slice axis). Normalised to
    mean 1 (the receiver gain takes the rest)."""
    axis, high = COIL_SIDES[side]
    n = shape[axis]
    depth = np.arange(n, dtype=np.float64)[::-1] if high else np.arange(n, dtype=np.float64)
    profile = 1.0 / (1.0 + (depth / (radius_fraction * n)) ** 2) ** 1.5
    view = [1, 1, 1]
    view[axis] = n
    sens = np.broadcast_to(profile.reshape(view), shape)
    return (sens / sens.mean()).astype(np.float32)
