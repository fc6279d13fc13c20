"""The shapes organs are drawn with: perturbed ellipsoids (`Blob`), tubes (`Tube`) and the body's nested
layers (`Body`), each a function `rho` of body-frame millimetres that is below 1 inside, and a box that
holds it (`bounds`), so that a shape is evaluated only where it can be."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Blob:
    """A perturbed ellipsoid: inside where rho < 1."""

    label: str
    center: tuple[float, float, float]
    axes: tuple[float, float, float]  # semi-axes (mm); a huge z axis makes a cylinder
    angle: float = 0.0  # rotation about z (radians)
    wobble: tuple[tuple[float, float], ...] = ()  # Fourier coefficients of the boundary, k = 2..
    taper: float = 0.0  # relative change of the in-plane axes per mm of z

    def rho(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        # Python floats throughout: with float32 coordinates, everything stays float32
        dx, dy, dz = x - float(self.center[0]), y - float(self.center[1]), z - float(self.center[2])
        c, s = float(np.cos(self.angle)), float(np.sin(self.angle))
        u, v = c * dx + s * dy, -s * dx + c * dy
        scale = 1.0 + float(self.taper) * dz if self.taper else 1.0
        a, b = float(self.axes[0]) * scale, float(self.axes[1]) * scale
        r = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (dz / self.axes[2]) ** 2)
        if self.wobble:
            # cos(k theta), sin(k theta) as powers of e^(i theta): no trigonometry per voxel.
            e1 = (u / a + 1j * (v / b)).astype(np.complex64)
            e1 /= np.maximum(np.abs(e1), 1e-6)
            ek = e1 * e1
            bump = np.zeros_like(r)
            for ca, sa in self.wobble:
                bump += ca * ek.real + sa * ek.imag
                ek = ek * e1
            r = r / (1.0 + bump)
        return r

    def shrunk(self, mm: float, label: str | None = None) -> Blob:
        """The same shape `mm` thinner in-plane (for walls and layers)."""
        a, b, c = self.axes
        return replace(self, axes=(a - mm, b - mm, c), label=label or self.label)

    def inner(self, mm: float, label: str) -> Blob:
        """What a wall `mm` thick holds: the shape thinner along all three axes (`shrunk` keeps z)."""
        return replace(self, label=label, axes=tuple(a - mm for a in self.axes))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """A body-frame box that holds the whole shape."""
        grow = (1.0 + sum(abs(p) + abs(q) for p, q in self.wobble)) * (1.0 + abs(self.taper) * 20.0)
        r = max(self.axes[0], self.axes[1]) * grow
        c = np.asarray(self.center)
        half = np.array([r, r, min(self.axes[2], 60.0)])
        return c - half, c + half


@dataclass(frozen=True)
class Tube:
    """A vessel: a cylinder of `radius` around the segment p0-p1."""

    label: str
    p0: tuple[float, float, float]
    p1: tuple[float, float, float]
    radius: float
    within: str = ""  # painted only over this tissue (a vessel branch stays in the liver)

    def rho(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        p0 = [float(v) for v in self.p0]
        d = [float(b) - a for a, b in zip(p0, self.p1)]
        t = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / float(np.dot(d, d))
        t = np.clip(t, 0.0, 1.0)
        dist2 = (x - p0[0] - t * d[0]) ** 2 + (y - p0[1] - t * d[1]) ** 2 + (z - p0[2] - t * d[2]) ** 2
        return np.sqrt(dist2) / float(self.radius)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.minimum(self.p0, self.p1) - self.radius
        hi = np.maximum(self.p0, self.p1) + self.radius
        return np.asarray(lo), np.asarray(hi)


@dataclass(frozen=True)
class Body:
    """The body outline and its nested layers, from a single shape evaluation."""

    outline: Blob
    layers: tuple[tuple[str, float], ...]  # (label, rho threshold), outermost first

    def bounds(self):
        return self.outline.bounds()


def wobble(rng: np.random.Generator, amount: float, orders: int = 4) -> tuple[tuple[float, float], ...]:
    return tuple((float(rng.normal(0, amount / k)), float(rng.normal(0, amount / k))) for k in range(2, 2 + orders))
