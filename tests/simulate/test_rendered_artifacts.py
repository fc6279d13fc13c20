"""Each artifact, switched on alone in a protocol, is measured where it must show in the rendered image;
switched off (the default), it leaves no trace and is not recorded."""

import numpy as np
import pytest
from scipy import ndimage

from napari_hcc.simulate.anatomy import LABEL, build_anatomy, draw_anatomy
from napari_hcc.simulate.artifacts import chemical_shift_pixels, to_kspace
from napari_hcc.simulate.biology import draw_cohort, tumor_state
from napari_hcc.simulate.protocol import Protocol, SequenceProtocol
from napari_hcc.simulate.render import draw_pose, render_session
from napari_hcc.simulate.tumor import draw_tumor_shape

ARTIFACT_KEYS = {"chemical_shift_px", "flow_ghosts", "respiratory_ghosts", "kspace_fraction", "partial_fourier"}


def _small(**changes) -> SequenceProtocol:
    """96 x 96 pixels of 0.5 mm and 6 slices, nearly noiseless, no smooth bias."""
    grid = {"matrix": (96, 96), "pixel_mm": (0.5, 0.5), "slice_mm": 1.5, "slices": 6, "snr": 1000.0, "bias": 0.0}
    return SequenceProtocol("RARE", 0.45, 0.009, 90.0, 2, **(grid | changes))


def _session(protocol: Protocol):
    """The first rat of seed 0 at week 2, acquired with `protocol`: (the rendered session, its pose)."""
    rat = draw_cohort(0, 1)[0]
    rng = np.random.default_rng(rat.seed)
    params = draw_anatomy(rng)
    shape = draw_tumor_shape(rng, build_anatomy(params).left_lobe)
    pose = draw_pose(np.random.default_rng(1), 2, protocol)
    return render_session(rat, params, shape, tumor_state(rat, 2), pose, np.random.default_rng(2), protocol), pose


def _render(**changes):
    """One session, T1w only (`_small`), its image normalised to the body's mean."""
    out, _ = _session(Protocol(7.0, {"T1w": _small(**changes)}))
    image = out.images["T1w"].astype(float)
    body = out.tissue > 0
    return image / image[body].mean(), out


@pytest.fixture(scope="module")
def base():
    return _render()


def _air_beside_and_along(image, body, pe_axis):
    """Mean air signal in line with the body along phase encoding, and beside it (lines missing the body)."""
    far = ~ndimage.binary_dilation(body, iterations=3)
    hits = body.any(axis=pe_axis, keepdims=True)  # lines across the PE axis that pass through the body
    along, beside = far & np.broadcast_to(hits, body.shape), far & ~np.broadcast_to(hits, body.shape)
    return image[along].mean(), image[beside].mean()


def _high_k_power(image, axis, fraction=0.3):
    k = np.abs(to_kspace(image)) ** 2
    n = image.shape[axis]
    lines = np.abs(np.arange(n) - n // 2) > (1 - fraction) * n / 2
    return k.take(np.nonzero(lines)[0], axis=axis).sum()


def test_off_by_default_nothing_is_drawn_or_recorded(base):
    image, out = base
    assert not ARTIFACT_KEYS & set(out.acquisition["T1w"])
    far = ~ndimage.binary_dilation(out.tissue > 0, iterations=3)
    assert image[far].mean() < 0.01  # dark air: noise only


@pytest.mark.parametrize("pe", ["i", "j"])
def test_breathing_ghosts_lie_along_phase_encoding(base, pe):
    image, out = _render(ghost_amplitude=0.15, ghost_motion_mm=0.3, phase_encoding=pe)
    axis = 0 if pe == "i" else 1
    along, beside = _air_beside_and_along(image, out.tissue > 0, axis)
    base_along, _ = _air_beside_and_along(base[0], base[1].tissue > 0, axis)
    assert along > 5 * base_along and along > 3 * beside
    assert out.acquisition["T1w"]["respiratory_ghosts"]["breaths_per_acquisition"] == pytest.approx(
        0.45 * 96 / 2 * 55 / 60
    )


def test_truncated_k_space_rings_and_loses_its_high_frequencies(base):
    image, out = _render(kspace_fraction=0.5)
    for axis in (0, 1):  # what remains there is the magnitude's and the noise's
        assert _high_k_power(image, axis) < 0.2 * _high_k_power(base[0], axis)
    overshoot = image[out.tissue > 0].max() / base[0][base[1].tissue > 0].max()
    assert overshoot > 1.03  # Gibbs overshoot at the brightest edges
    assert out.acquisition["T1w"]["kspace_fraction"] == 0.5


@pytest.mark.parametrize("pe", ["i", "j"])
def test_partial_fourier_blurs_most_along_phase_encoding(base, pe):
    image, out = _render(partial_fourier=0.6, phase_encoding=pe)
    kept = [_high_k_power(image, axis) / _high_k_power(base[0], axis) for axis in (0, 1)]
    pe_axis = 0 if pe == "i" else 1
    assert kept[pe_axis] < 0.25 and kept[pe_axis] < 0.5 * kept[1 - pe_axis]


def test_flow_smears_vessels_along_phase_encoding(base):
    image, out = _render(flow_ghosts=0.6, phase_encoding="j")
    diff = np.abs(image - base[0])
    vessel_lines = np.broadcast_to((out.tissue == LABEL["blood_vessel"]).any(axis=1, keepdims=True), diff.shape)
    assert diff[vessel_lines].mean() > 4 * diff[~vessel_lines].mean()


def test_chemical_shift_moves_fat_along_the_readout(base):
    image, out = _render(bandwidth_hz_per_pixel=300.0)
    assert out.acquisition["T1w"]["chemical_shift_px"] == pytest.approx(chemical_shift_pixels(7.0, 300.0))
    assert chemical_shift_pixels(7.0, 300.0) == pytest.approx(3.38, abs=0.01)
    diff = np.abs(image - base[0])
    fat = np.isin(out.tissue, [LABEL["subcutaneous_fat"], LABEL["visceral_fat"]])
    near_fat = ndimage.binary_dilation(fat, iterations=4)
    assert diff[near_fat].sum() > 0.9 * diff.sum() and diff.mean() > 0.01


def test_a_surface_coil_brightens_its_side(base):
    image, out = _render(coil="surface", coil_side="axis1-", coil_radius=0.3)
    body = out.tissue > 0
    half = image.shape[1] // 2
    near, far = image[:, :half][body[:, :half]].mean(), image[:, half:][body[:, half:]].mean()
    base_near = base[0][:, :half][body[:, :half]].mean() / base[0][:, half:][body[:, half:]].mean()
    assert near / far > 2.5 * base_near


def test_a_loop_under_a_coronal_slab_falls_off_through_its_slices():
    def first_over_last(**changes):
        image, out = _render(plane="coronal", slices=12, **changes)
        body = out.tissue > 0
        return image[..., :3][body[..., :3]].mean() / image[..., -3:][body[..., -3:]].mean()

    plain = first_over_last()
    under_the_back = first_over_last(coil="surface", coil_side="axis2-", coil_radius=0.3)
    assert under_the_back > 2.5 * plain


def test_a_labs_tissue_gain_scales_its_tissue_and_the_tumor_with_its_liver(base):
    _, out = _render(tissue_gain={"liver": 2.0, "muscle": 0.5})
    was, now, tissue = base[1].images["T1w"].astype(float), out.images["T1w"].astype(float), out.tissue
    in_plane = np.ones((3, 3, 1), bool)
    interior = {name: ndimage.binary_erosion(tissue == LABEL[name], in_plane, iterations=2)
                for name in ("liver", "muscle", "tumor")}  # fmt: skip
    ratio = {name: now[m].mean() / was[m].mean() for name, m in interior.items()}
    assert ratio["liver"] == pytest.approx(2.0, rel=0.05)
    assert ratio["tumor"] == pytest.approx(2.0, rel=0.05)  # its contrast against the liver is the physics' own
    assert ratio["muscle"] == pytest.approx(0.5, rel=0.05)


def _body_angle(image: np.ndarray) -> float:
    """Orientation of the body's long axis in the middle slice (degrees), from its second moments."""
    body = ndimage.binary_fill_holes(image[:, :, image.shape[2] // 2] > 0.3)
    i, j = np.nonzero(body)
    i, j = i - i.mean(), j - j.mean()
    return float(np.rad2deg(0.5 * np.arctan2(2 * (i * j).mean(), (i * i).mean() - (j * j).mean())))


def test_motion_between_sequences_turns_the_rat_by_what_is_recorded():
    """A T2w acquired after the rat turned by 4 degrees about the bore: its body is turned by that much
    against the T1w's (in the stored LAS grid the angle's sign flips), and the truth records it."""
    out, pose = _session(Protocol(7.0, {"T1w": _small(), "T2w": _small(motion_deg=4.0)}))
    applied = out.truth["motion_applied_vs_reference"]["T2w"]["rotation_deg"]
    assert 0.5 < abs(applied) <= 4.0 and applied == pose.motion["T2w"][2]
    images = {role: out.images[role] / out.images[role].max() for role in ("T1w", "T2w")}
    turned = _body_angle(images["T2w"]) - _body_angle(images["T1w"])
    assert turned == pytest.approx(-applied, abs=0.4), (turned, applied)
