"""Acquire one sequence from the painted scene: the rat's motion since the reference sequence, the
partial-volume sampling onto the sequence's own grid, the artifacts its protocol switches on (each where
it arises), the receive coil, Rician noise and the receiver's scaling.

Order, as on a scanner: the object (moved) is sampled by the acquisition grid; fat is displaced along the
readout; flowing blood and breathing modulate the phase-encoding lines; k-space is truncated and partial
Fourier drops lines; the coil weights the image; noise is added to the complex signal; the receiver scales
it to integers. Noise is added after the k-space filters, so it stays white (a simplification: on a
scanner it is filtered too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_hcc.simulate import artifacts, mri
from napari_hcc.simulate.grids import Operator, SequenceGrid
from napari_hcc.simulate.protocol import SequenceProtocol


@dataclass
class Acquired:
    image: np.ndarray  # int16
    record: dict  # what was acquired and drawn, for the truth sidecar


def breaths_per_acquisition(seq: SequenceProtocol, phase_lines: int) -> float:
    """Breaths while all phase-encoding lines are acquired (the ghosts' spacing, in pixels)."""
    if seq.family == "RARE":
        seconds = seq.repetition_time_s * phase_lines / max(seq.echo_train_length, 1)
    elif seq.family == "FLASH":
        seconds = seq.repetition_time_s * phase_lines
    else:  # bSSFP, acquired 3-D: every slice's lines
        seconds = seq.repetition_time_s * phase_lines * seq.slices
    return seconds * seq.breaths_per_minute / 60.0


def coil_sensitivity(seq: SequenceProtocol, shape, bias_coef: np.ndarray) -> np.ndarray:
    """The receive coil: a smooth log-polynomial bias (volume coil), times a loop's fall-off for a surface coil."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = [x, y, z, x * y, x * x - 1 / 3, y * y - 1 / 3, 0.5 * z * z]
    log_b = sum((seq.bias / 2.0) * c * t for c, t in zip(bias_coef, terms))
    sens = np.broadcast_to(np.exp(log_b).astype(np.float32), shape)
    if seq.coil == "surface":
        sens = sens * artifacts.surface_coil(shape, seq.coil_side, seq.coil_radius)
    return sens


def acquire(
    fine: np.ndarray,
    op: Operator,
    grid: SequenceGrid,
    seq: SequenceProtocol,
    field_t: float,
    liver_signal: float,
    bias_coef: np.ndarray,
    rng: np.random.Generator,
    fat: np.ndarray | None = None,
    vessels: np.ndarray | None = None,
) -> Acquired:
    """One sequence's image from the scene's signal map `fine` (already moved). `fat` and `vessels` are
    the scene's fat and flowing-blood indicators, read only if the protocol draws chemical shift or flow."""
    signal = op.apply(fine)
    pe = 0 if seq.phase_encoding == "i" else 1
    record = {"grid": {"shape": list(grid.shape), "spacing_mm": list(grid.spacing), "plane": seq.plane}}
    if seq.bandwidth_hz_per_pixel > 0 and fat is not None:
        shift_px = artifacts.chemical_shift_pixels(field_t, seq.bandwidth_hz_per_pixel)
        signal = artifacts.chemical_shift(signal, np.clip(op.apply(fat), 0, 1), 1 - pe, shift_px)
        record["chemical_shift_px"] = shift_px
    if seq.flow_ghosts > 0 and vessels is not None:
        signal = artifacts.flow_ghosts(signal, op.apply(vessels) > 0.3, pe, seq.flow_ghosts, rng)
        record["flow_ghosts"] = seq.flow_ghosts
    if seq.ghost_amplitude > 0 or seq.ghost_motion_mm > 0:
        breaths = breaths_per_acquisition(seq, grid.shape[pe])
        signal = artifacts.respiratory_ghosts(
            signal, pe, seq.ghost_amplitude, breaths, rng, seq.ghost_motion_mm, grid.spacing[pe]
        )
        record["respiratory_ghosts"] = {"amplitude": seq.ghost_amplitude, "breaths_per_acquisition": breaths}
    if seq.kspace_fraction < 1.0:
        signal = artifacts.truncate(signal, (seq.kspace_fraction, seq.kspace_fraction))
        record["kspace_fraction"] = seq.kspace_fraction
    if seq.partial_fourier < 1.0:
        signal = artifacts.partial_fourier(signal, pe, seq.partial_fourier)
        record["partial_fourier"] = seq.partial_fourier
    signal = signal * coil_sensitivity(seq, grid.shape, bias_coef)
    snr = seq.snr * float(np.exp(rng.normal(0.0, 0.1)))
    sigma = liver_signal / snr
    noisy = mri.rician(signal, sigma, rng)
    gain = float(4000.0 * np.exp(rng.normal(0.0, 0.3)))  # receiver gain and reconstruction scaling
    image = np.clip(np.rint(noisy * gain), 0, 32767).astype(np.int16)
    record |= {"noise_sigma": sigma * gain, "receiver_scale": gain, "snr_liver": snr, "coil": seq.coil}
    return Acquired(image, record)
