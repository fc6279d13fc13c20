"""Kill napari while the review widget is saving corrections: nothing saved is lost, nothing
half-written is taken for a correction, and the next save carries on."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

CHILD = textwrap.dedent("""
    import hashlib, time
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_hcc.gui.review_widget import ReviewWidget

    viewer = napari.Viewer(show=False)
    viewer.open_sample("napari-hcc", "rat_control")
    widget = ReviewWidget(viewer)
    widget.run()
    app = QApplication.instance()
    while widget.worker is not None or widget.session.prediction is None:
        app.processEvents()
        time.sleep(0.01)
    labels = viewer.layers["tumor"]
    for i in range(10000):
        labels.paint((7, 10 + i % 140, 10), 1)
        print(f"saving {i + 1}", flush=True)
        record = widget.save_correction()
        digest = hashlib.sha256(record.mask.read_bytes()).hexdigest()
        print(f"saved {record.version} {digest} {int((labels.data > 0).sum())}", flush=True)
""")


@pytest.mark.parametrize("seed", [0, 1])
def test_killing_napari_during_a_save_loses_nothing(tmp_path, seed):
    from napari_hcc.io import bids
    from napari_hcc.plugin.sample import sample_scan_ref
    from napari_hcc.review.trainingset import save_correction

    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "home"), NAPARI_HCC_RECOVERY=str(tmp_path / "recovery"))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    saved = {}
    rng = random.Random(seed)
    try:
        for line in child.stdout:
            words = line.split()
            if words[0] == "saved":
                saved[int(words[1])] = (words[2], int(words[3]))
            elif words[0] == "saving" and len(saved) >= 3 + seed:
                import time

                time.sleep(rng.uniform(0.0, 0.08))  # somewhere inside the save
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=30)
    assert len(saved) >= 3, "the child never got to save"

    root = tmp_path / "home" / "napari-hcc" / "sample-study"
    folder = bids.anat_dir(root, "rat01", "wk2", bids.CORRECTIONS_PIPELINE)
    t1w = nib.load(sample_scan_ref("Control").t1w)
    complete = bids.correction_versions(root, "rat01", "wk2")
    assert set(saved) <= set(complete)  # every save that returned is there
    for version in complete:
        mask_path = bids.correction_path(root, "rat01", "wk2", version)
        img = nib.load(mask_path)
        data = np.asarray(img.dataobj)  # reads the whole gzip stream: not truncated
        assert img.shape == t1w.shape and np.array_equal(img.affine, t1w.affine)
        side = json.loads(bids.sidecar(mask_path).read_text())
        assert side["version"] == version and side["voxels"] == int(data.sum())
        if version in saved:
            digest, voxels = saved[version]
            assert hashlib.sha256(mask_path.read_bytes()).hexdigest() == digest and int(data.sum()) == voxels
    for path in folder.iterdir():  # whatever a reader can see is whole
        if path.name.startswith("."):
            continue
        if path.name.endswith(".json"):
            json.loads(path.read_text())
        else:
            np.asarray(nib.load(path).dataobj)
    # The next save takes a fresh number above anything on disk, and is complete.
    mask = np.asarray(nib.load(bids.correction_path(root, "rat01", "wk2", complete[-1])).dataobj)
    record = save_correction(root, "rat01", "wk2", mask)
    assert record.version == bids.next_correction_version(root, "rat01", "wk2") - 1 > complete[-1]
    assert bids.correction_versions(root, "rat01", "wk2")[-1] == record.version
    assert not list(folder.glob(".*.tmp*"))  # stale temporary files were cleared under the lock
