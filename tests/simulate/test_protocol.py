"""Protocols: the schema's one-sentence errors, today's lab in it, and a real study read `--like`."""

import json

import pytest

from napari_hcc.errors import InputError
from napari_hcc.importing.importer import import_study
from napari_hcc.simulate import mri
from napari_hcc.simulate.protocol import STUDY_PROTOCOL, family_of, load_protocol, protocol_from_study
from napari_hcc.simulate.render import Grid


def test_the_study_protocol_is_todays_lab(tmp_path):
    by_suffix = {"T1w": "T1w", "T2w": "T2w", "CE": "ce-gd_T1w"}
    for role, seq in STUDY_PROTOCOL.sequences.items():
        today = next(s for s in mri.SEQUENCES if s.suffix == by_suffix[role])
        assert (seq.repetition_time_s, seq.echo_time_s, seq.echo_train_length, seq.snr) == (
            today.repetition_time_s, today.echo_time_s, today.echo_train_length, today.snr_liver,
        )  # fmt: skip
        assert seq.matrix == Grid().shape[:2] and (*seq.pixel_mm, seq.slice_mm) == Grid().spacing
    assert STUDY_PROTOCOL.field_strength_t == mri.FIELD_STRENGTH_T
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
