"""Screenshot of napari-hcc for the docs: `xvfb-run -a python scripts/screenshot.py OUT.png`.

Opens napari as `napari-hcc view` does (sample study, Study browser docked, tumor slice shown) and
saves the whole window.
"""

import sys
from pathlib import Path

from qtpy.QtWidgets import QApplication

from napari_hcc.gui.launch import open_viewer


def main(out: str) -> None:
    viewer, _ = open_viewer(show=True)
    viewer.window._qt_window.resize(1400, 860)
    for _ in range(20):
        QApplication.processEvents()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images/napari-hcc.png")
