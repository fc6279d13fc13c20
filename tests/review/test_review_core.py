"""The Qt-free pieces behind the review widget: layers back to a scan, the reading order, recovery
files, and versions left half-written by a killed save."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from napari_hcc.errors import InputError


def fake_layers(scan_ref, **meta_changes):
    from napari_hcc.plugin.layers import scan_layers

    out = []
    for data, kwargs, _ in scan_layers(scan_ref.load())[:3]:
        kwargs["metadata"]["napari_hcc"]["scan"].update(meta_changes)
        out.append(
            SimpleNamespace(
                data=data,
                name=kwargs["name"],
                metadata=kwargs["metadata"],
                scale=kwargs["scale"],
                affine=kwargs["affine"],
                translate=None,
            )
        )
    return out


def test_layers_go_back_to_the_exact_source_scan(tiny_study):
    from napari_hcc.io.study import find_scans
    from napari_hcc.plugin.layers import scan_from_layers

    ref = find_scans(tiny_study)[1]
    scan, geometry = scan_from_layers(*fake_layers(ref))
    original = ref.load()
    assert np.array_equal(scan.t1w, original.t1w) and np.array_equal(scan.ce, original.ce)
    assert np.allclose(scan.affine, original.affine) and (scan.subject, scan.session) == (ref.subject, ref.session)
    assert geometry["shape"] == list(original.shape)


def test_layers_from_different_scans_or_grids_are_refused(tiny_study):
    from napari_hcc.io.study import find_scans
    from napari_hcc.plugin.layers import scan_from_layers

    refs = find_scans(tiny_study)
    a, b = fake_layers(refs[0]), fake_layers(refs[3])
    with pytest.raises(InputError, match="different scans"):
        scan_from_layers(a[0], b[1], a[2])
    bare = SimpleNamespace(
        data=a[1].data[:, ::2, ::2], name="T2 small", metadata={}, scale=(1.2, 0.6, 0.6), affine=None, translate=None
    )
    with pytest.raises(InputError, match="'T2 small' .* is not on the grid of 'T1w'"):
        scan_from_layers(a[0], bare, a[2])
    with pytest.raises(InputError, match="must be different layers"):
        scan_from_layers(a[0], a[0], a[2])
    with pytest.raises(InputError, match="choose a T1w or a T2w"):
        scan_from_layers(None, None, a[2])


def test_a_picker_left_at_none_reads_the_scan_without_that_sequence(tiny_study):
    from napari_hcc.io.study import find_scans
    from napari_hcc.plugin.layers import scan_from_layers

    ref = find_scans(tiny_study)[1]
    t1w, t2w, ce = fake_layers(ref)
    original = ref.load()
    scan, geometry = scan_from_layers(None, t2w, None)  # a T2w-only lab
    assert scan.stand_ins == {"T1w": "T2w", "CE": "T2w"} and np.array_equal(scan.t2w, original.t2w)
    assert np.allclose(scan.affine, original.affine) and geometry["shape"] == list(original.shape)
    scan, _ = scan_from_layers(t1w, t2w, None)  # no contrast agent
    assert scan.stand_ins == {"CE": "T1w"} and np.array_equal(scan.ce, original.t1w)
    assert any("has no CE" in n for n in scan.notes)


def test_layers_without_a_recorded_grid_use_their_napari_geometry():
    from napari_hcc.io.orientation import to_display
    from napari_hcc.plugin.layers import scan_from_layers

    vols = [np.random.default_rng(i).random((6, 20, 24)).astype(np.float32) for i in range(3)]
    layers = [
        SimpleNamespace(data=v, name=n, metadata={}, scale=(2.0, 0.5, 0.5), affine=None, translate=(0, 0, 0))
        for v, n in zip(vols, ("t1", "t2", "ce"))
    ]
    scan, _ = scan_from_layers(*layers)
    shown, world = to_display(scan.t1w, scan.affine)
    assert np.array_equal(shown, vols[0]) and np.allclose(np.linalg.norm(world[:3, :3], axis=0), (2.0, 0.5, 0.5))


def test_review_order_puts_uncorrected_uncertain_scans_first():
    from napari_hcc.review.queue import ScanSummary, review_order

    def s(name, unc, reviewed=False, error=None):
        return ScanSummary(
            SimpleNamespace(subject=name, session="wk1", t1w=Path(name)), 1, unc, 0.5, 10.0, "NK", reviewed, error
        )

    order = review_order(
        [s("a", 0.1), s("b", 0.3), s("c", 0.9, reviewed=True), s("d", float("nan"), error="bad"), s("e", 0.2)]
    )
    assert [x.ref.subject for x in order] == ["b", "e", "a", "c", "d"]


def test_recovery_files_round_trip_and_are_keyed_by_the_images(tmp_path):
    from napari_hcc.review import recovery

    files = {}
    for role in ("T1w", "T2w", "CE"):
        files[role] = tmp_path / f"{role}.nii.gz"
        files[role].write_bytes(role.encode() * 100)
    key = recovery.scan_key(files)
    assert key == recovery.scan_key({k: str(v) for k, v in files.items()})
    mask = np.zeros((4, 5, 6), np.uint8)
    mask[1, 2, 3] = 1
    recovery.write_recovery(key, mask, "sub-a ses-b", "model@1", folder=tmp_path / "rec")
    found = recovery.read_recovery(key, folder=tmp_path / "rec")
    assert np.array_equal(found.mask, mask) and found.label == "sub-a ses-b" and found.model_id == "model@1"
    files["CE"].write_bytes(b"changed")
    assert recovery.scan_key(files) != key
    (tmp_path / "rec" / f"{key}.npz").write_bytes(b"not a zip")  # damaged: ignored, not a crash
    assert recovery.read_recovery(key, folder=tmp_path / "rec") is None
    recovery.discard_recovery(key, folder=tmp_path / "rec")
    assert not (tmp_path / "rec" / f"{key}.npz").exists()


def test_a_half_written_version_is_ignored_and_skipped(tiny_study, tmp_path):
    import shutil

    from napari_hcc.io import bids
    from napari_hcc.io.study import find_scans
    from napari_hcc.io.volume import load_volume
    from napari_hcc.review.trainingset import save_correction

    tiny_study = Path(shutil.copytree(tiny_study, tmp_path / "study"))
    ref = find_scans(tiny_study)[1]
    mask = load_volume(ref.mask, "mask").data > 0
    first = save_correction(tiny_study, ref.subject, ref.session, mask, prediction=mask)
    # A save killed after writing its mask but before its sidecar:
    orphan = bids.correction_path(tiny_study, ref.subject, ref.session, first.version + 1)
    orphan.write_bytes(first.mask.read_bytes())
    assert bids.correction_versions(tiny_study, ref.subject, ref.session) == [first.version]
    assert bids.latest_correction(tiny_study, ref.subject, ref.session) == first.mask
    third = save_correction(tiny_study, ref.subject, ref.session, mask)
    assert third.version == first.version + 2
    assert bids.correction_versions(tiny_study, ref.subject, ref.session) == [first.version, third.version]
