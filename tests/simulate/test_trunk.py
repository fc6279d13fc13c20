"""The rat beyond the liver's slab (simulator 2.1, limbs 2.3): a `study` scan is the same with it, voxel for
voxel, and a whole-trunk scan shows the thorax, a belly full of intestine where it once showed fat, and the
muscle of the hindquarters and shoulders."""

import numpy as np
import pytest

from napari_hcc.simulate.anatomy import LABEL, build_anatomy, draw_anatomy
from napari_hcc.simulate.biology import draw_cohort, tumor_state
from napari_hcc.simulate.labs import LIVER_HALF_SPAN_MM, WHOLE_TRUNK_SHARE, draw_lab, whole_trunk
from napari_hcc.simulate.protocol import STUDY_PROTOCOL, Protocol, SequenceProtocol
from napari_hcc.simulate.render import draw_pose, render_session
from napari_hcc.simulate.trunk import draw_trunk
from napari_hcc.simulate.tumor import draw_tumor_shape

GUT = [LABEL[t] for t in ("bowel_wall", "bowel_content", "gas")]


def _render(protocol: Protocol, trunk: bool):
    """The first rat of seed 0 at week 2, with or without the organs beyond the liver's slab."""
    rat = draw_cohort(0, 1)[0]
    rng = np.random.default_rng(rat.seed)
    params = draw_anatomy(rng)
    shape = draw_tumor_shape(rng, build_anatomy(params).left_lobe)
    if trunk:
        params["trunk"] = draw_trunk(np.random.default_rng(3))
    pose = draw_pose(np.random.default_rng(1), 2, protocol)
    return render_session(rat, params, shape, tumor_state(rat, 2), pose, np.random.default_rng(2), protocol)


def test_a_study_scan_is_the_same_voxel_for_voxel_with_the_trunk():
    without, with_trunk = _render(STUDY_PROTOCOL, False), _render(STUDY_PROTOCOL, True)
    assert np.array_equal(without.tissue, with_trunk.tissue)
    for role in STUDY_PROTOCOL.sequences:
        assert np.array_equal(without.images[role], with_trunk.images[role])


@pytest.fixture(scope="module")
def coronal_trunk():
    """A coronal T2w of 154 mm x 154 mm through the body's depth, centred 20 mm caudal to the liver."""
    seq = SequenceProtocol("RARE", 3.0, 0.035, 90.0, 8, matrix=(256, 256), pixel_mm=(0.6, 0.6), slice_mm=1.2,
                           slices=28, plane="coronal", slab_centre_mm=-20.0, snr=200.0, bias=0.0)  # fmt: skip
    return _render(Protocol(7.0, {"T2w": seq}), True)


def _body_z(out) -> np.ndarray:
    """Body-frame z (cranial, mm; approximately: the pose's small rotation is about z) of every voxel."""
    ijk = np.indices(out.tissue.shape).reshape(3, -1)
    return (out.affine[2, :3] @ ijk + out.affine[2, 3]).reshape(out.tissue.shape)


def test_a_whole_trunk_scan_shows_the_thorax_and_a_belly_full_of_intestine(coronal_trunk):
    tissue, z = coronal_trunk.tissue, _body_z(coronal_trunk)
    voxel_ml = np.prod(np.linalg.norm(coronal_trunk.affine[:3, :3], axis=0)) / 1000.0
    heart = tissue == LABEL["myocardium"]
    assert 0.3 < (heart.sum() + ((tissue == LABEL["blood_vessel"]) & (z > 18)).sum()) * voxel_ml < 2.5  # about 1 g
    assert z[heart].min() > 14.0 and z[tissue == LABEL["lung"]].max() > 30.0  # above the diaphragm
    assert z[tissue == LABEL["urine"]].max() < -45.0  # the bladder, in the pelvis
    assert (tissue == LABEL["cortical_bone"])[z < -50].any()  # the pelvic bones
    belly = (z < -20) & (z > -45)
    gut = np.isin(tissue, GUT) & belly
    fat = (tissue == LABEL["visceral_fat"]) & belly
    assert gut.sum() / (gut.sum() + fat.sum()) > 0.45  # intestine, not a cylinder of fat
    assert not (tissue == LABEL["liver"])[(z < -20) | (z > 20)].any()  # the liver stays where it was


def test_the_hindquarters_and_shoulders_are_muscle_and_bone_not_fat(coronal_trunk):
    """Simulator 2.3: beyond the pelvis and above the heart a real rat is its limbs' muscle; a 154 mm coronal
    field of view reaches both."""
    tissue, z = coronal_trunk.tissue, _body_z(coronal_trunk)
    for region in ((z < -72) & (z > -95), (z > 46) & (z < 56)):
        muscle = ((tissue == LABEL["muscle"]) & region).sum()
        fat = (np.isin(tissue, [LABEL["visceral_fat"], LABEL["subcutaneous_fat"]]) & region).sum()
        assert muscle > 2 * fat
        assert (np.isin(tissue, [LABEL["cortical_bone"], LABEL["bone_marrow"]]) & region).any()  # femur, humerus


def test_a_fifth_of_varied_labs_scan_the_whole_trunk_on_one_grid():
    labs = [draw_lab(np.random.default_rng([5, 7, i])) for i in range(300)]
    trunk = [lab for lab in labs if any(s.slab_centre_mm != 0.0 for s in lab.sequences.values())]
    assert abs(len(trunk) / len(labs) - WHOLE_TRUNK_SHARE) < 0.06
    for lab in trunk:
        grids = {(s.matrix, s.pixel_mm, s.slices, s.slice_mm, s.plane) for s in lab.sequences.values()}
        assert len(grids) == 1
        seq = next(iter(lab.sequences.values()))
        fov, depth = seq.matrix[0] * seq.pixel_mm[0], seq.slices * seq.slice_mm
        if seq.plane == "coronal":
            assert 88.0 <= fov <= 170.0 and 20.0 <= depth <= 40.0
        else:
            assert 38.0 <= depth <= 82.0 and 45.0 <= fov <= 80.0
        assert -30.0 <= seq.slab_centre_mm <= 0.0
        along_body = fov if seq.plane == "coronal" else depth
        # the whole liver (12 mm either side of its centre) is in the slab
        assert seq.slab_centre_mm - along_body / 2 <= -LIVER_HALF_SPAN_MM + 0.06
        assert seq.slab_centre_mm + along_body / 2 >= LIVER_HALF_SPAN_MM - 0.06


def test_whole_trunk_keeps_the_lab_but_its_grids():
    lab = draw_lab(np.random.default_rng([5, 7, 0]))
    trunk = whole_trunk(lab, np.random.default_rng(0))
    assert trunk.field_strength_t == lab.field_strength_t and set(trunk.sequences) == set(lab.sequences)
    for role, seq in trunk.sequences.items():
        assert (seq.family, seq.echo_time_s, seq.snr, seq.coil) == (
            lab.sequences[role].family, lab.sequences[role].echo_time_s, lab.sequences[role].snr,
            lab.sequences[role].coil,
        )  # fmt: skip
