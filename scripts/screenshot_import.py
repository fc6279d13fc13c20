"""Screenshot of a real DICOM folder opened in napari-hcc, for docs/import.md:
`xvfb-run -a python scripts/screenshot_import.py [DICOM_FOLDER] [OUT.png]`.

Opens the folder with the napari-hcc reader (imported once into a BIDS study under the user's data
folder), docks HCC Review, runs the shipped model and saves the whole window. The default folder is
the real T2w-only mouse of ../shared/realdata: the panel shows the stand-ins and "not read".
"""

import sys
from pathlib import Path

import napari
from screenshot import dock_review, process_events, save, wait_for_prediction  # scripts/screenshot.py


def main(folder: str, out: str) -> None:
    viewer = napari.Viewer(show=True)
    viewer.open(folder, plugin="napari-hcc")
    _, review = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    dock_review(viewer)
    review.picker.refresh()
    review.run()
    wait_for_prediction(review, 300)
    viewer.dims.set_point(0, float(sum(viewer.layers["T2w"].extent.world[:, 0]) / 2))
    viewer.reset_view()
    process_events(50, 0.02)
    save(viewer, out)


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1]
    folder = sys.argv[1] if len(sys.argv) > 1 else str(here.parent / "shared" / "realdata" / "ucsf_mouse_tumor_dicom")
    main(folder, sys.argv[2] if len(sys.argv) > 2 else "docs/images/imported-dicom-mouse.png")
