"""Rigid (or affine) alignment of one sequence to another by Mattes mutual information (SimpleITK).

The transform is found and applied in world coordinates: the moving image is resampled once, through
the transform, onto the fixed (T1w) grid, and the `Alignment` records what was done (the matrix,
the shift and rotation, the optimiser's settings and a quality figure) for the scan's notes and the
output sidecars. Nothing is moved silently: a sequence is aligned only when the user asks
(`--register`, the GUI's "Align sequences" box).

Quality: normalised mutual information, NMI = (H(A) + H(B)) / H(A, B), of the fixed image and the
moving image on the fixed grid, before and after; 1 means independent, 2 identical. A transform is
applied only when it improves the match (Mattes MI on every voxel better by at least 0.5%, and NMI
not lower) and is plausible for sequences of one session (a shift of at most 5 mm, a rotation of at
most 5 degrees); otherwise the unaligned image is kept, and the note says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import SimpleITK as sitk

from napari_hcc.io.scan import Aligner, Scan
from napari_hcc.io.volume import Volume
from napari_hcc.registration.sitk_images import from_sitk, ras_point, to_sitk, transform_matrix_ras, unwrap
from napari_hcc.vocabulary import REGISTRATION_KINDS, RegistrationKind

MAX_SHIFT_MM = 5.0
MAX_ROTATION_DEG = 5.0
MIN_GAIN = 0.005
SETTINGS = {
    "metric": "Mattes mutual information, 48 bins, 15% of voxels sampled (seed 7)",
    "optimizer": "regular step gradient descent, step 1.0 to 1e-4, at most 300 iterations, scales from physical shift",
    "pyramid": "shrink 4, 2 then 1, smoothing 1, 0.5 then 0 mm",
    "initial": "identity (the scanner's own world coordinates)",
    "interpolation": "linear",
}


@dataclass
class Alignment:
    role: str
    kind: str
    matrix_ras: list[list[float]]  # fixed world point -> moving world point (mm, RAS+)
    shift_mm: list[float]  # the translation at the fixed image's centre (RAS+)
    rotation_deg: float  # total rotation angle
    nmi_before: float
    nmi_after: float
    accepted: bool
    iterations: int
    stop: str
    mi_gain: float = 0.0  # relative improvement of Mattes MI over the identity, on every voxel
    rejected_because: str = ""
    requested: str = ""  # "affine" when asked for, even where the rigid match was kept

    def note(self) -> str:
        shift = ", ".join(f"{v:+.2f}" for v in self.shift_mm)
        verdict = (
            "applied" if self.accepted else f"NOT applied ({self.rejected_because}); the images are left as acquired"
        )
        return (
            f"{self.role} to T1w {self.kind} registration (Mattes MI, SimpleITK"
            + ("; affine tried, not better" if self.requested == "affine" and self.kind == "rigid" else "")
            + ") found "
            f"a shift of ({shift}) mm RAS, rotation {self.rotation_deg:.2f} deg, "
            f"NMI {self.nmi_before:.3f} -> {self.nmi_after:.3f}; {verdict}."
        )

    def record(self) -> dict:
        return asdict(self) | {"settings": SETTINGS}


def _nmi(a: np.ndarray, b: np.ndarray, bins: int = 48) -> float:
    keep = (a > 0) & (b > 0)
    if keep.sum() < 100:
        return 1.0
    joint, _, _ = np.histogram2d(a[keep], b[keep], bins=bins)
    p = joint / joint.sum()

    def entropy(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    return (entropy(p.sum(axis=1)) + entropy(p.sum(axis=0))) / entropy(p)


def _method(learning_rate: float, levels: int = 3) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.15, seed=7)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate, minStep=1e-4, numberOfIterations=300, relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-8,
    )  # fmt: skip
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1][-levels:])
    method.SetSmoothingSigmasPerLevel([1.0, 0.5, 0.0][-levels:])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    return method


def _mattes(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    """Mattes MI at `transform`, on every voxel (negative: lower is better)."""
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetInitialTransform(transform)
    return method.MetricEvaluate(fixed, moving)


def register(
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    moving: np.ndarray,
    moving_affine: np.ndarray,
    role: str,
    kind: RegistrationKind = "rigid",
    max_shift_mm: float = MAX_SHIFT_MM,
    max_rotation_deg: float = MAX_ROTATION_DEG,
) -> tuple[np.ndarray, Alignment]:
    """Align `moving` to `fixed`; return it resampled onto the fixed grid, and what was done.

    `max_shift_mm` and `max_rotation_deg` bound what is plausible (a session's sequences: 5 mm, 5 deg;
    a rat's weeks, repositioned between sessions, more)."""
    if kind not in REGISTRATION_KINDS:
        raise ValueError(f"registration must be one of {', '.join(REGISTRATION_KINDS)}, not {kind!r}.")
    f = to_sitk(fixed, fixed_affine)
    m = to_sitk(moving, moving_affine)
    centre = f.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in f.GetSize()])
    rigid = sitk.Euler3DTransform()
    rigid.SetCenter(centre)
    method = _method(learning_rate=1.0)
    method.SetInitialTransform(rigid, inPlace=False)
    transform = method.Execute(f, m)
    at_identity = _mattes(f, m, sitk.Euler3DTransform())
    found = _mattes(f, m, transform)
    used = "rigid"
    if kind == "affine":  # from the rigid result, in small steps; kept only where it beats the rigid match
        rigid_found = sitk.Euler3DTransform(unwrap(transform))
        start = sitk.AffineTransform(3)
        start.SetCenter(centre)
        start.SetMatrix(rigid_found.GetMatrix())
        start.SetTranslation(rigid_found.GetTranslation())
        affine_method = _method(learning_rate=0.05, levels=1)
        affine_method.SetInitialTransform(start, inPlace=False)
        affine = affine_method.Execute(f, m)
        affine_found = _mattes(f, m, affine)
        if affine_found < found:
            transform, method, used, found = affine, affine_method, "affine", affine_found

    # how much better (relative) Mattes MI is at the transform than at the identity, on every voxel
    gain = float((at_identity - found) / abs(at_identity)) if at_identity else 0.0
    identity = sitk.Resample(m, f, sitk.Transform(), sitk.sitkLinear, 0.0)
    aligned = sitk.Resample(m, f, transform, sitk.sitkLinear, 0.0)
    before = _nmi(fixed, from_sitk(identity))
    after_data = from_sitk(aligned)
    after = _nmi(fixed, after_data)
    matrix = transform_matrix_ras(transform)
    centre_ras = ras_point(centre)
    shift = matrix[:3, :3] @ centre_ras + matrix[:3, 3] - centre_ras
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    rot = u @ vt
    angle = float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))
    why = ""
    if np.abs(shift).max() > max_shift_mm or angle > max_rotation_deg:
        why = f"a shift over {max_shift_mm:g} mm or a rotation over {max_rotation_deg:g} deg is implausible here"
    elif gain < MIN_GAIN or after < before:
        why = "it did not improve the match"
    accepted = not why
    result = Alignment(
        role, used, matrix.round(6).tolist(), [float(v) for v in shift], angle, before, after, accepted,
        int(method.GetOptimizerIteration()), method.GetOptimizerStopConditionDescription(), gain, why, kind,
    )  # fmt: skip
    return (after_data if accepted else from_sitk(identity)).astype(np.float32), result


def aligner(kind: RegistrationKind = "rigid") -> Aligner:
    """The `align` argument of `load_scan`: registers each sequence to the T1w (see `register`)."""
    if kind not in REGISTRATION_KINDS:
        raise ValueError(f"registration must be one of {', '.join(REGISTRATION_KINDS)}, not {kind!r}.")

    def align(ref: Volume, moving: Volume, role: str) -> tuple[np.ndarray, str, dict]:
        data, result = register(ref.data, ref.affine, moving.data, moving.affine, role, kind)
        return data, result.note(), result.record()

    return align


def align_scan(scan: Scan, kind: RegistrationKind = "rigid") -> Scan:
    """A loaded scan (its sequences already on the T1w grid) with the T2w and CE aligned to the T1w:
    what the review widget's "Align" option does. Sequences that stand in for a missing one are left."""
    data, notes, records = {}, list(scan.notes), dict(scan.alignment)
    for role in ("T2w", "CE"):
        moving = scan.t2w if role == "T2w" else scan.ce
        if role in scan.stand_ins:
            data[role] = moving
            continue
        data[role], result = register(scan.t1w, scan.affine, moving, scan.affine, role, kind)
        notes.append(result.note())
        records[role] = result.record()
    return replace(scan, t2w=data["T2w"], ce=data["CE"], notes=notes, alignment=records)
