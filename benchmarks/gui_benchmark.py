"""Responsiveness of the HCC Review widget: `xvfb-run -a python benchmarks/gui_benchmark.py [--runs 5]`.

Opens napari (a real window under Xvfb), the sample scan and the widget, waits for the model to be
loaded in the background, then presses Run several times and measures:

* Run -> mask on screen: from the click to the first canvas redraw after the "tumor" layer appears
  or receives the new mask;
* the longest stall of the Qt event loop during the run: a 5 ms QTimer records when it fires, and
  the longest gap between two firings (from the click to half a second after the result) is the
  longest time the viewer could not react to the mouse;
* of that, the plugin's own share: the longest single call of the widget's Qt-thread handlers (Run,
  progress, result, finish, plots shown);
* for comparison, the same stall measure for napari alone: moving to another slice of the same
  viewer with nothing running (its canvas redraw; on Xvfb with Mesa's software OpenGL this is slow).

Prints one Markdown table row per setting (TTA off and on) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    import napari
    from qtpy.QtCore import QEventLoop, QTimer

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    viewer.open_sample("napari-hcc", "rat_control")
    dock_start = time.perf_counter()
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    print(f"HCC Review docked in {time.perf_counter() - dock_start:.2f} s (the Qt thread is blocked while it docks)")

    def spin(seconds: float = 0.0, until=None) -> None:
        """Run Qt's own event loop, as napari does (it sleeps when nothing happens), for `seconds` or until
        `until()` is true (checked every 10 ms), rather than polling `processEvents` in a loop."""
        loop = QEventLoop()
        end = time.perf_counter() + seconds
        check = QTimer(interval=10)
        check.timeout.connect(lambda: loop.quit() if (until() if until else time.perf_counter() >= end) else None)
        check.start()
        loop.exec()
        check.stop()

    load_start = time.perf_counter()
    spin(until=lambda: bool(widget.session.engines))  # the background warm-up: the model's load
    print(f"model ready in the background {time.perf_counter() - load_start:.2f} s after docking")

    handler_ms: list[float] = []

    def timed(obj, name):
        original = getattr(obj, name)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                handler_ms.append((time.perf_counter() - t) * 1000)

        setattr(obj, name, wrapper)

    for name in ("run", "_on_update", "_on_finished"):  # everything the widget does on the Qt thread during a run
        timed(widget, name)
    for plot in (widget.panel.slice_plot, widget.panel.week_plot):
        timed(plot, "_on_rendered")

    ticks: list[float] = []
    timer = QTimer(interval=5, timeout=lambda: ticks.append(time.perf_counter()))
    timer.start()

    def slice_change_stall(step: int) -> float:
        spin(0.3)
        ticks.clear()
        t0 = time.perf_counter()
        viewer.dims.set_current_step(0, step)
        spin(0.4)
        return float(np.diff([t0] + [t for t in ticks if t >= t0]).max())

    napari_alone = [slice_change_stall(k % 15) for k in range(3, 3 + args.runs + 1)][1:]
    drawn: list[float] = []
    canvas = viewer.window._qt_viewer.canvas._scene_canvas
    canvas.events.draw.connect(lambda _e: drawn.append(time.perf_counter()))

    rows = []
    for tta in (False, True):
        widget.tta_box.setChecked(tta)
        to_screen, stalls, compute, handlers = [], [], [], []
        for _ in range(args.runs + 1):  # the first run of each setting warms the caches and is not counted
            spin(0.3)
            ticks.clear()
            drawn.clear()
            handler_ms.clear()
            inserted: list[float] = []
            # each run's hooks append to that run's list and are disconnected before the next run
            hook = viewer.layers.events.inserted.connect(
                lambda e: inserted.append(time.perf_counter()) if e.value.name == "tumor" else None  # noqa: B023
            )
            if "tumor" in viewer.layers:  # later runs put the new mask into the same layer
                viewer.layers["tumor"].events.data.connect(lambda _e: inserted.append(time.perf_counter()))  # noqa: B023
            t0 = time.perf_counter()
            widget.run()
            spin(until=lambda: widget.worker is None)
            spin(0.5)
            viewer.layers.events.inserted.disconnect(hook)
            t_layer = inserted[0]
            t_draw = next((t for t in drawn if t >= t_layer), float("nan"))
            gaps = np.diff([t0] + [t for t in ticks if t >= t0])
            to_screen.append(t_draw - t0)
            stalls.append(float(gaps.max()) if len(gaps) else float("nan"))
            compute.append(widget.session.prediction.run.timings["total"])
            handlers.append(max(handler_ms) / 1000)
        to_screen, stalls, compute, handlers = to_screen[1:], stalls[1:], compute[1:], handlers[1:]
        rows.append(
            (
                tta,
                statistics.median(to_screen),
                max(to_screen),
                statistics.median(stalls),
                max(stalls),
                statistics.median(compute),
                statistics.median(handlers),
                max(handlers),
            )
        )

    timer.stop()
    engine = next(iter(widget.session.engines.values()))
    print(f"device: {engine.device_name}, precision {engine.precision}; {args.runs} runs each")
    print(
        "| TTA | Run -> mask on screen, median (max) | longest event-loop stall, median (max) | longest plugin handler, median (max) | inference alone (median) |"
    )
    print("|---|---|---|---|---|")
    for tta, med, worst, stall_med, stall_max, comp, h_med, h_max in rows:
        print(
            f"| {'on' if tta else 'off'} | {med * 1000:.0f} ms ({worst * 1000:.0f} ms) | {stall_med * 1000:.0f} ms ({stall_max * 1000:.0f} ms) | "
            f"{h_med * 1000:.0f} ms ({h_max * 1000:.0f} ms) | {comp * 1000:.0f} ms |"
        )
    print(
        f"napari alone, moving one slice with nothing running: longest stall {statistics.median(napari_alone) * 1000:.0f} ms median "
        f"({max(napari_alone) * 1000:.0f} ms max)"
    )
    viewer.close()


if __name__ == "__main__":
    main()
