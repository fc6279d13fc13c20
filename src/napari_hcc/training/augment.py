"""MRI augmentation on whole batches of slices (torch), on the training device.

Geometric (image and mask together): random flips along both in-plane axes, rotation (+/- 10 deg),
isotropic scaling (0.9-1.1), small shifts; one `affine_grid`/`grid_sample` call per batch, bilinear for
the image and nearest for the mask. Intensity (per slice and sequence): scanner gain and offset,
gamma (on the normalised range), a smooth multiplicative bias field (coil sensitivity), Gaussian
noise; and contrast randomisation (`histogram_shift`: a random monotone piecewise-linear remapping of
the normalised range, per slice and sequence, as MONAI's RandHistogramShift does), because the
percentile normalisation already removes a scanner's gain and what differs between labs is the
contrast between tissues: measured on development scans, liver sits anywhere from 0.10 to 0.43 of the
normalised T2w range and tumor from 0.16 to 1.18, and with fat suppression or a short TE the T2w
tumor-to-liver ratio ranges from 0.7 to 4.5. Acquisition (per slice, for what the simulator draws rarely or not at all): breathing ghosts
(faint copies shifted along one in-plane axis by a fraction of the field of view), a coarser resolution
along one axis (block averaging, then linear upsampling: thick or partial-Fourier acquisitions), and
one sequence shifted by a pixel or two against the others (motion between sequences; the mask follows
the reference). All draws come from one seeded `torch.Generator`, so a run is repeatable.

Why not MONAI's dictionary transforms: they work one sample at a time on the CPU, and this machine has
two cores that the network needs; the same operations on the whole batch, on the GPU when there is
one, cost almost nothing. The operations are the textbook ones (see docs/training.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: bool = True
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05  # fraction of the field of view
    gain: float = 0.1  # multiplicative, per slice and sequence: 1 +/- gain
    offset: float = 0.05
    gamma: tuple[float, float] = (0.8, 1.25)
    bias_field: float = 0.15  # peak relative amplitude of the smooth field
    noise: float = 0.03  # standard deviation, on the normalised scale
    p_intensity: float = 0.8
    p_contrast: float = 0.5  # per slice and sequence: a random monotone remapping of [0, 1]
    contrast: float = 2.5  # each segment's slope between 1/contrast and contrast (then rescaled to end at 1)
    contrast_segments: int = 4
    p_ghost: float = 0.15  # per slice: breathing ghosts, amplitude up to `ghost`
    ghost: float = 0.25
    p_coarse: float = 0.15  # per slice: resolution 2-3x coarser along one axis
    p_misregister: float = 0.15  # per slice: one sequence shifted by 1-2 pixels
    #: per slice and sequence: a surface coil's fall-off across the slice (`surface_coil`); 0 draws nothing
    p_coil: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _uniform(gen, n, low, high, device):
    return torch.rand(n, generator=gen, device="cpu").to(device) * (high - low) + low


def augment(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, C, H, W) float, y: (B, 1, H, W) float {0,1}. Returns augmented copies."""
    cfg = cfg or AugmentConfig()
    b, c, h, w = x.shape
    dev = x.device
    angle = _uniform(gen, b, -cfg.rotate_deg, cfg.rotate_deg, dev) * math.pi / 180
    scale = _uniform(gen, b, cfg.scale[0], cfg.scale[1], dev)
    sx = torch.where(_uniform(gen, b, 0, 1, dev) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(b, device=dev)
    sy = torch.where(_uniform(gen, b, 0, 1, dev) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(b, device=dev)
    tx, ty = (_uniform(gen, b, -2 * cfg.shift, 2 * cfg.shift, dev) for _ in range(2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * sx, -sin * sy, tx], dim=1),
            torch.stack([sin * sx, cos * sy, ty], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, (b, c, h, w), align_corners=False)
    x = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    y = F.grid_sample(y, grid.to(y.dtype), mode="nearest", padding_mode="zeros", align_corners=False)

    on = (_uniform(gen, b, 0, 1, dev) < cfg.p_intensity).to(x.dtype).view(b, 1, 1, 1)
    gain = 1 + _uniform(gen, b * c, -cfg.gain, cfg.gain, dev).view(b, c, 1, 1)
    offset = _uniform(gen, b * c, -cfg.offset, cfg.offset, dev).view(b, c, 1, 1)
    gamma = torch.exp(_uniform(gen, b * c, math.log(cfg.gamma[0]), math.log(cfg.gamma[1]), dev)).view(b, c, 1, 1)
    # a smooth bias field: a random 4x4 grid of log-gains, upsampled bicubically
    coarse = (torch.rand(b, 1, 4, 4, generator=gen).to(dev) * 2 - 1) * cfg.bias_field
    field = torch.exp(F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True))
    noise = torch.randn(x.shape, generator=gen).to(dev) * cfg.noise
    positive = x.clamp(min=0)
    jittered = (positive**gamma) * gain * field + offset + (x - positive) + noise
    x = on * jittered + (1 - on) * x
    x = acquisition_artifacts(histogram_shift(x, gen, cfg), gen, cfg)
    return (surface_coil(x, gen, cfg) if cfg.p_coil > 0 else x), y


def surface_coil(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """A receive loop on one side of the slice, for a `p_coil` share of slices and sequences, each drawn
    apart: the loop's on-axis fall-off 1 / (1 + (d / r)^2)^(3/2) with the depth d from the slice's edge in a
    random direction, r from 0.3 to 0.9 of the slice's extent in that direction (the simulator's coil model,
    `simulate/artifacts.surface_coil`, in any direction). The field is 1 at the coil, so the side nearest it
    keeps its level as the percentile normalisation of a surface-coil scan gives it, and the far side fades
    (to 2-35 % at the opposite edge). Drawn apart per sequence, so that a region bright on one sequence
    alone is not learnt as tumor (docs/training.md says what it was made for and what it did)."""
    b, c, h, w = x.shape
    on = torch.rand(b, c, generator=gen) < cfg.p_coil
    angle = torch.rand(b, c, generator=gen) * 2 * math.pi
    radius = 0.3 + 0.6 * torch.rand(b, c, generator=gen)
    if not on.any():
        return x
    rows = torch.linspace(0.0, 1.0, h).view(1, 1, h, 1) * (h / max(h, w))
    cols = torch.linspace(0.0, 1.0, w).view(1, 1, 1, w) * (w / max(h, w))
    cos, sin = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    along = cos * cols + sin * rows  # position along the coil's axis
    low = along.amin(dim=(-2, -1), keepdim=True)
    extent = along.amax(dim=(-2, -1), keepdim=True) - low
    depth = (along - low) / extent
    field = (1 + (depth / radius[..., None, None]) ** 2) ** -1.5
    field = torch.where(on[..., None, None], field, torch.ones_like(field))
    return x * field.to(device=x.device, dtype=x.dtype)


def histogram_shift(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """A random monotone piecewise-linear map of [0, 1] onto itself per slice and sequence (on a
    `p_contrast` share of them): `contrast_segments` equal segments, each with a slope drawn
    log-uniformly in [1/contrast, contrast], rescaled so that 0 and 1 stay put. Values outside [0, 1]
    (below the 1st or above the 99th percentile) keep their distance from the range. The order of
    intensities, and so every edge, is kept; the contrast between tissues is not."""
    if cfg.p_contrast <= 0 or cfg.contrast <= 1:
        return x
    b, c = x.shape[:2]
    k = cfg.contrast_segments
    span = math.log(cfg.contrast)
    slopes = torch.exp((torch.rand(b, c, k, generator=gen) * 2 - 1) * span)
    slopes = slopes / slopes.mean(-1, keepdim=True)  # the map ends at 1
    off = torch.rand(b, c, generator=gen) >= cfg.p_contrast
    slopes[off] = 1.0
    slopes = slopes.to(device=x.device, dtype=x.dtype)
    starts = torch.cat([torch.zeros_like(slopes[..., :1]), torch.cumsum(slopes, -1)[..., :-1]], -1) / k
    flat = x.flatten(2)
    seg = (flat * k).floor().clamp(0, k - 1).long()
    mapped = torch.gather(starts, 2, seg) + torch.gather(slopes, 2, seg) * (flat - seg.to(x.dtype) / k)
    inside = (flat >= 0) & (flat <= 1)
    return torch.where(inside, mapped, flat).view_as(x)


def acquisition_artifacts(x: torch.Tensor, gen: torch.Generator, cfg: AugmentConfig) -> torch.Tensor:
    """Ghosts, coarse resolution and sequence misregistration, each on a random share of the slices."""
    if not (cfg.p_ghost or cfg.p_coarse or cfg.p_misregister):
        return x
    b, c, h, w = x.shape
    draws = torch.rand(b, 8, generator=gen).tolist()
    out = []
    for i in range(b):
        xi = x[i]
        r = draws[i]
        axis = 1 if r[1] < 0.5 else 2  # the phase-encoding axis of this slice
        if r[0] < cfg.p_ghost:
            n = xi.shape[axis]
            xi = xi + (0.05 + r[2] * (cfg.ghost - 0.05)) * torch.roll(xi, n // (2 + int(r[3] * 3)), dims=axis)
        if r[4] < cfg.p_coarse:
            f = 2 + int(r[5] * 2)
            kernel = (f, 1) if axis == 1 else (1, f)
            small = F.avg_pool2d(xi[None], kernel, ceil_mode=True)
            xi = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]
        if r[6] < cfg.p_misregister:
            ch = int(r[7] * c) % c
            shift = 1 + int(r[5] * 2)
            moved = torch.roll(xi[ch], shift if r[3] < 0.5 else -shift, dims=axis - 1)
            xi = torch.cat([xi[:ch], moved[None], xi[ch + 1 :]])
        out.append(xi)
    return torch.stack(out)
