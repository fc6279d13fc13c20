"""The inference engine on plain arrays and small files: grids, probabilities, determinism,
cancel, the out-of-memory fallback, normalisation and post-processing."""

import threading

import numpy as np
import pytest
import torch

from helpers import scan_from_files, write_scan
from napari_hcc.errors import Cancelled
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.measure import volume_mm3
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.inference.torch_runner import TorchRunner
from napari_hcc.io.orientation import from_display, to_display
from napari_hcc.io.study import bids_session
from napari_hcc.model.checkpoint import untrained_model


@pytest.fixture(scope="module")
def engine():
    return Engine(untrained_model(), device="cpu", precision="fp32", batch_size=4)


@pytest.fixture(scope="module")
def scan(tiny_study):
    return bids_session(tiny_study / "sub-rat02" / "ses-wk2").load()


def _regrid(scan, kind):
    """The scan's display-frame data written on another voxel grid that covers the same world."""
    vols = [to_display(v, scan.affine)[0] for v in scan.channels()]  # (S, P, L) order
    # a voxel grid described by `affine` whose display frame is exactly `vols`
    if kind == "RAS":
        affine = np.diag([0.3, 0.3, 1.2, 1.0])
    elif kind == "LAS":
        affine = np.diag([-0.3, 0.3, 1.2, 1.0])
    elif kind == "thick_first":  # slices along the first voxel axis, 3 mm thick
        affine = np.array([[0, 0, -0.3, 0.0], [0, -0.3, 0, 0.0], [3.0, 0, 0, 0.0], [0, 0, 0, 1]])
    elif kind == "oblique":  # 12 degrees about the slice normal: still axial slices
        c, s = np.cos(0.21), np.sin(0.21)
        affine = np.eye(4)
        affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([0.3, 0.3, 1.2])
        affine[:3, 3] = [5.0, -3.0, 2.0]
    else:
        raise ValueError(kind)
    shape = from_display(np.zeros(vols[0].shape, np.uint8), affine, _source_shape(vols[0].shape, affine)).shape
    return [from_display(v, affine, shape) for v in vols], affine


def _source_shape(display_shape, affine):
    from nibabel import orientations as ornt

    t = ornt.ornt_transform(ornt.axcodes2ornt(("S", "P", "L")), ornt.io_orientation(affine))
    return ornt.apply_orientation(np.empty(display_shape, np.uint8), t).shape


@pytest.mark.parametrize("kind", ["RAS", "LAS", "thick_first", "oblique"])
def test_mask_lands_on_the_exact_input_grid_and_follows_the_anatomy(tmp_path, engine, scan, kind):
    reference = engine.predict(scan)
    vols, affine = _regrid(scan, kind)
    regridded = scan_from_files(write_scan(tmp_path, vols, affine))
    pred = engine.predict(regridded)
    assert pred.mask.shape == regridded.shape and pred.probability.shape == regridded.shape
    # The same anatomy on another grid gives the same mask, voxel for voxel, in the display frame:
    # no axis, flip or channel was mixed up on the way in or out.
    ref_disp = to_display(reference.mask, scan.affine)[0]
    new_disp = to_display(pred.mask, affine)[0]
    assert np.allclose(
        to_display(reference.probability, scan.affine)[0], to_display(pred.probability, affine)[0], atol=1e-5
    )
    if kind == "thick_first":  # 3 mm slices: the same pixels, but specks now pass the mm^3 size filter
        loose = PostProcess(min_component_mm3=0.0)
        same = [loose.apply(p.probability, a) for p, a in ((reference, scan.affine), (pred, affine))]
        assert np.array_equal(to_display(same[0], scan.affine)[0], to_display(same[1], affine)[0])
        assert volume_mm3(same[1], affine) == pytest.approx(volume_mm3(same[0], scan.affine) * 2.5)
    else:
        assert np.array_equal(ref_disp, new_disp)
        assert pred.tumor_volume_mm3 == pytest.approx(reference.tumor_volume_mm3)
    assert np.allclose(pred.response.arm_probabilities, reference.response.arm_probabilities, atol=1e-6)


def test_probabilities_sum_to_one_and_response_is_one_minus_control(engine, scan):
    pred = engine.predict(scan, tta=True)
    assert pred.response.arm_probabilities.shape == (4,) and pred.response.arm_probabilities.sum() == pytest.approx(
        1.0, abs=1e-9
    )
    assert np.all(pred.response.arm_probabilities >= 0)
    assert pred.response.response_probability == pytest.approx(1.0 - pred.response.arm_probabilities[0])
    assert np.allclose(pred.slices.arm_probabilities.sum(1), 1.0, atol=1e-5)
    assert len(pred.slices.index) == scan.shape[scan.slice_axis] and sorted(pred.slices.index) == list(
        range(len(pred.slices.index))
    )
    assert (
        pred.uncertainty_method == "tta-std"
        and pred.uncertainty >= 0
        and pred.slices.uncertainty.shape == pred.slices.index.shape
    )
    assert set(pred.summary()["arm_probabilities"]) == {"Control", "Sorafenib", "NK", "Combination"}


def test_same_input_gives_identical_results(scan):
    a = Engine(untrained_model(), device="cpu").predict(scan, tta=True)
    b = Engine(untrained_model(), device="cpu").predict(scan, tta=True)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.probability, b.probability)
    assert (
        np.array_equal(a.response.arm_probabilities, b.response.arm_probabilities)
        and a.response.viability == b.response.viability
    )
    assert a.uncertainty == b.uncertainty


def test_scanner_gain_does_not_matter(engine, scan):
    import copy

    scaled = copy.copy(scan)
    scaled.t1w, scaled.t2w, scaled.ce = scan.t1w * 1000.0, scan.t2w * 0.01, scan.ce * 7.0 + 50.0
    a, b = engine.predict(scan), engine.predict(scaled)
    assert np.abs(a.probability - b.probability).max() < 1e-4
    assert np.array_equal(a.mask, b.mask)


def test_swapped_sequences_change_the_input(engine, scan):
    """Channel order is [T1w, T2w, CE]: swapping two sequences must change what the network sees."""
    import copy

    swapped = copy.copy(scan)
    swapped.t1w, swapped.ce = scan.ce, scan.t1w
    assert not np.allclose(engine.predict(scan).probability, engine.predict(swapped).probability)


def test_progress_is_reported_per_batch_and_cancel_stops_between_batches(scan):
    eng = Engine(untrained_model(), device="cpu", batch_size=4)
    calls = []
    eng.predict(scan, progress=lambda update: calls.append((update.done, update.total, update.unit)))
    assert calls == [(1, 4, "batch"), (2, 4, "batch"), (3, 4, "batch"), (4, 4, "batch")]
    stop = threading.Event()
    seen = []

    def progress(update):
        seen.append(update.done)
        stop.set()

    with pytest.raises(Cancelled):
        eng.predict(scan, progress=progress, cancel=stop)
    assert seen == [1]  # stopped after the first batch


def _raise_oom(*_):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_halves_the_batch_then_falls_back_to_cpu(monkeypatch, scan):
    reference = Engine(untrained_model(), device="cpu", precision="fp32", batch_size=16).predict(scan)

    eng = Engine(untrained_model(), device="cpu", precision="fp32", batch_size=16)
    real_forward = TorchRunner.forward

    def small_batches_only(self, x):
        if len(x) > 4:
            _raise_oom()
        return real_forward(self, x)

    monkeypatch.setattr(TorchRunner, "forward", small_batches_only)
    pred = eng.predict(scan)
    assert [e.split(";")[0] for e in pred.run.events] == [
        "out of memory on cpu with a batch of 16",
        "out of memory on cpu with a batch of 8",
    ]
    assert np.array_equal(pred.mask, reference.mask)
    assert np.allclose(pred.probability, reference.probability, atol=1e-5)

    # A GPU that cannot take even one slice: the engine moves to the CPU and finishes the scan.
    # ("meta" stands in for a GPU: it has no memory at all.)
    eng = Engine(untrained_model(), device="cpu", precision="fp32", batch_size=2)
    eng.runner.device, eng.runner.net = torch.device("meta"), eng.net.to("meta")
    eng.device = eng.runner.device

    def gpu_always_full(self, x):
        if self.device.type != "cpu":
            _raise_oom()
        return real_forward(self, x)

    monkeypatch.setattr(TorchRunner, "forward", gpu_always_full)
    pred = eng.predict(scan)
    assert pred.run.events[-1].startswith("out of memory on meta even with a batch of 1; continued on the CPU")
    assert pred.run.device == "cpu"
    assert np.array_equal(pred.mask, reference.mask)


def test_other_errors_are_not_taken_for_out_of_memory(monkeypatch, scan):
    def broken(self, x):
        raise RuntimeError("shape mismatch in conv")

    monkeypatch.setattr(TorchRunner, "forward", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        Engine(untrained_model(), device="cpu").predict(scan)


def test_coarse_and_large_fields_of_view_are_resampled_and_mapped_back(tmp_path, engine):
    rng = np.random.default_rng(3)
    vols = [rng.random((200, 180, 6)).astype(np.float32) * 100 for _ in range(3)]
    affine = np.diag([1.0, 1.0, 5.0, 1.0])  # 200 x 180 mm: larger than the model's field of view
    scan = scan_from_files(write_scan(tmp_path, vols, affine))
    pred = engine.predict(scan)
    assert pred.mask.shape == (200, 180, 6)
    # 180 x 200 mm at the model's 0.375 mm would be 480 x 533 pixels: capped at 384 on the long side
    assert any("resampled to 346x384 pixels of 0.52 mm" in n for n in pred.notes), pred.notes


def test_postprocess_works_in_millimetres():
    affine = np.diag([0.5, 0.5, 2.0, 1.0])  # 0.5 mm^3 voxels
    prob = np.zeros((40, 40, 5), np.float32)
    prob[5:15, 5:15, 1:4] = 0.9  # a 150 mm^3 tumor ...
    prob[8:12, 8:12, 2] = 0.1  # ... with a necrotic hole on one slice
    prob[30, 30, 2] = prob[30, 31, 2] = 0.95  # and a 1 mm^3 speck
    mask = PostProcess(threshold=0.5, min_component_mm3=2.0, fill_holes=True).apply(prob, affine)
    assert mask[30, 30, 2] == 0 and mask[10, 10, 2] == 1 and mask.sum() == 300
    kept = PostProcess(threshold=0.5, min_component_mm3=0.5, fill_holes=False).apply(prob, affine)
    assert kept[30, 30, 2] == 1 and kept[10, 10, 2] == 0
    # Holes are filled within a slice, not through the top or bottom of the stack.
    cup = np.zeros((20, 20, 3), np.float32)
    cup[5:15, 5:15, :] = 0.9
    cup[8:12, 8:12, 1:] = 0.0  # open to the top of the volume, closed on slices 1 and 2 in-plane
    filled = PostProcess(min_component_mm3=0).apply(cup, np.eye(4))
    assert filled[10, 10, 1] == 1 and filled[10, 10, 2] == 1


def test_no_tumor_gives_no_biomarkers_but_valid_arm_probabilities(engine, scan):
    pred = engine.predict(scan, postprocess=PostProcess(threshold=0.999999, min_component_mm3=0, fill_holes=False))
    if pred.mask.any():
        pytest.skip("the untrained network is certain somewhere")
    assert np.isnan(pred.response.viability) and np.isnan(pred.response.apoptosis) and pred.tumor_volume_mm3 == 0
    assert pred.response.arm_probabilities.sum() == pytest.approx(1.0)
    assert any("no tumor found" in n for n in pred.notes)
