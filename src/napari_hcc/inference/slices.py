"""From a scan to the model's input slices and back, exactly.

1. Reorient to the display frame (S, P, L): the slice axis comes from the affine, and only flips and
   axis swaps are used, so the way back is exact.
2. Normalise each sequence over the whole scan with robust percentiles: a scanner gain (or offset)
   changes nothing. A sequence the session lacks is, for a model trained with sequence dropout (card
   `input.missing_sequences == "zero"`), a channel of zeros, as in training; older models read the
   stand-in the scan carries.
3. Bring each slice to the model card's pixel spacing (bilinear, antialiased when shrinking: Pillow's
   BILINEAR, which torch's `interpolate(antialias=True)` reproduces to 1e-5; skipped within the card's
   tolerance), and pad it to a multiple of 32.

`SliceGeometry.to_source` undoes 3 and 1 for a per-pixel map (logits or probabilities), so the result
lands on exactly the input's voxel grid. Training uses the same functions, so both see one frame.
No torch here: the exported-graph backends read a scan without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from napari_hcc.io.orientation import from_display, slice_axis, to_display
from napari_hcc.vocabulary import SEQUENCE_ROLES


@dataclass
class SliceGeometry:
    source_shape: tuple[int, int, int]
    source_affine: np.ndarray
    display_shape: tuple[int, int, int]  # (slices, rows, cols) before resampling
    display_spacing: tuple[float, float, float]
    model_size: tuple[int, int]  # rows, cols after resampling, before padding
    padded_size: tuple[int, int]
    pad: tuple[int, int, int, int]  # top, bottom, left, right
    notes: list[str] = field(default_factory=list)

    @property
    def resampled(self) -> bool:
        return self.model_size != self.display_shape[1:]

    def crop(self, maps):
        """Remove the padding from (..., H, W) maps."""
        top, bottom, left, right = self.pad
        return maps[..., top : self.padded_size[0] - bottom, left : self.padded_size[1] - right]

    def to_display_grid(self, maps: np.ndarray) -> np.ndarray:
        """(N, H, W) model-frame maps -> (N, rows, cols) float32 at the display grid's pixel size."""

        maps = self.crop(np.asarray(maps, dtype=np.float32))
        return resize_slices(maps, self.display_shape[1:]) if self.resampled else np.ascontiguousarray(maps)

    def display_probability(self, masks: np.ndarray) -> np.ndarray:
        """The mean tumor probability over the TTA passes (F, N, H, W) on the display grid, float32 in [0, 1]."""
        return np.clip(self.to_display_grid(masks.mean(0)), 0, 1).astype(np.float32)

    def to_source(self, display_volume: np.ndarray) -> np.ndarray:
        """A (slices, rows, cols) display-frame volume -> the source voxel grid."""
        return from_display(display_volume, self.source_affine, self.source_shape)

    def display_slice_to_source_index(self) -> np.ndarray:
        """For each display slice (S axis, inferior to superior), its index along the source slice axis."""

        axis = slice_axis(self.source_affine)
        shape = [1, 1, 1]
        shape[axis] = self.source_shape[axis]
        line, _ = to_display(np.arange(self.source_shape[axis]).reshape(shape), self.source_affine)
        return line.ravel().copy()


def normalise(volume: np.ndarray, low: float, high: float, clip: tuple[float, float]) -> np.ndarray:
    """(x - p_low) / (p_high - p_low) over the whole volume, clipped; float32."""
    lo, hi = np.percentile(volume, [low, high])
    if not np.isfinite(hi - lo) or hi - lo <= 0:
        lo, hi = float(volume.min()), float(volume.max())
    scale = (hi - lo) if hi > lo else 1.0
    out = (volume.astype(np.float32) - np.float32(lo)) / np.float32(scale)
    return np.clip(out, clip[0], clip[1], out=out)


def reads_subsets(card) -> bool:
    """Whether the model was trained to read any subset of the sequences (missing ones as zeros)."""
    return card.input.get("missing_sequences") == "zero"


def model_slices(channels: np.ndarray, affine: np.ndarray, card, missing=()) -> tuple[np.ndarray, SliceGeometry]:
    """[T1w, T2w, CE] source volumes (3, X, Y, Z) -> model input (N, 3, H, W) float32 and its geometry.

    `missing`: the roles the session lacks (their channels hold stand-ins); zeros for a model that
    reads subsets."""
    norm = card.normalisation
    zero = set(missing) if reads_subsets(card) else set()
    disp = []
    display_affine = None
    for role, vol in zip(SEQUENCE_ROLES, channels, strict=True):
        image = (
            np.zeros(vol.shape, np.float32)
            if role in zero
            else normalise(vol, norm["low"], norm["high"], tuple(norm["clip"]))
        )
        d, display_affine = to_display(image, affine)
        disp.append(d)
    stack = np.stack(disp, axis=1)  # (N, 3, rows, cols)
    spacing = tuple(float(v) for v in np.linalg.norm(display_affine[:3, :3], axis=0))
    geometry = _geometry(channels.shape[1:], affine, stack.shape, spacing, card.input)
    return to_model_frame(stack, geometry), geometry


def to_model_frame(stack: np.ndarray, geometry: SliceGeometry) -> np.ndarray:
    """(N, C, rows, cols) display-frame slices -> (N, C, H, W) at the model's pixel size, padded."""

    x = np.ascontiguousarray(stack, dtype=np.float32)
    if geometry.resampled:
        x = resize_slices(x, geometry.model_size)
    top, bottom, left, right = geometry.pad
    if any(geometry.pad):
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    return x


def resize_slices(maps: np.ndarray, size) -> np.ndarray:
    """(..., H, W) float32 -> (..., rows, cols): bilinear with half-pixel centres, antialiased when
    shrinking (Pillow's BILINEAR, one slice at a time)."""

    lead, (rows, cols) = maps.shape[:-2], (int(size[0]), int(size[1]))
    flat = np.ascontiguousarray(maps, dtype=np.float32).reshape(-1, *maps.shape[-2:])
    out = np.empty((len(flat), rows, cols), np.float32)
    for i, plane in enumerate(flat):
        out[i] = np.asarray(Image.fromarray(plane).resize((cols, rows), Image.Resampling.BILINEAR))
    return out.reshape(*lead, rows, cols)


def model_mask(mask: np.ndarray, geometry: SliceGeometry) -> np.ndarray:
    """A source-grid mask -> (N, H, W) uint8 in the model frame (area-weighted, then >= 0.5)."""
    disp, _ = to_display(np.asarray(mask, dtype=np.float32), geometry.source_affine)
    return (to_model_frame(disp[:, None], geometry)[:, 0] >= 0.5).astype(np.uint8)


def model_labels(labels: np.ndarray, geometry: SliceGeometry, values: int) -> np.ndarray:
    """A source-grid label map (uint8, 0..values-1, any other value unknown) -> (N, H, W) uint8 in the
    model frame: each label's area share resampled like `model_mask`, the largest share kept. Padding (no
    share anywhere) is label 0, the first of equal shares; a pixel mostly unknown stays unknown (255)."""
    labels = np.asarray(labels)
    shares = []
    for value in [*range(values), None]:
        hit = (labels == value) if value is not None else (labels >= values)
        disp, _ = to_display(hit.astype(np.float32), geometry.source_affine)
        shares.append(to_model_frame(disp[:, None], geometry)[:, 0])
    best = np.argmax(np.stack(shares), axis=0).astype(np.uint8)
    best[best == values] = 255
    return best


def _geometry(source_shape, affine, stack_shape, spacing, spec: dict) -> SliceGeometry:
    n, _, rows, cols = stack_shape
    target = [float(v) for v in spec["pixel_spacing_mm"]]
    tol = float(spec.get("spacing_tolerance", 0.1))
    size = [rows, cols]
    notes = []
    if any(abs(spacing[1 + i] / target[i] - 1.0) > tol for i in range(2)):
        size = [max(1, round(size[i] * spacing[1 + i] / target[i])) for i in range(2)]
        limit = int(spec.get("max_size", 384))
        if max(size) > limit:
            f = limit / max(size)
            size = [max(1, round(s * f)) for s in size]
            notes.append(
                f"the field of view ({rows * spacing[1]:.0f} x {cols * spacing[2]:.0f} mm) is larger than the model's; "
                f"slices were resampled to {size[0]}x{size[1]} pixels of {rows * spacing[1] / size[0]:.2f} mm, coarser than the "
                f"model's {target[0]:.2f} mm"
            )
    multiple = int(spec.get("size_multiple", 32))
    padded = [int(np.ceil(s / multiple) * multiple) for s in size]
    pad = (
        (padded[0] - size[0]) // 2,
        padded[0] - size[0] - (padded[0] - size[0]) // 2,
        (padded[1] - size[1]) // 2,
        padded[1] - size[1] - (padded[1] - size[1]) // 2,
    )
    return SliceGeometry(
        tuple(int(v) for v in source_shape),
        np.asarray(affine),
        (n, rows, cols),
        spacing,
        (size[0], size[1]),
        (padded[0], padded[1]),
        pad,
        notes,
    )
