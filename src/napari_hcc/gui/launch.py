"""`napari-hcc view`: napari with the plugin docked, a scan loaded and the model running on it."""

from __future__ import annotations

from pathlib import Path

import napari

from napari_hcc.gui.review_widget import ReviewWidget
from napari_hcc.gui.study_browser import StudyBrowser
from napari_hcc.io.user_paths import sample_study


def open_viewer(path: str | Path | None = None, show: bool = True, run: bool = True, session=None):
    """A viewer with HCC Review and the Study browser docked (tabbed) and the first scan of `path`
    (default: the sample), or its (subject, session), open; with `run`, the model starts on it at once
    (in the background)."""

    viewer = napari.Viewer(title="napari-hcc", show=show)
    browser = StudyBrowser(viewer, path if path is not None else sample_study())
    review = ReviewWidget(viewer)
    viewer.window.add_dock_widget(browser, name="Study browser (napari-hcc)", area="right")
    viewer.window.add_dock_widget(review, name="HCC Review (napari-hcc)", area="right", tabify=True)
    if session is not None:
        browser.open_scan(*session)
    elif path is None:
        browser.open_scan("rat01", "wk2")
    else:
        browser.open_row(0)
    if run:
        review.run()
    return viewer, review


def launch(path: str | Path | None = None) -> int:

    open_viewer(path)
    napari.run()
    return 0
