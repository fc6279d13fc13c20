"""Signal physics across labs: field-dependent relaxation and relaxivity, and each family's equation."""

import numpy as np
import pytest

from napari_hcc.simulate import mri, physics
from napari_hcc.simulate.protocol import STUDY_PROTOCOL, SequenceProtocol


def test_t1_lengthens_with_the_field_more_in_liver_than_in_fat():
    liver = [float(physics.at_field(1150, 24, "liver", b)[0]) for b in (3.0, 4.7, 7.0, 9.4, 11.7)]
    fat = [float(physics.at_field(420, 55, "fat", b)[0]) for b in (3.0, 11.7)]
    assert liver == sorted(liver) and liver[2] == pytest.approx(1150)
    assert liver[-1] / liver[0] > 1.5 and fat[1] / fat[0] < 1.25
    t1, t2, t2s = physics.at_field(1150, 24, "liver", 11.7)
    assert t2 < 24 and t2s < t2  # T2 shortens a little, T2* more, with the field


def test_gadolinium_relaxivity_follows_the_field_table():
    assert physics.gd_relaxivity(7.0) == pytest.approx((3.6, 5.3))
    assert physics.gd_relaxivity(3.0) == pytest.approx((3.7, 5.2))
    r1_low, r1_high = physics.gd_relaxivity(1.5)[0], physics.gd_relaxivity(11.7)[0]
    assert r1_low > physics.gd_relaxivity(5.5)[0] > r1_high


def test_the_study_lab_is_the_spin_echo_equation_at_7_tesla():
    seq = STUDY_PROTOCOL.sequences["T1w"]
    liver = mri.TISSUE_TABLE["liver"]
    want = liver.pd * (1 - np.exp(-450 / 1150)) * np.exp(-9 / 24)
    assert physics.tissue_signal("liver", liver, seq, 7.0, False) == pytest.approx(want, rel=1e-5)
    with_gd = physics.tissue_signal("liver", liver, seq, 7.0, True)
    r1, r2 = 1 / 1150 + 3.6e-3 * 0.30, 1 / 24 + 5.3e-3 * 0.30
    assert with_gd == pytest.approx(liver.pd * (1 - np.exp(-450 * r1)) * np.exp(-9 * r2), rel=1e-5)


def test_flash_is_brightest_at_the_ernst_angle():
    t1 = float(physics.at_field(1150, 24, "liver", 7.0)[0])
    ernst = np.rad2deg(np.arccos(np.exp(-200 / t1)))
    signals = {
        a: float(physics.signal(1.0, 1150, 24, 0.0, "liver", SequenceProtocol("FLASH", 0.2, 0.002, a), 7.0, False))
        for a in (ernst - 15, ernst, ernst + 15)
    }
    assert max(signals, key=signals.get) == ernst


def test_bssfp_shows_t2_over_t1_where_a_t1w_rare_shows_t1():
    bssfp = SequenceProtocol("bSSFP", 0.005, 0.0025, 50.0)
    t1w = STUDY_PROTOCOL.sequences["T1w"]
    csf, liver = mri.TISSUE_TABLE["csf"], mri.TISSUE_TABLE["liver"]

    def ratio(seq):
        return physics.tissue_signal("csf", csf, seq, 3.0, False) / physics.tissue_signal(
            "liver", liver, seq, 3.0, False
        )

    assert ratio(bssfp) > 2.0 and ratio(t1w) < 1.0


def test_fat_suppression_leaves_a_residual_of_fat_only():
    plain = SequenceProtocol("RARE", 3.0, 0.033, echo_train_length=8)
    fs = SequenceProtocol("RARE", 3.0, 0.033, echo_train_length=8, fat_suppression=True)
    fat, liver = mri.TISSUE_TABLE["visceral_fat"], mri.TISSUE_TABLE["liver"]
    assert physics.tissue_signal("visceral_fat", fat, fs, 7, False) == pytest.approx(
        physics.FAT_SUPPRESSION_RESIDUAL * physics.tissue_signal("visceral_fat", fat, plain, 7, False)
    )
    assert physics.tissue_signal("liver", liver, fs, 7, False) == physics.tissue_signal("liver", liver, plain, 7, False)


def test_flowing_blood_is_dark_on_spin_echo_and_bright_on_gradient_echo():
    blood = mri.TISSUE_TABLE["blood_vessel"]
    rare, flash = STUDY_PROTOCOL.sequences["T1w"], SequenceProtocol("FLASH", 0.2, 0.002, 60.0)
    still = {
        s.family: float(physics.signal(blood.pd, blood.t1_ms, blood.t2_ms, 0, "blood", s, 7, False))
        for s in (rare, flash)
    }
    assert physics.tissue_signal("blood_vessel", blood, rare, 7, False) == pytest.approx(0.3 * still["RARE"], rel=1e-5)
    assert physics.tissue_signal("blood_vessel", blood, flash, 7, False) > still["FLASH"]
