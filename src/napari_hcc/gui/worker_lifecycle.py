"""Background workers that end cleanly whatever the reader does.

Every worker the plugin starts goes through `start`, with the cancel flag it checks. When the process
ends (napari quits, or a script that opened a viewer returns) the running workers are asked to stop and
waited for, before Python tears its modules and Qt objects down under them: a worker still loading
the model when a script closed its viewer used to end the process with SIGABRT or a segmentation
fault. A widget that is closed or deleted mid-run cancels its workers (`cancel_when_destroyed`), and
the workers' results are connected to bound methods only, which Qt disconnects with their widget.
"""

from __future__ import annotations

import atexit
import threading
from functools import partial

from qtpy.QtCore import QObject, QThreadPool
from qtpy.QtWidgets import QApplication

#: the cancel flags of running workers, by worker
_RUNNING: dict[object, threading.Event | None] = {}
_HOOKED = False
WAIT_MS = 15_000


def start(worker, cancel: threading.Event | None = None) -> None:
    """Start `worker` (a napari worker), remembering its cancel flag until it finishes."""
    _hook_exit()
    _RUNNING[worker] = cancel
    worker.finished.connect(partial(_RUNNING.pop, worker, None))  # forget it once it has finished
    worker.start()


def stop_all(wait_ms: int = WAIT_MS) -> bool:
    """Ask every running worker to stop and wait for the thread pool; True when all ended in time."""
    for worker, cancel in list(_RUNNING.items()):
        if cancel is not None:
            cancel.set()
        quit_ = getattr(worker, "quit", None)
        if quit_ is not None:
            quit_()  # a generator worker stops at its next yield
    return QThreadPool.globalInstance().waitForDone(wait_ms)


def cancel_when_destroyed(widget: QObject, *flags: threading.Event) -> None:
    """Set the flags when `widget` is destroyed (the dock widget closed, the viewer closed)."""
    widget.destroyed.connect(partial(_set_all, flags))


def _set_all(flags, *_) -> None:
    """A destroyed-slot that sets the flags (bound with functools.partial: no reference to the widget)."""
    for flag in flags:
        flag.set()


def _hook_exit() -> None:
    """At napari's quit and at the interpreter's exit, stop and wait for the workers (once)."""
    global _HOOKED
    if _HOOKED:
        return
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(stop_all)
    atexit.register(stop_all)
    _HOOKED = True
