"""The one progress-and-cancel contract of every long task.

Long work (inference, study summaries, training and fine-tuning, readout fitting, simulation,
evaluation) reports progress in one shape and is stopped in one way:

* **progress**: a `Progress` value, either yielded by a generator (`Engine.steps`, the GUI's workers)
  or passed to a callback `progress(update)` (the `ProgressFn` type). `done` of `total` steps, what a
  step is (`unit`), and for training the losses of the step (`detail`).
* **cancel**: any object with `is_set()` (a `threading.Event`), named `cancel` everywhere. It is
  checked between steps; when it is set the task raises `Cancelled` (or, where the task has a result
  to give back, returns one that says it was cancelled).

The core never prints and never imports tqdm: the CLI turns `Progress` into tqdm bars
(`cli.progress_bar`), the napari widgets into progress bars and status lines.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from napari_hcc.errors import Cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """`done` of `total` steps of a task; `unit` names a step ("batch", "scan", "epoch")."""

    done: int
    total: int
    unit: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[Progress], None]


class CancelFlag(Protocol):
    """What a task checks between steps: a `threading.Event` is one."""

    def is_set(self) -> bool: ...


def report(progress: ProgressFn | None, done: int, total: int, unit: str = "", **detail: Any) -> None:
    """Call `progress` (if any) with one update."""
    if progress is not None:
        progress(Progress(done, total, unit, detail))


def is_cancelled(cancel: CancelFlag | None) -> bool:
    return cancel is not None and cancel.is_set()


def check_cancel(cancel: CancelFlag | None, what: str) -> None:
    """Raise `Cancelled("<what> was cancelled")` when the caller asked to stop."""
    if is_cancelled(cancel):
        raise Cancelled(f"{what} was cancelled")


def drain(steps: Generator[Progress, None, T], progress: ProgressFn | None = None) -> T:
    """Run a `Progress`-yielding generator to its end, passing each update to `progress`; its value."""
    while True:
        try:
            update = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(update)
