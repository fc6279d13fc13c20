"""`napari-hcc predict`: scans in, masks, response and a table out.

Kept apart from the other model commands (training, evaluation) so that a prediction imports only
what reading a scan needs: with the model's exported graph on a CPU, no torch, timm or
segmentation-models-pytorch (tested).
"""

from __future__ import annotations

import time

from napari_hcc.cli.common import progress_bar, say, scan_refs
from napari_hcc.errors import UsageError
from napari_hcc.inference.batch import predict_scans
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.model.loading import load_model


def predict(args) -> int:
    if args.input and (args.t1w or args.t2w or args.ce):
        raise UsageError("give either INPUT or --t1w/--t2w/--ce, not both.")
    refs = scan_refs(args, with_truth=False)
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"output {args.out} exists and is not a folder.")
    model = load_model(args.model)
    if args.liver_gate and not model.card.architecture.get("anatomy"):
        raise UsageError(f"--liver-gate needs a model with an anatomy head; {model.model_id} has none.")
    engine = Engine(
        model, device=args.device, precision=args.precision, batch_size=args.batch_size, backend=args.backend
    )
    post = PostProcess.from_card(
        model.card,
        threshold=args.threshold,
        min_component_mm3=args.min_component_mm3,
        fill_holes=False if args.no_fill_holes else None,
        min_liver_share=args.liver_gate,
    )
    note = (lambda text: None) if args.quiet else say
    note(
        f"model {model.model_id} on {engine.device_name}, {engine.precision}, batch {engine.batch_size}"
        + (", TTA" if args.tta else "")
    )
    if engine.backend_note:
        note(f"note: {engine.backend_note}.")
    if not model.card.trained:
        note("warning: this model is untrained; its masks and probabilities mean nothing (the pipeline is real).")
    if engine.device.type == "cpu" and args.device in (None, "auto"):
        note("note: no GPU found; running on the CPU.")
    start = time.perf_counter()
    failed, done = [], 0
    with progress_bar("predict", "scan", args.quiet, len(refs)) as progress:
        outcomes = predict_scans(
            refs,
            args.out,
            engine,
            tta=args.tta,
            postprocess=post,
            save_probabilities=args.save_probabilities,
            on_mismatch=args.on_mismatch,
            align=_aligner(args.register) if args.register else None,
            dicom_seg=args.dicom_seg,
            read_corrections=args.read_corrections,
        )
        for outcome in outcomes:
            progress(outcome.progress)
            if outcome.error:
                failed.append(outcome)
                if len(refs) > 1:
                    note(f"failed: {outcome.label}: {outcome.error}")
                continue
            done += 1
            for line in outcome.prediction.notes + outcome.prediction.run.events:
                note(f"  {outcome.label}: {line}")
    wall = time.perf_counter() - start
    if len(refs) == 1 and failed:  # one scan: its problem is the command's error
        raise UsageError(failed[0].error)
    print(
        f"predicted {done} of {len(refs)} scan(s) in {wall:.1f} s on {engine.device} ({engine.backend}); "
        f"results in {args.out / 'predictions.csv'}"
        + (f"; {len(failed)} failed: " + ", ".join(o.label for o in failed) if failed else "")
    )
    return 1 if failed else 0


def _aligner(kind: str):
    """The registration asked for by `--register`."""
    from napari_hcc.registration.align import aligner  # noqa: PLC0415 - lazy: SimpleITK (100 MiB), only when asked

    return aligner(kind)
