"""Predict many scans into one output folder; one scan's failure never stops the others.

A generator of one `Outcome` per scan, each carrying its `Progress` (scans done of the total), so the
caller owns the progress display (tqdm in the CLI, a progress bar in napari):

    for outcome in predict_scans(refs, out, engine):
        print(outcome.label, outcome.error or outcome.prediction.response.response_probability)

`predictions.csv` is rewritten (atomically) after every scan, so an interrupted run still leaves a
correct table of what was done.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.files import (
    CSV_NAME,
    csv_row,
    earlier_rows,
    failed_row,
    mask_path_for,
    write_csv,
    write_prediction,
)
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.inference.prediction import Prediction
from napari_hcc.inference.reread import from_saved_correction
from napari_hcc.io.scan import Aligner, ScanRef, ref_label
from napari_hcc.progress import Progress
from napari_hcc.vocabulary import MismatchPolicy


@dataclass
class Outcome:
    ref: ScanRef
    label: str
    prediction: Prediction | None = None
    paths: dict | None = None
    error: str | None = None
    seconds: float = 0.0
    #: this scan's place in the batch (scans done of the total), for the caller's progress display
    progress: Progress = field(default_factory=lambda: Progress(0, 0, "scan"))


def predict_scans(
    refs: Iterable[ScanRef],
    out: str | Path,
    engine: Engine,
    tta: bool = False,
    postprocess: PostProcess | None = None,
    save_probabilities: bool = False,
    on_mismatch: MismatchPolicy = "resample",
    align: Aligner | None = None,
    dicom_seg: bool = False,
    read_corrections: bool = False,
) -> Iterator[Outcome]:
    """`read_corrections`: each response read from the session's newest saved correction, where it has one
    (`reread.from_saved_correction`); the model's mask is written all the same."""
    out = Path(out)
    refs = list(refs)
    keys = [mask_path_for(out, r.subject, r.session, r.t1w).relative_to(out).as_posix() for r in refs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise InputError(f"two scans would write the same output {dup}; give them distinct names or output folders.")
    kept = earlier_rows(out, set(keys))
    rows: list[dict[str, str]] = []
    for n, ref in enumerate(refs, start=1):
        label = ref_label(ref)
        start = time.perf_counter()
        try:
            scan = ref.load(on_mismatch, align)
            prediction = engine.predict(scan, tta=tta, postprocess=postprocess, keep_probability=save_probabilities)
            if read_corrections:
                prediction = from_saved_correction(engine, prediction, scan)
            paths = write_prediction(prediction, scan, out, save_probabilities, dicom_seg)
            rows.append(csv_row(prediction, paths["mask"], out))
            outcome = Outcome(ref, label, prediction, paths, None, time.perf_counter() - start)
        except (InputError, ValueError, OSError) as exc:
            rows.append(failed_row(ref.subject, ref.session, str(exc)))
            outcome = Outcome(ref, label, error=str(exc), seconds=time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - the next scan must still run; the error is reported
            text = f"unexpected {type(exc).__name__}: {exc}"
            rows.append(failed_row(ref.subject, ref.session, text))
            outcome = Outcome(ref, label, error=text, seconds=time.perf_counter() - start)
        write_csv(out / CSV_NAME, kept + rows)
        outcome.progress = Progress(n, len(refs), "scan")
        yield outcome
