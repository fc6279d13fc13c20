"""Helpers of the napari tests: click a button as a reader would, wait for the widget's worker."""

from qtpy.QtCore import Qt


def click(qtbot, button):
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def wait_done(qtbot, widget, timeout=120_000):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)
