"""The per-scan slice store: a cohort of many grids indexed like one array, without padding it all."""

import numpy as np

from napari_hcc.training.slice_store import SliceStore


def _store():
    a = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6) + 1  # one scan: 2 slices of 4 x 6
    b = np.full((3, 8, 2), 7, np.float32)  # another lab's grid: 3 slices of 8 x 2
    return a, b, SliceStore([a, b])


def test_a_store_reads_like_one_array_and_pads_only_a_mixed_selection():
    a, b, store = _store()
    assert len(store) == 5 and store.nbytes == a.nbytes + b.nbytes
    np.testing.assert_array_equal(store[1], a[1])
    np.testing.assert_array_equal(store[-1], b[2])
    one_scan = store[np.array([2, 3, 4])]
    assert one_scan.shape == (3, 8, 2) and np.shares_memory(one_scan, b)  # a view: no copy, no padding
    mixed = store[np.array([4, 0])]
    assert mixed.shape == (2, 8, 6)  # the selection's largest rows and columns
    np.testing.assert_array_equal(mixed[0, :, 2:4], b[2])  # centred
    assert not mixed[0, :, :2].any() and not mixed[0, :, 4:].any()
    np.testing.assert_array_equal(mixed[1, 2:6], a[0])
    assert not mixed[1, :2].any() and not mixed[1, 6:].any()
    np.testing.assert_array_equal(store[0:2], a)
    np.testing.assert_array_equal(store[np.array([True, False, False, False, True])][1, :, 2:4], b[2])


def test_per_scan_reductions_and_a_subset_of_scans_share_the_arrays():
    a, b, store = _store()
    np.testing.assert_array_equal(store.per_slice(lambda p: p.reshape(len(p), -1).max(1)), [24, 48, 7, 7, 7])
    assert store.any(lambda p: p == 48) and not store.any(lambda p: p > 48)
    only_b = store.select_parts([1])
    assert len(only_b) == 3 and np.shares_memory(only_b[0], b)
    assert store[np.array([], int)].shape == (0, 4, 6)
