"""Screenshot of napari-hcc for the docs: `xvfb-run -a python scripts/screenshot.py OUT.png`.

Opens napari as `napari-hcc view` does (sample study, HCC Review and Study browser docked, the
model run on the sample scan), waits for the result, and saves the whole window.
"""

import sys
import time
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

from napari_hcc.gui.launch import open_viewer


def main(out: str) -> None:
    viewer, review = open_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1500, 1000)
    dock = viewer.window._dock_widgets["HCC Review (napari-hcc)"]
    window.resizeDocks([dock], [520], Qt.Orientation.Horizontal)
    app = QApplication.instance()
    deadline = time.time() + 120
    while (review.worker is not None or review.session.prediction is None) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if review.session.prediction is None:
        raise SystemExit(f"the model gave no result: {review.status.text()}")
    plots = (review.panel.slice_plot, review.panel.week_plot)
    while any(p.pending or p.image is None for p in plots) and time.time() < deadline:  # drawn in the background
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images/napari-hcc.png")
