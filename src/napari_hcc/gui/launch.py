"""`napari-hcc view`: napari with the plugin docked and a scan loaded."""

from __future__ import annotations

from pathlib import Path


def open_viewer(path: str | Path | None = None, show: bool = True):
    """A viewer with the Study browser docked and the first scan of `path` (default: the sample)."""
    import napari

    from ..sample import sample_study
    from .study_browser import StudyBrowser

    viewer = napari.Viewer(title="napari-hcc", show=show)
    browser = StudyBrowser(viewer, path if path is not None else sample_study())
    viewer.window.add_dock_widget(browser, name="Study browser (napari-hcc)", area="right")
    if path is None:
        browser.open_scan("rat01", "wk2")
    else:
        browser.open_row(0)
    return viewer, browser


def launch(path: str | Path | None = None) -> int:
    import napari

    open_viewer(path)
    napari.run()
    return 0
