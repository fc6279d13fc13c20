"""Screenshot of a real DICOM folder opened in napari-hcc, for docs/import.md:
`xvfb-run -a python scripts/screenshot_import.py [DICOM_FOLDER] [OUT.png]`.

Opens the folder with the napari-hcc reader (imported once into a BIDS study under the user's data
folder), docks HCC Review, runs the shipped model and saves the whole window. The default folder is
the real T2w-only mouse of ../shared/realdata: the panel shows the stand-ins and "not read".
"""

import sys
import time
from pathlib import Path

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication


def main(folder: str, out: str) -> None:
    viewer = napari.Viewer(show=True)
    viewer.open(folder, plugin="napari-hcc")
    _, review = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    window = viewer.window._qt_window
    window.resize(1500, 1000)
    window.resizeDocks([viewer.window._dock_widgets["HCC Review (napari-hcc)"]], [520], Qt.Orientation.Horizontal)
    app = QApplication.instance()
    review.picker.refresh()
    review.run()
    deadline = time.time() + 300
    while (review.worker is not None or review.session.prediction is None) and time.time() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if review.session.prediction is None:
        raise SystemExit(f"the model gave no result: {review.status.text()}")
    viewer.dims.set_point(0, float(sum(viewer.layers["T2w"].extent.world[:, 0]) / 2))
    viewer.reset_view()
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1]
    folder = sys.argv[1] if len(sys.argv) > 1 else str(here.parent / "shared" / "realdata" / "ucsf_mouse_tumor_dicom")
    main(folder, sys.argv[2] if len(sys.argv) > 2 else "docs/images/imported-dicom-mouse.png")
