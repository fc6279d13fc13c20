"""What the background workers tell the widgets: one typed message per update, never a tagged tuple.

A worker (gui/workers.py) is a plain generator run by napari's `thread_worker`; it yields `Update`
values, and the widget that started it dispatches on `Update.kind` (careamics-napari's
`signals/training_status.py` is the model). None of this touches Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import Any


class UpdateKind(Enum):
    STATUS = auto()  #: value: a line for the status label
    ENGINE = auto()  #: value: the model placed on its device (kept for the next run)
    PROGRESS = auto()  #: value: a `Progress` (batches, scans or epochs done of the total)
    ALIGNED = auto()  #: value: the scan with its T2w and CE aligned to the T1w (the layers show it)
    PREDICTION = auto()  #: value: the scan's `Prediction`; the mask goes on screen now (its response may be pending)
    RESPONSE = auto()  #: value: the same prediction with the response read beside the rat's earlier sessions
    SUMMARY = auto()  #: value: another scan's `ScanSummary` (weekly course, reading order)
    CANCELLED = auto()  #: the reader pressed Cancel (or Stop); nothing was changed
    WEEK = auto()  #: value: an `AlignedWeek`, another session of the rat aligned to the one in view
    FINE_TUNED = auto()  #: value: the `FineTuneResult` of "Improve the model"


@dataclass(frozen=True)
class Update:
    kind: UpdateKind
    value: Any = None
