"""A matplotlib plot drawn off the Qt thread and shown as a picture.

A FigureCanvasQTAgg renders in its paint event, on the Qt thread: two small plots cost 20-40 ms there,
and while they render napari cannot react to the mouse. Here the figure is rendered by Agg in one
background thread (Figure and FigureCanvasAgg only, never pyplot, so no GUI state is touched) and the
finished RGBA image is handed to the Qt thread through a queued signal, where showing it costs about a
millisecond. Only the newest request of a plot is shown, and a resize redraws at the new width.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from qtpy.QtCore import QObject, Qt, QTimer, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy

DrawFn = Callable[[object, object], None]  # (left axes, right twin axes) -> None, runs off the Qt thread

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _plot_thread() -> ThreadPoolExecutor:
    """One thread for every plot: figures are only ever touched by it, one at a time."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="napari-hcc-plots")
        return _executor


class _Bridge(QObject):
    rendered = Signal(object, int)  # (QImage, request number)


class PlotView(QLabel):
    """Shows the picture of a two-axis matplotlib plot; `show_plot(draw)` re-renders it off-thread."""

    def __init__(self, colors: dict, height_px: int = 130, parent=None):
        super().__init__(parent)
        self.colors = colors
        self.setMinimumHeight(height_px)
        self.setMinimumWidth(180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._height = height_px
        self._requested = 0
        self._shown = 0
        self._draw: DrawFn | None = None
        self._figure = None  # created and used by the plot thread only
        self._bridge = _Bridge()
        self._bridge.rendered.connect(self._on_rendered)  # queued: emitted from the plot thread
        self._resize_timer = QTimer(self, singleShot=True, interval=150, timeout=self._redraw)
        self.image: QImage | None = None  # the picture on screen (tests read it)

    @property
    def pending(self) -> bool:
        return self._shown < self._requested

    def show_plot(self, draw: DrawFn) -> None:
        """Render `draw` (called on the plot thread with fresh, themed axes) and show the result."""
        self._draw = draw
        self._requested += 1
        width = max(self.width(), 180)
        ratio = float(self.devicePixelRatioF())
        _plot_thread().submit(self._render, draw, self._requested, width, self._height, ratio)

    def _redraw(self) -> None:
        if self._draw is not None:
            self.show_plot(self._draw)

    def resizeEvent(self, event) -> None:  # Qt's name
        super().resizeEvent(event)
        if self.image is not None and abs(event.size().width() - event.oldSize().width()) > 8:
            self._resize_timer.start()

    # -- the plot thread ---------------------------------------------------------------------------

    def _render(self, draw: DrawFn, number: int, width: int, height: int, ratio: float) -> None:
        try:
            # lazy: matplotlib is imported here, in the plot thread, not on napari's Qt thread at docking
            from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
            from matplotlib.figure import Figure  # noqa: PLC0415

            dpi = 90 * ratio
            if self._figure is None:
                self._figure = Figure(dpi=dpi)
                FigureCanvasAgg(self._figure)
                self._figure.patch.set_facecolor(self.colors["background"])
            fig = self._figure
            fig.set_dpi(dpi)
            fig.set_size_inches(width * ratio / dpi, height * ratio / dpi)
            fig.clear()
            fig.subplots_adjust(left=0.15, right=0.85, bottom=0.24, top=0.95)  # fixed: a layout engine triples the time
            ax = fig.add_subplot(111)
            ax2 = ax.twinx()
            for a in (ax, ax2):
                a.set_facecolor(self.colors["background"])
                a.tick_params(labelsize=6, colors=self.colors["text"])
                a.xaxis.label.set_color(self.colors["text"])
                a.yaxis.label.set_color(self.colors["text"])
                for spine in a.spines.values():
                    spine.set_color(self.colors["text"])
            ax2.patch.set_visible(False)
            draw(ax, ax2)
            fig.canvas.draw()
            rgba = np.array(fig.canvas.buffer_rgba(), copy=True)
            h, w = rgba.shape[:2]
            image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()  # copy: own the pixels
            image.setDevicePixelRatio(ratio)
        except Exception as exc:  # noqa: BLE001 - a plot must never take the viewer down
            image = QImage()
            image.setText("error", f"{type(exc).__name__}: {exc}")
        self._bridge.rendered.emit(image, number)

    # -- back on the Qt thread ---------------------------------------------------------------------

    def _on_rendered(self, image: QImage, number: int) -> None:
        if number < self._requested:  # a newer request is on its way
            self._shown = max(self._shown, number)
            return
        self._shown = number
        self.image = image
        self.setPixmap(QPixmap.fromImage(image))
