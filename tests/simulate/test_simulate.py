"""The simulated cohort: files, geometry, determinism, biology per arm and week, histology, size bound."""

import csv
import filecmp
import json

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.evaluation.size_baseline import records_from_biology, records_from_study, size_only_auroc
from napari_hcc.io import bids
from napari_hcc.simulate.biology import draw_cohort, tumor_state
from napari_hcc.simulate.cohort import simulate_study
from napari_hcc.vocabulary import ARMS, COMPONENTS


def _participants(root):
    with open(root / "participants.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_study_layout_and_geometry(tiny_study):
    rows = _participants(tiny_study)
    assert [r["arm"] for r in rows] == list(ARMS)
    assert set(rows[0]) >= {"participant_id", "arm", "strain", "histology_viability", "histology_apoptosis"}
    assert json.loads((tiny_study / "dataset_description.json").read_text())["BIDSVersion"]
    for r in rows:
        sub = r["participant_id"][4:]
        for ses in ("wk0", "wk2"):
            for key in bids.SEQUENCES:
                img = nib.load(bids.image_path(tiny_study, sub, ses, key))
                assert img.shape == (160, 160, 15)
                assert img.get_data_dtype() == np.int16  # integer-scaled, like scanner output
                assert np.allclose(img.header.get_zooms(), (0.3, 0.3, 1.2))
                assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
                assert img.header["sform_code"] == 1
                side = json.loads(bids.sidecar(bids.image_path(tiny_study, sub, ses, key)).read_text())
                assert side["MagneticFieldStrength"] == 7.0 and side["RepetitionTime"] > side["EchoTime"] > 0
            mask = nib.load(bids.truth_mask_path(tiny_study, sub, ses))
            assert np.array_equal(mask.affine, img.affine)
            assert set(np.unique(np.asarray(mask.dataobj))) == {0, 1}


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = simulate_study(tmp_path / "a", rats_per_arm=1, weeks=(1,), seed=5, workers=1)
    b = simulate_study(tmp_path / "b", rats_per_arm=1, weeks=(1,), seed=5, workers=2)
    c = simulate_study(tmp_path / "c", rats_per_arm=1, weeks=(1,), seed=6, workers=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 40
    for f in files:
        assert filecmp.cmp(a / f, b / f, shallow=False), f
    t1 = "sub-rat01/ses-wk1/anat/sub-rat01_ses-wk1_T1w.nii.gz"
    assert not filecmp.cmp(a / t1, c / t1, shallow=False)


def test_tumor_sizes_per_arm_and_week_follow_the_published_study():
    rats = draw_cohort(3, 150)
    d = {
        (arm, w): np.array([tumor_state(r, w).diameter_mm for r in rats if r.arm == arm])
        for arm in ARMS
        for w in range(4)
    }
    for arm in ARMS:  # baseline about 5.3 mm, before treatment, the same in every arm
        assert 4.8 < np.median(d[arm, 0]) < 5.8
    # Week 2: Control about 14 mm with a wide spread, Combination about 6 mm, the others in between.
    assert 11.0 < d["Control", 2].mean() < 16.0 and d["Control", 2].std() > 3.5
    assert 5.0 < d["Combination", 2].mean() < 7.5
    for arm in ("Sorafenib", "NK"):
        assert d["Combination", 2].mean() < d[arm, 2].mean() < d["Control", 2].mean()


def test_nk_pseudo_progression_swells_while_viable_tissue_falls():
    rats = [r for r in draw_cohort(4, 150) if r.arm in ("NK", "Sorafenib")]
    nk = [tumor_state(r, 1) for r in rats if r.arm == "NK"]
    sor = [tumor_state(r, 1) for r in rats if r.arm == "Sorafenib"]
    assert np.mean([s.edema for s in nk]) > 0.15  # infiltrate and edema
    assert np.mean([s.diameter_mm for s in nk]) > np.mean([s.diameter_mm for s in sor])
    nk_rats = [r for r in rats if r.arm == "NK"]
    viable_volume = [tumor_state(r, w).viable * tumor_state(r, w).volume_mm3 for r in nk_rats for w in (1,)]
    total_volume = [tumor_state(r, w).volume_mm3 for r in nk_rats for w in (1,)]
    assert np.mean(viable_volume) / np.mean(total_volume) < 0.65


def test_composition_maps_are_fractions_inside_the_mask_and_differ_by_arm(tiny_study):
    viable = {}
    for r in _participants(tiny_study):
        sub = r["participant_id"][4:]
        mask = np.asarray(nib.load(bids.truth_mask_path(tiny_study, sub, "wk2")).dataobj) > 0
        maps = {c: nib.load(bids.truth_fraction_path(tiny_study, sub, "wk2", c)).get_fdata() for c in COMPONENTS}
        total = sum(maps.values())
        assert total.max() <= 1.0 + 1e-4 and min(m.min() for m in maps.values()) >= 0
        assert total[mask].mean() > 0.8 and total[~mask].max() < 0.5  # partial volume only at the edge
        viable[r["arm"]] = maps["viable"][mask].sum() / total[mask].sum()
    assert viable["Control"] > viable["Combination"]


def test_histology_is_consistent_with_the_maps(tiny_study):
    for r in _participants(tiny_study):
        sub, ses = r["participant_id"][4:], r["histology_session"][4:]
        mask = np.asarray(nib.load(bids.truth_mask_path(tiny_study, sub, ses)).dataobj) > 0
        maps = {
            c: nib.load(bids.truth_fraction_path(tiny_study, sub, ses, c)).get_fdata()[mask].sum() for c in COMPONENTS
        }
        whole_viable = maps["viable"] / sum(maps.values())
        he = float(r["histology_viability"])
        tunel = float(r["histology_apoptosis"])
        assert 0 <= he <= 1 and abs(he - whole_viable) < 0.25  # a few sections differ from the whole tumor
        assert 0.005 < tunel < 0.2


def test_image_contrast_comes_from_tissue_and_treatment(tiny_study):
    """Tumor is bright on T2w against liver; untreated viable tumor takes up more contrast."""
    rows = {r["arm"]: r["participant_id"][4:] for r in _participants(tiny_study)}
    enhancement = {}
    for arm, sub in rows.items():
        img = {k: nib.load(bids.image_path(tiny_study, sub, "wk2", k)).get_fdata() for k in bids.SEQUENCES}
        tissue = np.asarray(nib.load(bids.truth_tissue_path(tiny_study, sub, "wk2")).dataobj)
        liver, tumor = tissue == 4, tissue == 5
        assert img["T2w"][tumor].mean() / img["T2w"][liver].mean() > 1.3
        enhancement[arm] = (img["CE"][tumor].mean() / img["CE"][liver].mean()) / (
            img["T1w"][tumor].mean() / img["T1w"][liver].mean()
        )
    assert enhancement["Control"] > enhancement["Sorafenib"]


def test_size_alone_does_not_separate_the_arms(tiny_study):
    big = size_only_auroc(records_from_biology(seed=1, rats_per_arm=60))
    assert big["macro_auroc"] <= 0.75, big
    assert big["per_arm"]["Combination"] > 0.75  # size does tell Combination apart, as in the paper
    measured = records_from_study(tiny_study)
    assert len(measured) == 8 and all(r.volume_mm3 > 0 and r.diameter_mm > 0 for r in measured)


@pytest.mark.parametrize("bad", [{"rats_per_arm": 0}, {"weeks": []}, {"weeks": [-1]}])
def test_bad_simulation_arguments(tmp_path, bad):
    with pytest.raises(ValueError):
        simulate_study(tmp_path, **bad)
