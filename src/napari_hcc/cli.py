"""The `napari-hcc` command line: thin, calling the same core functions as the napari widgets.

Heavy modules (numpy work, torch, napari) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _simulate(args) -> int:
    import time

    from tqdm import tqdm

    from napari_hcc.simulate.cohort import check_arguments, simulate_study
    from napari_hcc.simulate.render import Grid

    check_arguments(args.rats_per_arm, args.weeks)
    grid = Grid(shape=(args.matrix, args.matrix, args.slices), spacing=(args.pixel_mm, args.pixel_mm, args.slice_mm))
    start = time.perf_counter()
    with tqdm(total=args.rats_per_arm * 4 * len(set(args.weeks)), unit="scan", desc="simulate", disable=args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        root = simulate_study(args.out, args.rats_per_arm, args.weeks, args.seed, grid, args.motion_mm, args.workers, progress)
    print(f"wrote {args.rats_per_arm * 4} rats x {len(set(args.weeks))} sessions to {root} in {time.perf_counter() - start:.0f} s")
    return 0


def _check(args) -> int:
    scans = [ref.load(args.on_mismatch) for ref in _scan_refs(args, hint="an INPUT folder", mask=args.mask)]
    for scan in scans:
        mask = f", mask {int(scan.mask.sum())} voxels" if scan.mask is not None else ""
        arm = f" [{scan.arm}]" if scan.arm else ""
        print(f"{scan.label}{arm}: {'x'.join(map(str, scan.shape))} voxels of "
              f"{'x'.join(f'{v:.2f}' for v in scan.spacing)} mm, {scan.orientation}, slice axis {scan.slice_axis}{mask}")
        for note in scan.notes:
            print(f"  note: {note}")
    print(f"{len(scans)} scan(s) ok")
    return 0


def _scan_refs(args, with_truth: bool = True, hint: str = "an INPUT folder (-i)", mask: Path | None = None):
    """The scans named on the command line: three files (one scan), or every scan under INPUT."""
    from napari_hcc.io.study import ScanRef, find_scans

    if args.t1w or args.t2w or args.ce:
        missing = [n for n, v in (("--t1w", args.t1w), ("--t2w", args.t2w), ("--ce", args.ce)) if not v]
        if missing:
            raise _UsageError(f"one scan needs all three files; missing {', '.join(missing)}.")
        return [ScanRef(args.t1w, args.t2w, args.ce, mask)]
    if args.input:
        return find_scans(args.input, with_truth=with_truth)
    raise _UsageError(f"give {hint} or --t1w, --t2w and --ce.")


def _predict(args) -> int:
    import time

    from tqdm import tqdm

    from napari_hcc.inference.batch import predict_scans
    from napari_hcc.model.checkpoint import load_model
    from napari_hcc.inference.engine import Engine
    from napari_hcc.inference.postprocess import PostProcess

    if args.input and (args.t1w or args.t2w or args.ce):
        raise _UsageError("give either INPUT or --t1w/--t2w/--ce, not both.")
    refs = _scan_refs(args, with_truth=False)
    if args.out.exists() and not args.out.is_dir():
        raise _UsageError(f"output {args.out} exists and is not a folder.")
    model = load_model(args.model)
    engine = Engine(model, device=args.device, precision=args.precision, batch_size=args.batch_size)
    post = PostProcess.from_card(model.card, threshold=args.threshold, min_component_mm3=args.min_component_mm3,
                                 fill_holes=False if args.no_fill_holes else None)
    say = (lambda text: None) if args.quiet else (lambda text: tqdm.write(text, file=sys.stderr))
    say(f"model {model.model_id} on {engine.device_name}, {engine.precision}, batch {engine.batch_size}"
        + (", TTA" if args.tta else ""))
    if not model.card.trained:
        say("warning: this model is untrained; its masks and probabilities mean nothing (the pipeline is real).")
    if engine.device.type == "cpu" and args.device in (None, "auto"):
        say("note: no GPU found; running on the CPU.")
    start = time.perf_counter()
    failed, done = [], 0
    with tqdm(total=len(refs), unit="scan", desc="predict", disable=args.quiet) as bar:
        for outcome in predict_scans(refs, args.out, engine, tta=args.tta, postprocess=post,
                                     save_probabilities=args.save_probabilities, on_mismatch=args.on_mismatch):
            bar.update(1)
            if outcome.error:
                failed.append(outcome)
                if len(refs) > 1:
                    say(f"failed: {outcome.label}: {outcome.error}")
                continue
            done += 1
            for line in outcome.prediction.notes + outcome.prediction.events:
                say(f"  {outcome.label}: {line}")
    wall = time.perf_counter() - start
    if len(refs) == 1 and failed:  # one scan: its problem is the command's error
        raise _UsageError(failed[0].error)
    print(f"predicted {done} of {len(refs)} scan(s) in {wall:.1f} s on {engine.device}; "
          f"results in {args.out / 'predictions.csv'}" + (f"; {len(failed)} failed: " + ", ".join(o.label for o in failed) if failed else ""))
    return 1 if failed else 0


def _info(args) -> int:
    from napari_hcc.model.checkpoint import list_models, user_models_folder
    from napari_hcc.model.devices import available_devices

    print("models:")
    for name, folder, card, problem in list_models():
        if card is None:
            print(f"  {name}: unreadable ({problem})")
            continue
        where = folder if folder is not None else "built in, no file"
        metrics = ", ".join(f"{k} {v}" for k, v in list(card.metrics.items())[:4] if not isinstance(v, dict))
        print(f"  {name}: {card.model_id} [{where}]" + (f" ({metrics})" if metrics else ""))
    print(f"  (new model versions go to {user_models_folder()})")
    print("devices:")
    for line in available_devices():
        print(f"  {line}")
    return 0


def _train(args) -> int:
    from napari_hcc.training.trainer import TrainConfig, train

    cfg = TrainConfig(
        studies=args.study, out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        device=args.device, precision=args.precision, init=args.init, encoder_weights=args.encoder_weights,
        corrections_only=args.corrections_only, folds=args.folds, fold=args.fold, patience=args.patience, version=args.version or "", quiet=args.quiet,
    )
    result = train(cfg)
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"trained {result.epochs_run} epoch(s) in {result.seconds:.0f} s ({result.slices_per_second:.1f} slices/s); "
              f"best epoch {result.best_epoch}{' (early stop)' if result.stopped_early else ''}; model in {result.model_dir}")
    return 0


def _fit_readout(args) -> int:
    from tqdm import tqdm

    from napari_hcc.readout.stored import add_readout

    with tqdm(unit="scan", desc="tumor features", disable=args.quiet) as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        card = add_readout(None if args.model == "default" else args.model, args.study, args.out, version=args.version,
                           progress=progress, device=args.device)
    cv = card.readout.get("cross_validation", {})
    print(f"readout fitted on {len(card.readout['fitted_on']['rats'])} rats (rat-grouped CV inside them: arm AUROC "
          f"{cv.get('arm_macro_auroc_pooled')} over each rat's sessions ({cv.get('arm_macro_auroc')} per scan), accuracy "
          f"{cv.get('arm_accuracy_pooled')}, viability RMSE {cv.get('viability_rmse')}, apoptosis RMSE {cv.get('apoptosis_rmse')} "
          f"from {card.readout.get('apoptosis_route')}); model {card.model_id} in {args.out}")
    return 0


def _evaluate(args) -> int:
    from napari_hcc.evaluation import protocols as ev

    if (args.model is None) == (args.cv is None):
        raise _UsageError("give either --model MODEL (a study the model never saw) or --cv K (rat-grouped cross-validation).")
    if args.model is not None:
        results, extra = ev.evaluate_model(args.study, None if args.model == "default" else args.model, device=args.device)
    else:
        results, extra = ev.evaluate_cv(args.study, args.cv, args.out, device=args.device, epochs=args.epochs, seed=args.seed, quiet=args.quiet)
    leaky = ev.evaluate_leaky(args.study, args.cv, args.out, args.device, args.epochs, args.seed, quiet=args.quiet) if args.leaky and args.cv else None
    summary = ev.summarize(results, extra["size"], bootstrap=args.bootstrap, seed=args.seed)
    extra["info"]["bootstrap"] = args.bootstrap
    notes = None
    if args.notes is not None:
        try:
            notes = args.notes.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _UsageError(f"notes file {args.notes} could not be read ({type(exc).__name__}).") from None
    report = ev.write_results(args.out, results, summary, extra["info"], leaky, notes)
    for t in summary["targets"]:
        print(f"{t['metric']}: {t['value']:.3f} (target {t['target']}: {'met' if t['met'] else 'NOT met'})")
    print(f"report: {report}")
    return 0


def _view(args) -> int:
    from napari_hcc.gui.launch import launch

    return launch(args.input)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-hcc",
        description="Preclinical HCC MRI in rats: simulate cohorts, check scans, predict tumor masks and treatment response, view in napari.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated preclinical cohort as a BIDS study")
    sim.add_argument("--out", required=True, type=Path, help="study folder to write")
    sim.add_argument("--rats-per-arm", type=int, default=8, help="rats in each of the 4 arms (default 8)")
    sim.add_argument("--weeks", type=int, nargs="+", default=[0, 1, 2, 3], help="scan weeks; 0 = baseline (default 0 1 2 3)")
    sim.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    sim.add_argument("--matrix", type=int, default=160, help="in-plane matrix (default 160)")
    sim.add_argument("--pixel-mm", type=float, default=0.3, help="in-plane pixel size in mm (default 0.3)")
    sim.add_argument("--slices", type=int, default=15, help="number of axial slices (default 15)")
    sim.add_argument("--slice-mm", type=float, default=1.2, help="slice thickness in mm (default 1.2)")
    sim.add_argument("--motion-mm", type=float, default=0.3, help="largest in-plane shift between sequences (default 0.3; 0 = none)")
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=_simulate)

    chk = sub.add_parser("check", help="load scans, check their geometry and report what was found")
    chk.add_argument("input", nargs="?", type=Path, help="a study, subject, session or original-layout folder")
    chk.add_argument("--t1w", type=Path)
    chk.add_argument("--t2w", type=Path)
    chk.add_argument("--ce", type=Path)
    chk.add_argument("--mask", type=Path)
    chk.add_argument("--on-mismatch", choices=["resample", "refuse"], default="resample",
                     help="sequences on different grids: resample onto the T1w grid (default) or refuse")
    chk.set_defaults(func=_check)

    pred = sub.add_parser("predict", help="segment tumors and estimate treatment response for one or many scans")
    pred.add_argument("-i", "--input", dest="input", type=Path, help="a BIDS study, subject or session folder, or the original layout")
    pred.add_argument("--t1w", type=Path, help="one scan as three files: the T1w ...")
    pred.add_argument("--t2w", type=Path, help="... the T2w ...")
    pred.add_argument("--ce", type=Path, help="... and the contrast-enhanced T1w")
    pred.add_argument("-o", "--out", required=True, type=Path, help="output folder (masks, sidecars, predictions.csv)")
    pred.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    pred.add_argument("--model", default=None, help="a model folder or .safetensors file (default: the shipped model)")
    pred.add_argument("--tta", action="store_true", help="test-time augmentation (4 flips); adds an uncertainty from their spread")
    pred.add_argument("--batch-size", type=int, default=None, help="slices per batch (default 16 on CPU, 32 on GPU)")
    pred.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                      help="auto: mixed precision on GPU, bf16 on CPUs with native bf16, else fp32")
    pred.add_argument("--save-probabilities", action="store_true", help="also write the tumor probability map")
    pred.add_argument("--threshold", type=float, default=None, help="tumor probability threshold (default: the model card's)")
    pred.add_argument("--min-component-mm3", type=float, default=None, help="remove tumor pieces smaller than this (mm^3)")
    pred.add_argument("--no-fill-holes", action="store_true", help="keep holes inside the tumor on each slice")
    pred.add_argument("--on-mismatch", choices=["resample", "refuse"], default="resample",
                      help="sequences on different grids: resample onto the T1w grid (default) or refuse")
    pred.add_argument("--quiet", action="store_true", help="no progress bar or notes")
    pred.set_defaults(func=_predict)

    tr = sub.add_parser("train", help="train (or fine-tune) the multi-task network on one or more studies")
    tr.add_argument("--study", action="append", required=True, type=Path, help="a BIDS study; repeat for several")
    tr.add_argument("--out", required=True, type=Path, help="a new model folder (never overwritten; an unfinished run there resumes)")
    tr.add_argument("--epochs", type=int, default=40)
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW, cosine schedule)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    tr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    tr.add_argument("--init", default=None, help="fine-tune from this model (folder or .safetensors)")
    tr.add_argument("--corrections-only", action="store_true",
                    help="learn only from sessions with a reviewer's saved correction (fine-tuning with --init)")
    tr.add_argument("--encoder-weights", default=None, help="a local EfficientNet-B0 weight file for the encoder (nothing is downloaded)")
    tr.add_argument("--folds", type=int, default=None, help="rat-grouped folds: train without the rats of --fold")
    tr.add_argument("--fold", type=int, default=None)
    tr.add_argument("--patience", type=int, default=10, help="early stopping: epochs without a better validation score (Dice + arm AUROC)")
    tr.add_argument("--version", default=None, help="the model's version (default: the date and time)")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_train)

    ro = sub.add_parser("fit-readout", help="fit the response readout (arm and histology from tumor features) onto a model's network")
    ro.add_argument("--model", default="default", help="the model whose network finds the tumor (folder, or 'default')")
    ro.add_argument("--study", action="append", required=True, type=Path, help="a BIDS study with masks, arms and histology; repeat for several")
    ro.add_argument("--out", required=True, type=Path, help="a new model folder: the same network plus the readout")
    ro.add_argument("--version", default=None, help="the new model's version (default: the source model's)")
    ro.add_argument("--device", default="auto", help="where the network segments the fitting scans: auto, cpu, cuda, cuda:N")
    ro.add_argument("--quiet", action="store_true")
    ro.set_defaults(func=_fit_readout)

    ev = sub.add_parser("evaluate", help="score a model on a study it never saw, or rat-grouped cross-validation; writes a report")
    ev.add_argument("--study", required=True, type=Path, help="a BIDS study with truth masks (and histology)")
    ev.add_argument("--out", required=True, type=Path, help="report folder (report.md, PNG plots, per_scan.csv, metrics.json)")
    ev.add_argument("--model", default=None, help="a model folder, or 'default' for the shipped model")
    ev.add_argument("--cv", type=int, default=None, help="K: train K models, each without one fold of rats, and score them on it")
    ev.add_argument("--leaky", action="store_true", help="with --cv: also the paper's slice-level K-fold, reported as leaky")
    ev.add_argument("--epochs", type=int, default=40, help="training epochs per fold (with --cv)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of rats for the 95%% intervals")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--notes", type=Path, default=None, help="a Markdown file added to the report (e.g. why a target was missed)")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=_evaluate)

    info = sub.add_parser("info", help="list the available models and compute devices")
    info.set_defaults(func=_info)

    view = sub.add_parser("view", help="open napari with the plugin docked and a scan loaded (default: the sample)")
    view.add_argument("input", nargs="?", type=Path, help="a study, session or original-layout folder")
    view.set_defaults(func=_view)
    return parser


def _version() -> str:
    from napari_hcc import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from napari_hcc.io.study import InputError

    try:
        return int(args.func(args) or 0)
    except (InputError, _UsageError, ValueError, FileNotFoundError) as exc:
        print(f"napari-hcc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-hcc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
