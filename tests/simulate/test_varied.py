"""The varied world: a lab drawn per rat, recorded in the sidecars, each sequence on its own grid, the same
biology as `study`, byte-identical per seed, and read back `--like` as it was acquired."""

import filecmp
import json

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.io.json_files import read_sidecar
from napari_hcc.io.study import find_scans
from napari_hcc.simulate.cohort import simulate_study
from napari_hcc.simulate.grids import PLANE_AXES
from napari_hcc.simulate.labs import draw_lab
from napari_hcc.simulate.mri import TISSUE_TABLE
from napari_hcc.simulate.physics import tissue_class
from napari_hcc.simulate.protocol import GAIN_CLASSES, STUDY_PROTOCOL, protocol_from_study


@pytest.fixture(scope="module")
def varied_study(tmp_path_factory):
    """The rats of `tiny_study` (seed 11), each scanned by a lab of its own."""
    return simulate_study(tmp_path_factory.mktemp("varied"), 1, (0, 2), seed=11, protocol="varied", workers=2)


def _truth(root, rat, week):
    return json.loads(
        next((root / "derivatives" / "truth" / f"sub-{rat}").rglob(f"*wk{week}_desc-tumor_mask.json")).read_text()
    )


def test_each_rat_has_its_own_lab_recorded_and_acquired_on_its_own_grids(varied_study):
    labs = {}
    for rat in ("rat01", "rat02", "rat03", "rat04"):
        protocol = _truth(varied_study, rat, 2)["protocol"]
        assert protocol == _truth(varied_study, rat, 0)["protocol"]  # a rat stays in its lab
        labs[rat] = protocol
        anat = varied_study / f"sub-{rat}" / "ses-wk2" / "anat"
        for role, seq in protocol["sequences"].items():
            suffix = {"T1w": "T1w", "T2w": "T2w", "CE": "ce-gd_T1w"}[role]
            image = nib.load(anat / f"sub-{rat}_ses-wk2_{suffix}.nii.gz")
            sidecar = json.loads((anat / f"sub-{rat}_ses-wk2_{suffix}.json").read_text())
            assert image.shape == (*seq["matrix"], seq["slices"])
            spacing = np.linalg.norm(image.affine[:3, :3], axis=0)
            assert spacing == pytest.approx([*seq["pixel_mm"], seq["slice_mm"] + seq["gap_mm"]])
            slice_world_axis = PLANE_AXES[seq["plane"]][2][0]
            assert np.argmax(np.abs(image.affine[:3, 2])) == slice_world_axis
            assert sidecar["MagneticFieldStrength"] == protocol["field_strength_t"]
            assert (sidecar["PulseSequenceType"], sidecar["RepetitionTime"], sidecar["EchoTime"]) == (
                seq["family"], seq["repetition_time_s"], seq["echo_time_s"],
            )  # fmt: skip
            assert (sidecar["SliceThickness"], sidecar["SlicePlane"]) == (seq["slice_mm"], seq["plane"])
        mask = nib.load(
            next((varied_study / "derivatives" / "truth" / f"sub-{rat}").rglob("*wk2_desc-tumor_mask.nii.gz"))
        )
        reference = protocol["sequences"]["T1w" if "T1w" in protocol["sequences"] else "T2w"]
        assert mask.shape == (*reference["matrix"], reference["slices"])
    described = {json.dumps(p, sort_keys=True) for p in labs.values()}
    assert len(described) == 4  # four rats, four labs
    assert (
        len(
            {p["field_strength_t"] for p in labs.values()}
            | {s["family"] for p in labs.values() for s in p["sequences"].values()}
        )
        >= 3
    )


def test_the_same_seed_gives_the_same_rats_and_tumors_under_every_protocol(varied_study, tiny_study):
    """The arms' biology does not depend on the lab: the size-only bound on the virtual cohort holds for both."""
    for rat in ("rat01", "rat02", "rat03", "rat04"):
        for week in (0, 2):
            a, b = _truth(varied_study, rat, week), _truth(tiny_study, rat, week)
            assert a["tumor_diameter_mm_nominal"] == b["tumor_diameter_mm_nominal"]
            assert a["composition"] == b["composition"]
            # the masks differ by each lab's partial volume only: a 48 mm^3 tumor in a larger rat's lab of
            # 0.5 x 0.5 x 2.3 mm voxels keeps 62 % of it (rat04, week 0)
            assert a["tumor_volume_mm3_mask"] == pytest.approx(b["tumor_volume_mm3_mask"], rel=0.45)
    participants = (varied_study / "participants.tsv").read_text()
    assert participants.splitlines()[0] == (tiny_study / "participants.tsv").read_text().splitlines()[0]


def test_a_varied_study_loads_as_any_study(varied_study):
    scans = find_scans(varied_study)
    assert len(scans) == 8
    for ref in scans:
        scan = ref.load()
        assert scan.mask is not None and scan.mask.sum() > 0
        assert scan.t2w.shape == scan.mask.shape  # resampled onto the reference grid where grids differ


def test_varied_is_byte_identical_per_seed_whatever_the_workers(varied_study, tmp_path):
    again = simulate_study(tmp_path / "again", 1, (0, 2), seed=11, protocol="varied", workers=1)
    files = sorted(p.relative_to(varied_study) for p in varied_study.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(varied_study, again, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors and len(match) == len(files)


def test_like_a_simulated_study_reproduces_each_labs_acquisition(varied_study, tmp_path):
    """`--like` reads the first session of each role; a study of one lab is read back exactly."""
    lab = _truth(varied_study, "rat01", 0)["protocol"]
    read = protocol_from_study(varied_study)  # rat01 first
    assert read.field_strength_t == lab["field_strength_t"] and set(read.sequences) == set(lab["sequences"])
    for role, seq in read.sequences.items():
        want = lab["sequences"][role]
        for key in ("family", "repetition_time_s", "echo_time_s", "flip_angle_deg", "echo_train_length", "slices",
                    "plane", "slice_mm", "phase_encoding", "fat_suppression"):  # fmt: skip
            assert getattr(seq, key) == want[key], key
        assert list(seq.matrix) == want["matrix"] and list(seq.pixel_mm) == pytest.approx(want["pixel_mm"])
        assert seq.gap_mm == pytest.approx(want["gap_mm"], abs=1e-4)


def test_like_the_real_mouse_study(realdata, tmp_path, capsys):
    """A lab's own scanner: the real mouse's T2w (3 T RARE, 40 axial slices of 2 mm) simulated the same way."""
    assert main(["import", str(realdata / "ucsf_mouse_tumor_dicom"), "-o", str(tmp_path / "real"), "--quiet"]) == 0
    code = main(["simulate", "--out", str(tmp_path / "sim"), "--like", str(tmp_path / "real"), "--rats-per-arm", "1",
                 "--weeks", "0", "--seed", "3", "--quiet"])  # fmt: skip
    assert code == 0 and "like" in capsys.readouterr().out
    real, sim = protocol_from_study(tmp_path / "real"), protocol_from_study(tmp_path / "sim")
    assert sim.field_strength_t == real.field_strength_t == 3 and set(sim.sequences) == {"T2w"}
    a, b = real.sequences["T2w"], sim.sequences["T2w"]
    for key in ("family", "repetition_time_s", "echo_time_s", "echo_train_length", "flip_angle_deg", "matrix",
                "slices", "slice_mm", "plane"):  # fmt: skip
        assert getattr(a, key) == getattr(b, key), key
    assert b.pixel_mm == pytest.approx(a.pixel_mm, abs=1e-4)
    scans = find_scans(tmp_path / "sim")
    assert len(scans) == 4 and all({role for role, _ in ref.stand_ins} == {"T1w", "CE"} for ref in scans)
    assert scans[0].load().mask.sum() > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--protocol", "varied", "--matrix", "128"], "do not apply to --protocol varied"),
        (["--protocol", "varied", "--like", "x"], "give --protocol or --like, not both"),
        (["--protocol", "missing.json"], "missing.json"),
        (["--plane", "sagittal"], "--plane applies to --protocol varied"),
    ],
)
def test_simulate_refuses_what_it_cannot_do_in_one_sentence(tmp_path, capsys, extra, message):
    assert main(["simulate", "--out", str(tmp_path / "s"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "s").exists()


def test_every_lab_draws_its_tissue_gains_and_puts_a_coil_where_the_animal_lies():
    labs = [draw_lab(np.random.default_rng([9, i])) for i in range(300)]
    logs = []
    for lab in labs:
        seqs = lab.sequences
        assert all(seq.tissue_gain.keys() == set(GAIN_CLASSES) for seq in seqs.values())
        if "CE" in seqs:  # the same acquisition after contrast: the same unmodelled contrast
            assert seqs["CE"].tissue_gain == seqs["T1w"].tissue_gain
        logs += [np.log(v) for v in seqs["T2w"].tissue_gain.values()]
        sides = {seq.coil_side for seq in seqs.values()}
        assert len(sides) == 1
        if seqs["T2w"].plane == "coronal":  # a loop on the back or belly lies behind the slab's slices
            assert sides <= {"axis0-", "axis0+", "axis2-", "axis2+"}
        else:
            assert sides <= {"axis0-", "axis0+", "axis1-", "axis1+"}
    assert np.exp(min(logs)) >= 0.5 and np.exp(max(logs)) <= 2.0 and 0.24 < np.std(logs) < 0.32
    bssfp = np.mean([lab.sequences["T2w"].family == "bSSFP" for lab in labs])
    assert 0.14 < bssfp < 0.26
    assert not any(seq.tissue_gain for seq in STUDY_PROTOCOL.sequences.values())
    # every tissue class the physics knows has a gain to draw (the tumor takes its liver's)
    assert set(GAIN_CLASSES) == {tissue_class(name) for name in TISSUE_TABLE} - {"tumor"} | {"other"}


def test_a_lab_made_to_scan_sagittal_keeps_every_other_draw():
    for i in range(60):
        drawn, sagittal = (draw_lab(np.random.default_rng([9, i]), plane) for plane in (None, "sagittal"))
        assert sagittal.field_strength_t == drawn.field_strength_t
        assert sagittal.sequences.keys() == drawn.sequences.keys()
        for role, seq in sagittal.sequences.items():
            other = drawn.sequences[role]
            assert (seq.family, seq.repetition_time_s, seq.echo_time_s, seq.snr) == (
                other.family, other.repetition_time_s, other.echo_time_s, other.snr,
            )  # fmt: skip
            assert seq.plane == "sagittal" and seq.coil_side in {"axis0-", "axis0+", "axis2-", "axis2+"}
            # the slices span the rat's width (41 mm for the standard rat), not its length
            assert 20.0 <= seq.slices * (seq.slice_mm + seq.gap_mm) <= 80.0


def test_a_sagittal_cohort_is_acquired_across_the_rats_width_and_reads_as_any_study(tmp_path):
    root = simulate_study(tmp_path / "sag", 1, (2,), seed=11, protocol="varied", workers=2, plane="sagittal")
    params = json.loads((root / "code" / "simulation.json").read_text())
    assert params["plane"] == "sagittal"
    scans = find_scans(root)
    assert len(scans) == 4
    for ref in scans:
        assert np.argmax(np.abs(nib.load(ref.t2w).affine[:3, 2])) == 0  # slices stacked left to right
        assert read_sidecar(ref.t2w)["SlicePlane"] == "sagittal"
        assert ref.load().mask.sum() > 0
    with pytest.raises(ValueError, match="varied world only"):
        simulate_study(tmp_path / "no", 1, (2,), protocol=STUDY_PROTOCOL, plane="sagittal")
