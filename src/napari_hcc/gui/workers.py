"""Background work for the widgets: plain generators around the core, run by napari's `thread_worker`.
Each yields `Update` messages (gui/messages.py) that the widget turns into layers and labels on the
main thread; none of them touches Qt or napari objects.

The engine (and torch, when torch runs the network or trains) is imported here only inside the worker
thread (`get_engine`, `fine_tune_model`), after the Triton guard: importing torch on napari's Qt thread
would stall the viewer for seconds, and with Mesa's LLVM loaded Triton's import would crash the process
(gui/triton_guard.py). On a CPU with the model's exported graph the engine imports no torch at all.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

from napari_hcc.errors import Cancelled
from napari_hcc.gui.messages import Update, UpdateKind
from napari_hcc.gui.triton_guard import keep_triton_out
from napari_hcc.inference.reread import reread_response
from napari_hcc.io.scan import Scan, ScanRef
from napari_hcc.progress import CancelFlag, Progress
from napari_hcc.review.queue import summarize_scans

if TYPE_CHECKING:
    from napari_hcc.inference.engine import Engine

_ENGINE_LOCK = threading.Lock()


def get_engine(cache: dict, model_spec, device: str, backend: str = "auto") -> Engine:
    """One Engine per (model, device, backend), built on first use (loading and placing the model).
    Thread-safe: the widget warms the cache up in the background while the reader looks around."""
    keep_triton_out()
    from napari_hcc.inference.engine import load_engine  # noqa: PLC0415 - lazy: in the worker thread only

    key = (str(model_spec) if model_spec is not None else None, device, backend)
    with _ENGINE_LOCK:
        if key not in cache:
            cache.clear()  # one model in memory at a time
            cache[key] = load_engine(model_spec, device, backend)
        return cache[key]


def warm_up(cache: dict, model_spec, device: str, backend: str = "auto") -> None:
    """Load and place the model (compile its graph, or import torch) before the first Run (errors wait
    for Run to report them)."""
    try:
        get_engine(cache, model_spec, device, backend)
    except Exception:  # noqa: BLE001 - Run reports the same problem in one sentence
        pass


def _progress_of(steps: Generator[Progress, None, object]):
    """Re-yield a core generator's `Progress` as PROGRESS updates; return its value."""
    while True:
        try:
            update = next(steps)
        except StopIteration as finished:
            return finished.value
        yield Update(UpdateKind.PROGRESS, update)


def predict_scan(
    cache: dict,
    model_spec,
    device: str,
    backend: str,
    scan: Scan,
    tta: bool,
    cancel: CancelFlag,
    siblings: list[ScanRef] = (),
    shown: threading.Event | None = None,
    align: bool = False,
) -> Iterator[Update]:
    """Predict one scan, then (for the weekly plot) the subject's other sessions. The siblings wait
    for `shown` (set once the result is on screen, at most 1 s): computing them while napari draws
    the result competed with the drawing for the two cores and the GIL. With `align`, the T2w and CE
    are first registered to the T1w (and the layers updated to show what the model reads)."""
    if align:
        yield Update(UpdateKind.STATUS, "aligning the T2w and CE to the T1w (rigid, mutual information)…")
        from napari_hcc.registration.align import align_scan  # noqa: PLC0415 - lazy: SimpleITK, only when asked

        scan = align_scan(scan)
        yield Update(UpdateKind.ALIGNED, scan)
    yield Update(UpdateKind.STATUS, "loading the model…")
    engine = get_engine(cache, model_spec, device, backend)
    yield Update(UpdateKind.ENGINE, engine)
    yield Update(UpdateKind.STATUS, f"predicting on {engine.device_name}…")
    try:
        prediction = yield from _progress_of(engine.steps(scan, tta=tta, cancel=cancel, read_history=False))
        yield Update(UpdateKind.PREDICTION, prediction)  # the mask on screen first; the rat's earlier sessions next
        if prediction.response.pending:
            yield Update(UpdateKind.STATUS, "reading the response beside the rat's earlier sessions…")
            yield Update(UpdateKind.RESPONSE, engine.complete_response(prediction, scan, cancel))
    except Cancelled:
        yield Update(UpdateKind.CANCELLED)
        return
    if siblings and shown is not None:
        shown.wait(1.0)
    for summary in summarize_scans(siblings, engine, cancel):
        yield Update(UpdateKind.SUMMARY, summary)


def reread_scan(
    cache: dict, model_spec, device: str, backend: str, prediction, scan: Scan, mask, cancel: CancelFlag
) -> Iterator[Update]:
    """The response read again from the reviewer's mask (inference/reread.py), as RESPONSE."""
    engine = get_engine(cache, model_spec, device, backend)
    yield Update(UpdateKind.STATUS, "reading the response from the edited mask…")
    try:
        yield Update(UpdateKind.RESPONSE, reread_response(engine, prediction, scan, mask, cancel))
    except Cancelled:
        yield Update(UpdateKind.CANCELLED)


def summarize(
    cache: dict,
    model_spec,
    device: str,
    backend: str,
    refs: list[ScanRef],
    cancel: CancelFlag,
    corrections_root=None,
) -> Iterator[Update]:
    """The scan-level numbers of a whole study (for 'Next scan'), one scan at a time."""
    engine = get_engine(cache, model_spec, device, backend)
    yield Update(UpdateKind.ENGINE, engine)
    for n, summary in enumerate(summarize_scans(refs, engine, cancel, corrections_root), start=1):
        yield Update(UpdateKind.SUMMARY, summary)
        yield Update(UpdateKind.PROGRESS, Progress(n, len(refs), "scan"))
    if cancel.is_set():
        yield Update(UpdateKind.CANCELLED)


def fine_tune_model(study_root, base_model, epochs: int, device: str, cancel: CancelFlag) -> Iterator[Update]:
    """'Improve the model with my corrections': fine-tuning's progress as PROGRESS updates, then its
    result as FINE_TUNED (or CANCELLED when the reader pressed Stop)."""
    keep_triton_out()
    from napari_hcc.training.finetune import fine_tune_steps  # noqa: PLC0415 - lazy: torch, in the worker thread only

    steps = fine_tune_steps(study_root, base=base_model, epochs=epochs, device=device, cancel=cancel)
    result = yield from _progress_of(steps)
    yield Update(UpdateKind.CANCELLED if result.cancelled else UpdateKind.FINE_TUNED, result)


def aligned_weeks(reference: Scan, others: list[ScanRef], cancel: CancelFlag) -> Iterator[Update]:
    """The rat's other sessions registered to the one in view (the Study browser's weekly view)."""
    from napari_hcc.registration.weeks import align_weeks  # noqa: PLC0415 - lazy: SimpleITK, only when asked

    try:
        for n, week in enumerate(align_weeks(reference, others, cancel), start=1):
            yield Update(UpdateKind.WEEK, week)
            yield Update(UpdateKind.STATUS, f"aligned {n} of {len(others)} other sessions: {week.alignment.note()}")
    except Cancelled:
        yield Update(UpdateKind.CANCELLED)
