"""The anatomy gate: a tumor candidate is kept when liver surrounds it, left out (and counted) when it
lies on another organ; without a liver map nothing changes."""

import numpy as np
import pytest

from napari_hcc.inference.liver_gate import gate_by_liver
from napari_hcc.inference.postprocess import PostProcess


def _scene():
    mask = np.zeros((20, 60, 60), np.uint8)
    liver = np.zeros(mask.shape, np.float32)
    liver[:, :30, :] = 0.9  # the liver fills the anterior half
    mask[8:12, 10:14, 10:14] = 1  # inside the liver
    mask[8:12, 27:33, 40:46] = 1  # bulging out of the liver's edge
    mask[8:12, 45:49, 10:14] = 1  # on another organ, far from the liver
    return mask, liver


def test_the_gate_keeps_tumors_in_and_on_the_liver_and_counts_what_it_leaves_out():
    mask, liver = _scene()
    spacing = (1.0, 0.5, 0.5)
    kept, dropped = gate_by_liver(mask, liver, spacing, ring_mm=1.5, min_share=0.25)
    assert kept[8:12, 10:14, 10:14].all() and kept[8:12, 27:33, 40:46].all()
    assert not kept[8:12, 45:49, 10:14].any()
    assert dropped == pytest.approx(4 * 4 * 4 * np.prod(spacing))


def test_postprocess_without_a_liver_map_or_with_the_gate_off_is_unchanged():
    mask, liver = _scene()
    probability = mask.astype(np.float32)
    affine = np.diag([1.0, 0.5, 0.5, 1.0])
    plain = PostProcess().apply(probability, affine)
    assert np.array_equal(PostProcess(min_liver_share=0.0).apply(probability, affine, liver), plain)
    assert np.array_equal(PostProcess(min_liver_share=0.25).apply(probability, affine, None), plain)
    gated, left_out = PostProcess(min_liver_share=0.25).apply_counted(probability, affine, liver)
    assert gated.sum() == plain.sum() - 64 and left_out.sum() == 64  # what was left out, for a reviewer to see
    assert np.array_equal(np.maximum(gated, left_out), plain) and not (gated & left_out).any()
    assert PostProcess(min_liver_share=0.0).apply_counted(probability, affine, liver)[1] is None


def test_a_gate_setting_outside_its_range_is_refused():
    from napari_hcc.errors import InputError

    with pytest.raises(InputError, match="liver share"):
        PostProcess(min_liver_share=1.5).check()
