"""Background work for the review widget: plain generators around the core, run by napari's
`thread_worker`. Each yields small tagged tuples that the widget turns into layers and labels on
the main thread; none of them touches Qt or napari objects.

    ("status", text)              a line for the status label
    ("engine", engine)            the model placed on its device (kept for the next run)
    ("progress", done, total)     batches done
    ("prediction", prediction)    the scan's result: the mask goes on screen now (its response may be pending)
    ("response", prediction)      the same result with the response read beside the rat's earlier sessions
    ("summary", ScanSummary)      another scan's numbers (weekly course, reading order)
    ("cancelled",)                the reader pressed Cancel
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from napari_hcc.errors import Cancelled
from napari_hcc.inference.engine import Engine
from napari_hcc.io.scan import Scan, ScanRef
from napari_hcc.review.queue import summarize_scans

_ENGINE_LOCK = threading.Lock()


def get_engine(cache: dict, model_spec, device: str) -> Engine:
    """One Engine per (model, device), built on first use (loading and placing the model).
    Thread-safe: the widget warms the cache up in the background while the reader looks around."""
    from napari_hcc.gui.triton_guard import keep_triton_out
    from napari_hcc.model.checkpoint import load_model

    keep_triton_out()
    key = (str(model_spec) if model_spec is not None else None, device)
    with _ENGINE_LOCK:
        if key not in cache:
            cache.clear()  # one model in memory at a time
            cache[key] = Engine(load_model(model_spec), device=device)
        return cache[key]


def warm_up(cache: dict, model_spec, device: str) -> None:
    """Import torch and place the model before the first Run (errors wait for Run to report them)."""
    try:
        get_engine(cache, model_spec, device)
    except Exception:  # noqa: BLE001 - Run reports the same problem in one sentence
        pass


def predict_scan(cache: dict, model_spec, device: str, scan: Scan, tta: bool, cancel,
                 siblings: list[ScanRef] = (), shown=None) -> Iterator[tuple]:
    """Predict one scan, then (for the weekly plot) the subject's other sessions. The siblings wait
    for `shown` (set once the result is on screen, at most 1 s): computing them while napari draws
    the result competed with the drawing for the two cores and the GIL."""
    yield ("status", "loading the model…")
    engine = get_engine(cache, model_spec, device)
    yield ("engine", engine)
    yield ("status", f"predicting on {engine.device_name}…")
    try:
        prediction = yield from _tagged(engine.steps(scan, tta=tta, cancel=cancel, read_history=False))
        yield ("prediction", prediction)  # the mask on screen first; the rat's earlier sessions next
        if prediction.response.pending:
            yield ("status", "reading the response beside the rat's earlier sessions…")
            yield ("response", engine.complete_response(prediction, scan, cancel))
    except Cancelled:
        yield ("cancelled",)
        return
    if siblings and shown is not None:
        shown.wait(1.0)
    for summary in summarize_scans(siblings, engine, cancel):
        yield ("summary", summary)


def summarize(cache: dict, model_spec, device: str, refs: list[ScanRef], cancel, corrections_root=None) -> Iterator[tuple]:
    """The scan-level numbers of a whole study (for 'Next scan'), one scan at a time."""
    engine = get_engine(cache, model_spec, device)
    yield ("engine", engine)
    for n, summary in enumerate(summarize_scans(refs, engine, cancel, corrections_root), start=1):
        yield ("summary", summary)
        yield ("progress", n, len(refs))
    if cancel.is_set():
        yield ("cancelled",)


def _tagged(steps):
    """Re-tag the core generator's (done, total) as progress messages; return its value."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        yield ("progress", done, total)
