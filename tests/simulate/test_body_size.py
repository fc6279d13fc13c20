"""Rats of many sizes (simulator 2.3): a `varied` rat is drawn 0.9-1.7 times the standard one, and its lab
fits the prescription to it as an operator would, so that the whole rat and its liver stay in view."""

import numpy as np

from napari_hcc.simulate.anatomy import BODY_SCALE_RANGE, build_anatomy, draw_anatomy
from napari_hcc.simulate.biology import draw_cohort
from napari_hcc.simulate.cohort import VARIED, body_scale, protocol_of_rat
from napari_hcc.simulate.labs import LIVER_HALF_SPAN_MM, MAX_FOV_MM, MAX_SLICES, draw_lab, fit_to_animal
from napari_hcc.simulate.protocol import STUDY_PROTOCOL


def test_varied_rats_come_in_many_sizes_and_the_study_rats_in_one():
    rats = draw_cohort(11, 25)
    scales = np.array([body_scale(r) for r in rats])
    assert BODY_SCALE_RANGE[0] <= scales.min() and scales.max() <= BODY_SCALE_RANGE[1]
    assert scales.std() > 0.15  # spread over the range, not one size
    assert protocol_of_rat(STUDY_PROTOCOL, 11, rats[0], 0) is STUDY_PROTOCOL  # the study lab is not refitted


def test_a_larger_rat_is_the_same_rat_scaled():
    params = draw_anatomy(np.random.default_rng(4))
    small, large = build_anatomy(params), build_anatomy(params | {"scale": 1.5})
    for a, b in zip(small.liver_lobes, large.liver_lobes, strict=True):
        assert np.allclose(np.asarray(b.center), 1.5 * np.asarray(a.center))
        assert np.allclose(np.asarray(b.axes), 1.5 * np.asarray(a.axes))


def test_a_lab_fits_its_grids_to_a_larger_rat_and_keeps_them_for_a_smaller_one():
    labs = [draw_lab(np.random.default_rng([9, 7, i])) for i in range(200)]
    assert all(fit_to_animal(lab, 0.93) is lab for lab in labs)
    for lab in labs:
        fitted = fit_to_animal(lab, 1.7)
        for role, seq in fitted.sequences.items():
            before = lab.sequences[role]
            fov, fov_before = (max(m * p for m, p in zip(s.matrix, s.pixel_mm)) for s in (seq, before))
            assert seq.matrix == before.matrix and seq.slice_mm == before.slice_mm  # wider, not finer or thicker
            assert fov <= max(fov_before, MAX_FOV_MM) + 0.5 and fov >= min(1.7 * fov_before, MAX_FOV_MM) - 0.5
            assert before.slices <= seq.slices <= max(before.slices, MAX_SLICES)
            along_body = (
                seq.slices * (seq.slice_mm + seq.gap_mm) if seq.plane == "axial" else seq.matrix[1] * seq.pixel_mm[1]
            )
            if before.slab_centre_mm != 0.0:  # a whole-trunk lab: the larger rat's whole liver is still in the slab
                assert abs(seq.slab_centre_mm) + LIVER_HALF_SPAN_MM * 1.7 <= along_body / 2 + 0.1


def test_a_varied_rat_is_scanned_by_its_lab_fitted_to_its_size():
    rats = draw_cohort(11, 3)
    for i, rat in enumerate(rats):
        drawn = draw_lab(np.random.default_rng([11, 7, i]))
        assert protocol_of_rat(VARIED, 11, rat, i) == fit_to_animal(drawn, body_scale(rat))
