"""Screenshot of napari-hcc for the docs:
`xvfb-run -a python scripts/screenshot.py OUT.png [STUDY [SUBJECT/SESSION]] [--read T2w] [--slice N]`.

Opens napari as `napari-hcc view` does (the sample study, or STUDY: a BIDS study, a DICOM folder or a
ParaVision study; HCC Review and Study browser docked, the model run on the scan), waits for the result,
and saves the whole window. `--read T2w` (or `T1w,T2w`, ...) then sets the other sequences' pickers to
"none", hides their layers and runs the model again, as a lab without those sequences would.
"""

import argparse
import time
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_hcc.gui.launch import open_viewer


def process_events(rounds: int, pause: float) -> None:
    app = QApplication.instance()
    for _ in range(rounds):
        app.processEvents()
        time.sleep(pause)


def wait_for_prediction(review, seconds: float) -> float:
    """Let Qt run until the review widget's worker has finished with a prediction; return the deadline."""
    app = QApplication.instance()
    deadline = time.time() + seconds
    while (review.worker is not None or review.session.prediction is None) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if review.session.prediction is None:
        raise SystemExit(f"the model gave no result: {review.status.text()}")
    return deadline


def dock_review(viewer) -> None:
    window = viewer.window._qt_window
    window.resize(1500, 1000)
    window.resizeDocks([viewer.window._dock_widgets["HCC Review (napari-hcc)"]], [520], Qt.Orientation.Horizontal)


def save(viewer, out: str) -> None:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"wrote {out}")


def read_only(viewer, review, roles: set[str]) -> None:
    """Leave the pickers of the other sequences at "none", hide their layers and run the model again."""
    for role, box in review.picker.boxes.items():
        if role not in roles and box.currentIndex() > 0:
            viewer.layers[box.currentText()].visible = False
            box.setCurrentIndex(0)
    review.run()


def main(
    out: str, path: str | None = None, scan: str | None = None, read: str | None = None, at: int | None = None
) -> None:
    viewer, review = open_viewer(path, show=True, session=tuple(scan.split("/")) if scan else None)
    dock_review(viewer)
    app = QApplication.instance()
    deadline = wait_for_prediction(review, 120)
    if read:
        read_only(viewer, review, set(read.split(",")))
        deadline = wait_for_prediction(review, 120)
    plots = (review.panel.slice_plot, review.panel.week_plot)
    while any(p.pending or p.image is None for p in plots) and time.time() < deadline:  # drawn in the background
        app.processEvents()
        time.sleep(0.02)
    process_events(20, 0.01)
    viewer.reset_view()
    if at is not None:  # the displayed slice (the first axis of the layers, inferior to superior)
        viewer.dims.set_current_step(0, at)
    process_events(20, 0.01)
    save(viewer, out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="docs/images/napari-hcc.png")
    ap.add_argument("study", nargs="?")
    ap.add_argument("scan", nargs="?", help="SUBJECT/SESSION")
    ap.add_argument("--read", help="the sequences to read, e.g. T2w or T1w,T2w (the others set to none)")
    ap.add_argument("--slice", type=int, help="show this slice (the first axis of the layers)")
    args = ap.parse_args()
    main(args.out, args.study, args.scan, args.read, args.slice)
