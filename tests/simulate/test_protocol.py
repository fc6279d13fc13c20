"""Protocols: the schema's one-sentence errors, today's lab in it, and a real study read `--like`."""

import json

import pytest

from napari_hcc.errors import InputError
from napari_hcc.importing.importer import import_study
from napari_hcc.simulate.protocol import STUDY_PROTOCOL, family_of, load_protocol, protocol_from_study


def test_the_study_protocol_is_the_papers_lab(tmp_path):
    """7 T RARE, 160 x 160 pixels of 0.3 mm, 15 slices of 1.2 mm, as the study's code describes its volumes."""
    today = {"T1w": (0.45, 0.009, 2, 22.0), "T2w": (3.0, 0.033, 8, 15.0), "CE": (0.45, 0.009, 2, 24.0)}
    for role, seq in STUDY_PROTOCOL.sequences.items():
        assert (seq.repetition_time_s, seq.echo_time_s, seq.echo_train_length, seq.snr) == today[role]
        assert seq.matrix == (160, 160) and (*seq.pixel_mm, seq.slice_mm, seq.slices) == (0.3, 0.3, 1.2, 15)
        assert (seq.family, seq.plane, seq.ghost_amplitude, seq.kspace_fraction, seq.coil) == (
            "RARE", "axial", 0.0, 1.0, "volume",
        )  # fmt: skip
    assert STUDY_PROTOCOL.field_strength_t == 7.0 and not STUDY_PROTOCOL.draw_artifacts
    path = tmp_path / "study.json"
    path.write_text(STUDY_PROTOCOL.to_json())
    assert load_protocol(path).sequences == STUDY_PROTOCOL.sequences  # the JSON round trip


@pytest.mark.parametrize(
    "data, message",
    [
        ({"sequences": {"T2w": {}}}, "field_strength_t is None; it must be a field in tesla"),
        ({"field_strength_t": 7, "sequences": {"T3w": {}}}, "names role 'T3w'"),
        ({"field_strength_t": 7, "sequences": {"CE": {"family": "RARE", "repetition_time_s": 0.4, "echo_time_s": 0.01}}},
         "neither a T1w nor a T2w"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "EPI", "repetition_time_s": 3, "echo_time_s": 0.03}}},
         "sequences.T2w.family is 'EPI'; it must be one of RARE, FLASH, bSSFP"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 3}}},
         "sequences.T2w.echo_time_s is 3; it must be a number from 0.0005 to 0.5"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 0.03,
                                                       "colour": "red"}}}, "unknown key 'colour'"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 0.03,
                                                       "matrix": [128]}}}, "matrix is [128]; it must be two positive"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 0.03,
                                                       "coil": "birdcage"}}}, "coil is 'birdcage'; it must be one of volume, surface"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 0.03,
                                                       "ghost_amplitude": 2}}}, "ghost_amplitude is 2; it must be a number from 0 to 1"),
        ({"field_strength_t": 7, "draw_artifacts": "yes", "sequences": {"T2w": {}}}, "draw_artifacts is 'yes'; it must be true or false"),
        ({"field_strength_t": 7, "sequences": {"T2w": {}}, "fov": 1}, "has unknown key 'fov'"),
        ({"field_strength_t": 7, "sequences": {"T2w": {"family": "RARE", "repetition_time_s": 3, "echo_time_s": 0.03,
                                                       "tissue_gain": {"brain": 2}}}}, "tissue_gain is {'brain': 2}; it must map tissue classes"),
    ],
)  # fmt: skip
def test_a_bad_protocol_is_one_sentence_naming_the_file_and_key(tmp_path, data, message):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="lab.json") as info:
        load_protocol(path)
    assert message in str(info.value) and str(info.value).count(". ") == 0
    with pytest.raises(InputError, match="not valid JSON"):
        (tmp_path / "broken.json").write_text("{")
        load_protocol(tmp_path / "broken.json")


def test_a_real_study_is_read_like_it_was_acquired(realdata, tmp_path):
    study = tmp_path / "study"
    import_study([realdata / "ucsf_mouse_tumor_dicom"], study)
    import_study([realdata / "ucsf_rat_abdomen_dicom"], study)
    mouse = protocol_from_study(study)  # sessions sorted: sub-MS370 first; both are T2w only
    assert set(mouse.sequences) == {"T2w"} and mouse.field_strength_t == 3
    t2 = mouse.sequences["T2w"]
    assert (t2.family, t2.repetition_time_s, t2.echo_time_s, t2.echo_train_length) == ("RARE", 5.821, 0.102168, 16)
    assert t2.matrix == (256, 256) and t2.pixel_mm == pytest.approx((0.2344, 0.2344)) and t2.slices == 40
    assert t2.slice_mm == 2.0 and t2.plane == "axial" and t2.flip_angle_deg == 160
    rat_only = tmp_path / "rat"
    import_study([realdata / "ucsf_rat_abdomen_dicom"], rat_only)
    fiesta = protocol_from_study(rat_only).sequences["T2w"]
    assert fiesta.family == "bSSFP" and fiesta.plane == "coronal" and fiesta.flip_angle_deg == 50
    # stored reoriented (256 x 92 x 256), acquired as 92 coronal slices of 256 x 256 at 0.625 mm, 0.6 mm thick
    assert fiesta.slices == 92 and fiesta.matrix == (256, 256) and fiesta.pixel_mm == pytest.approx((0.625, 0.625))
    assert fiesta.slice_mm == pytest.approx(0.6) and fiesta.gap_mm == pytest.approx(0.0, abs=1e-3)
    assert family_of({"PulseSequenceType": "Bruker:FLASH"}) == "FLASH"
    with pytest.raises(InputError, match="holds no BIDS sessions"):
        protocol_from_study(tmp_path / "empty")
