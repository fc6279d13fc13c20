"""The `napari-hcc` command line: thin, calling the same core functions as the napari widgets.

This module holds the parser and `main`; the commands live in `study_commands.py` (simulate, check,
import: no torch), `predict_command.py` (predict: torch only when torch runs the network),
`model_commands.py` (info, export, train, fit-readout, evaluate) and, for `view`, the GUI. Each group
is imported only when one of its commands runs, so `napari-hcc --help` imports neither numpy's heavy
users nor torch nor napari, and `predict` on a CPU with the exported graph imports no torch (tested).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_hcc import __version__
from napari_hcc.cli.simulate_parser import add_simulate_parser
from napari_hcc.errors import InputError, UsageError
from napari_hcc.vocabulary import BACKENDS, MISMATCH_POLICIES, PRECISIONS, REGISTRATION_KINDS

STUDY_COMMANDS = ("simulate", "check", "import")
MODEL_COMMANDS = ("info", "train", "fit-readout", "evaluate", "export")


def _check(args) -> None:
    """What is wrong with the options alone, said before a command imports anything heavy (seconds)."""
    if args.command == "evaluate" and (args.model is None) == (args.cv is None):
        raise UsageError(
            "give either --model MODEL (a study the model never saw) or --cv K (rat-grouped cross-validation)."
        )
    if args.command == "evaluate" and args.adapt and args.model is None:
        raise UsageError("--adapt needs --model MODEL: the curve fine-tunes that model on the lab's corrected scans.")
    if args.command == "evaluate" and args.adapt and min(args.adapt) < 1:
        raise UsageError(f"--adapt takes counts of corrected scans, 1 or more (got {min(args.adapt)}).")


def _run(args) -> int:
    """Import the command's module (the lazy boundary of the CLI) and run the command."""
    _check(args)
    if args.command in STUDY_COMMANDS:
        from napari_hcc.cli import study_commands  # noqa: PLC0415 - lazy: numpy and nibabel, only when a command needs them

        return study_commands.__dict__[args.command.replace("import", "import_")](args)
    if args.command == "predict":
        from napari_hcc.cli import predict_command  # noqa: PLC0415 - lazy: what reading a scan needs, torch only if it runs the network

        return predict_command.predict(args)
    if args.command in MODEL_COMMANDS:
        from napari_hcc.cli import model_commands  # noqa: PLC0415 - lazy: torch, only when a command runs the network

        return model_commands.__dict__[args.command.replace("-", "_")](args)
    from napari_hcc.gui.launch import launch  # noqa: PLC0415 - lazy: napari and Qt, only for `view`

    return launch(args.input)


def _geometry_options(parser: argparse.ArgumentParser) -> None:
    """How `check` and `predict` put a scan's sequences on one grid: registration and the mismatch policy."""
    parser.add_argument(
        "--register",
        nargs="?",
        const="rigid",
        choices=REGISTRATION_KINDS,
        default=None,
        help="align the T2w and CE to the T1w by mutual information (rigid, or affine) before reading",
    )
    parser.add_argument(
        "--on-mismatch",
        choices=MISMATCH_POLICIES,
        default="resample",
        help="sequences on different grids: resample onto the T1w grid (default) or refuse",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-hcc",
        description="Preclinical HCC MRI in rats: simulate cohorts, check scans, predict tumor masks and treatment response, view in napari.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_simulate_parser(sub)

    imp = sub.add_parser(
        "import",
        help="DICOM folders, Bruker ParaVision studies (folder or zip) or NIfTI files into a BIDS study",
        description="Convert scanner data into the BIDS study napari-hcc reads: each series gets a role (T1w, T2w, "
        "CE) from a map of description patterns and parameters, or is left out with a reason; two candidates for one "
        "role stop the import. Subject and session come from the animal ID and study date unless given.",
    )
    imp.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT", help="a DICOM folder, a ParaVision study or zip, NIfTI files"
    )
    imp.add_argument("-o", "--out", required=True, type=Path, help="the BIDS study to write into (created if missing)")
    imp.add_argument("--subject", default=None, help="BIDS subject label (default: from the animal ID)")
    imp.add_argument("--session", default=None, help="BIDS session label (default: the study date, YYYYMMDD)")
    imp.add_argument(
        "--map", dest="map_path", type=Path, default=None, help="a JSON map of series to roles (see docs/import.md)"
    )
    imp.add_argument("--quiet", action="store_true", help="only the last line (no mapping, notes or left-out series)")

    chk = sub.add_parser("check", help="load scans, check their geometry and report what was found")
    chk.add_argument("input", nargs="?", type=Path, help="a study, subject, session or original-layout folder")
    chk.add_argument("--t1w", type=Path)
    chk.add_argument("--t2w", type=Path)
    chk.add_argument("--ce", type=Path)
    chk.add_argument("--mask", type=Path)
    _geometry_options(chk)

    pred = sub.add_parser("predict", help="segment tumors and estimate treatment response for one or many scans")
    pred.add_argument(
        "-i", "--input", dest="input", type=Path, help="a BIDS study, subject or session folder, or the original layout"
    )
    pred.add_argument("--t1w", type=Path, help="one scan as three files: the T1w ...")
    pred.add_argument("--t2w", type=Path, help="... the T2w ...")
    pred.add_argument("--ce", type=Path, help="... and the contrast-enhanced T1w")
    pred.add_argument("-o", "--out", required=True, type=Path, help="output folder (masks, sidecars, predictions.csv)")
    pred.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    pred.add_argument("--model", default=None, help="a model folder or .safetensors file (default: the shipped model)")
    pred.add_argument(
        "--tta", action="store_true", help="test-time augmentation (4 flips); adds an uncertainty from their spread"
    )
    pred.add_argument("--batch-size", type=int, default=None, help="slices per batch (default 16 on CPU, 32 on GPU)")
    pred.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: mixed precision on GPU, bf16 on CPUs with native bf16, else fp32",
    )
    pred.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="what runs the network: auto (on a CPU the model's exported graph under OpenVINO, else ONNX Runtime, "
        "else torch; on a GPU torch), or one by name",
    )
    pred.add_argument("--save-probabilities", action="store_true", help="also write the tumor probability map")
    pred.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write each mask as a DICOM Segmentation on its source series (scans imported from DICOM)",
    )
    pred.add_argument(
        "--threshold", type=float, default=None, help="tumor probability threshold (default: the model card's)"
    )
    pred.add_argument(
        "--min-component-mm3", type=float, default=None, help="remove tumor pieces smaller than this (mm^3)"
    )
    pred.add_argument("--no-fill-holes", action="store_true", help="keep holes inside the tumor on each slice")
    pred.add_argument(
        "--liver-gate",
        type=float,
        default=None,
        metavar="SHARE",
        help="keep only tumors with at least this share of liver around them (models with an anatomy head; "
        "0 turns the gate off; default: the model card's)",
    )
    pred.add_argument(
        "--read-corrections",
        action="store_true",
        help="where a session of a BIDS study has a saved correction, read its response from that mask (the "
        "newest version) instead of the model's; the model's mask is still written",
    )
    _geometry_options(pred)
    pred.add_argument("--quiet", action="store_true", help="no progress bar or notes")

    tr = sub.add_parser("train", help="train (or fine-tune) the multi-task network on one or more studies")
    tr.add_argument("--study", action="append", required=True, type=Path, help="a BIDS study; repeat for several")
    tr.add_argument(
        "--out",
        required=True,
        type=Path,
        help="a new model folder (never overwritten; an unfinished run there resumes)",
    )
    tr.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="default 40; with --init and --corrections-only, the adaptation setting",
    )
    tr.add_argument("--batch-size", type=int, default=16)
    tr.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate (AdamW, cosine schedule; default 1e-3, or the adaptation setting)",
    )
    tr.add_argument(
        "--warmup-epochs", type=float, help="warm-up epochs before the cosine decay (default 1; adapting 0.5)"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    tr.add_argument("--precision", default="auto", choices=PRECISIONS)
    tr.add_argument("--init", default=None, help="fine-tune from this model (folder or .safetensors)")
    tr.add_argument(
        "--corrections-only",
        action="store_true",
        help="learn only from sessions with a reviewer's saved correction (fine-tuning with --init)",
    )
    tr.add_argument(
        "--encoder-weights",
        default=None,
        help="a local EfficientNet-B0 weight file for the encoder (nothing is downloaded)",
    )
    tr.add_argument("--folds", type=int, default=None, help="rat-grouped folds: train without the rats of --fold")
    tr.add_argument("--fold", type=int, default=None)
    tr.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early stopping: epochs without a better validation score (Dice + arm AUROC)",
    )
    tr.add_argument(
        "--sequence-dropout",
        type=float,
        default=None,
        help="chance that a slice is shown with fewer sequences than its session has, so that the model reads "
        "any subset with a T1w or a T2w (default 0.5 for a new model or one that reads subsets; 0 adapting)",
    )
    tr.add_argument(
        "--tumor-free-share",
        type=float,
        default=0.3,
        help="tumor-free slices shown per tumor slice in an epoch (default 0.3; more teaches what is not tumor)",
    )
    tr.add_argument(
        "--slice-dice",
        type=float,
        default=0.0,
        help="weight of a per-slice Dice term that gives each tumor slice an equal share whatever the tumor's size "
        "(default 0: the Dice over the whole batch only, where small tumors count by their few pixels)",
    )
    tr.add_argument("--crop", type=int, default=128, help="training window in pixels, a multiple of 32 (default 128)")
    tr.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of the rats held out to pick the best epoch (default 0.2; 0 with --corrections-only: every "
        "corrected scan is learned from and the last epoch kept)",
    )
    tr.add_argument(
        "--min-steps",
        type=int,
        default=None,
        help="at least this many optimiser steps, more epochs on a small set (default with --corrections-only: "
        "the measured adaptation setting, docs/training.md)",
    )
    tr.add_argument("--freeze-encoder", action="store_true", help="train only the decoder and the heads (fine-tuning)")
    tr.add_argument("--freeze-norm", action="store_true", help="keep every BatchNorm statistic (fine-tuning)")
    tr.add_argument(
        "--choose-sequences",
        action="store_true",
        help="with --init and --corrections-only: the corrected scans choose which of the lab's sequences the new "
        "model reads (a sequence they read worse with, by 0.1 of Dice, is left out)",
    )
    tr.add_argument(
        "--surface-coil",
        type=float,
        default=0.0,
        metavar="P",
        help="share of slices and sequences shown through a surface coil's fall-off from one side, drawn per "
        "sequence (augmentation; default 0)",
    )
    tr.add_argument(
        "--average-from",
        type=int,
        default=None,
        metavar="N",
        help="publish the mean of the weights of epochs N to the last (stochastic weight averaging), steadier on "
        "scans unlike the training set than any one epoch; the epoch validation picks stays in OUT/training/best",
    )
    tr.add_argument(
        "--anatomy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train the anatomy head (liver, kidney, gut, ...) on the simulator's tissue maps; its liver keeps "
        "tumors off other organs (default: as the --init model; a new model has none)",
    )
    tr.add_argument("--version", default=None, help="the model's version (default: the date and time)")
    tr.add_argument("--quiet", action="store_true")

    ro = sub.add_parser(
        "fit-readout", help="fit the response readout (arm and histology from tumor features) onto a model's network"
    )
    ro.add_argument("--model", default="default", help="the model whose network finds the tumor (folder, or 'default')")
    ro.add_argument(
        "--study",
        action="append",
        required=True,
        type=Path,
        help="a BIDS study with masks, arms and histology; repeat for several",
    )
    ro.add_argument("--out", required=True, type=Path, help="a new model folder: the same network plus the readout")
    ro.add_argument("--version", default=None, help="the new model's version (default: the source model's)")
    ro.add_argument(
        "--device", default="auto", help="where the network segments the fitting scans: auto, cpu, cuda, cuda:N"
    )
    ro.add_argument("--quiet", action="store_true")

    ev = sub.add_parser(
        "evaluate", help="score a model on a study it never saw, or rat-grouped cross-validation; writes a report"
    )
    ev.add_argument("--study", required=True, type=Path, help="a BIDS study with truth masks (and histology)")
    ev.add_argument(
        "--out", required=True, type=Path, help="report folder (report.md, PNG plots, per_scan.csv, metrics.json)"
    )
    ev.add_argument("--model", default=None, help="a model folder, or 'default' for the shipped model")
    ev.add_argument(
        "--cv", type=int, default=None, help="K: train K models, each without one fold of rats, and score them on it"
    )
    ev.add_argument(
        "--leaky", action="store_true", help="with --cv: also the paper's slice-level K-fold, reported as leaky"
    )
    ev.add_argument(
        "--subsets",
        action="store_true",
        help="with --model: also segment each session from every smaller readable subset of its sequences "
        "(T2w alone, T1w+T2w, ...) and report the Dice of each",
    )
    ev.add_argument(
        "--adapt",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="with --model, on one lab's study: also the adaptation curve, the model fine-tuned on N corrected "
        "scans of the lab (e.g. 1 2 4 8; the truth stands in for the outline) and scored on rats that gave none",
    )
    ev.add_argument("--epochs", type=int, default=40, help="training epochs per fold (with --cv)")
    ev.add_argument("--batch-size", type=int, default=16, help="training batch per fold (with --cv; default 16)")
    ev.add_argument(
        "--crop",
        type=int,
        default=128,
        help="training window per fold in pixels, a multiple of 32 (with --cv; default 128)",
    )
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of rats for the 95%% intervals")
    ev.add_argument("--device", default="auto")
    ev.add_argument(
        "--notes", type=Path, default=None, help="a Markdown file added to the report (e.g. why a target was missed)"
    )
    ev.add_argument("--quiet", action="store_true")

    ex = sub.add_parser(
        "export",
        help="export a model's network as an ONNX graph beside its weights, for the OpenVINO and ONNX Runtime backends",
    )
    ex.add_argument("--model", required=True, type=Path, help="a model folder (the graph and its card entry go there)")
    ex.add_argument(
        "--trace",
        action="store_true",
        help="trace the network afresh (default: set the weights into the shipped model's graph when the networks "
        "are built alike, which takes seconds)",
    )
    ex.add_argument("--quiet", action="store_true")

    sub.add_parser("info", help="list the available models and compute devices")

    view = sub.add_parser("view", help="open napari with the plugin docked and a scan loaded (default: the sample)")
    view.add_argument("input", nargs="?", type=Path, help="a study, session or original-layout folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(_run(args) or 0)
    except (InputError, UsageError, ValueError, FileNotFoundError) as exc:
        print(f"napari-hcc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-hcc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
