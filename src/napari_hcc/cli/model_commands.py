"""`napari-hcc info`, `export`, `train`, `fit-readout` and `evaluate`: the commands that need torch (`predict` is in `predict_command.py`)."""

from __future__ import annotations

import os
from pathlib import Path

from napari_hcc.cli.common import TrainingProgress, progress_bar, say
from napari_hcc.errors import UsageError
from napari_hcc.evaluation import protocols
from napari_hcc.evaluation.adaptation_curve import adaptation_curve
from napari_hcc.evaluation.report import beyond_lab_sentence
from napari_hcc.evaluation.scoring import summarize
from napari_hcc.model.catalog import default_model_folder, list_models, user_models_folder
from napari_hcc.model.devices import available_devices
from napari_hcc.model.export import export_graph
from napari_hcc.readout.build import add_readout
from napari_hcc.training.augment import AugmentConfig
from napari_hcc.training.config import TrainConfig, adaptation_kwargs
from napari_hcc.training.losses import LossWeights
from napari_hcc.training.sequence_choice import SequenceChoice
from napari_hcc.training.trainer import train as train_model


def export(args) -> int:
    note = (lambda text: None) if args.quiet else say
    entry = export_graph(args.model, progress=note, template=None if args.trace else default_model_folder())
    print(
        f"exported {args.model / entry['file']} (ONNX opset {entry['opset']}, sha256 {entry['sha256'][:12]}); "
        f"predict on a CPU now runs it with OpenVINO or ONNX Runtime"
    )
    return 0


def info(args) -> int:
    print("models:")
    for name, folder, card, problem in list_models():
        if card is None:
            print(f"  {name}: unreadable ({problem})")
            continue
        where = folder if folder is not None else "built in, no file"
        metrics = ", ".join(f"{k} {v}" for k, v in list(card.metrics.items())[:4] if not isinstance(v, dict))
        left = card.input.get("leave_out")  # a model adapted to a lab (training/sequence_choice.py)
        adapted = f"; adapted to a lab, leaves out its {' and '.join(left)}" if left else ""
        print(f"  {name}: {card.model_id} [{where}]" + (f" ({metrics})" if metrics else "") + adapted)
    print(f"  (new model versions go to {user_models_folder()})")
    print("devices:")
    for line in available_devices():
        print(f"  {line}")
    return 0


def train_config(args) -> TrainConfig:
    """`train`'s options as a TrainConfig; with --init and --corrections-only, what is not given is the
    adaptation setting, the same as the review widget's "Improve the model" uses."""
    adapting = args.corrections_only and args.init is not None  # a few corrected scans of one lab
    base = TrainConfig([], Path(), **(adaptation_kwargs() if adapting else {}))  # what is not given

    def given(value, default):
        return default if value is None else value

    return TrainConfig(
        studies=args.study,
        out=args.out,
        epochs=given(args.epochs, base.epochs),
        batch_size=args.batch_size,
        lr=given(args.lr, base.lr),
        warmup_epochs=given(args.warmup_epochs, base.warmup_epochs),
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        init=args.init,
        encoder_weights=args.encoder_weights,
        corrections_only=args.corrections_only,
        folds=args.folds,
        fold=args.fold,
        patience=args.patience,
        version=args.version or "",
        sequence_dropout=given(args.sequence_dropout, base.sequence_dropout),
        crop=args.crop,
        tumor_free_share=args.tumor_free_share,
        val_fraction=given(args.val_fraction, base.val_fraction),
        min_steps=given(args.min_steps, base.min_steps),
        freeze_encoder=args.freeze_encoder or base.freeze_encoder,
        freeze_norm=args.freeze_norm or base.freeze_norm,
        choose_sequences=args.choose_sequences or base.choose_sequences,
        anatomy=args.anatomy,
        average_from=args.average_from,
        augment=AugmentConfig(p_contrast=base.augment.p_contrast, p_coil=args.surface_coil),
        loss=LossWeights(slice_dice=args.slice_dice),
    )


def train(args) -> int:
    cfg = train_config(args)
    progress = None if args.quiet else TrainingProgress()
    result = train_model(cfg, progress=progress)
    if progress is not None:
        progress.close()
    if int(os.environ.get("RANK", 0)) == 0:
        print(
            f"trained {result.epochs_run} epoch(s) in {result.seconds:.0f} s ({result.slices_per_second:.1f} slices/s); "
            f"best epoch {result.best_epoch}{' (early stop)' if result.stopped_early else ''}; model in {result.model_dir}"
        )
        if result.sequence_choice:
            print(SequenceChoice(**result.sequence_choice).sentence() + ".")
        if result.averaged_epochs:
            first, last = result.averaged_epochs[0], result.averaged_epochs[-1]
            dice = result.mean_validation.get("val_dice")
            picked = next((r.get("val_dice") for r in result.history if r["epoch"] == result.best_epoch), None)
            print(
                f"the model is the mean of the weights of epochs {first}-{last}"
                + (
                    f" (validation Dice {dice:.3f}; best single epoch {picked:.3f})"
                    if dice is not None and picked is not None
                    else ""
                )
                + f"; the best epoch alone is in {result.model_dir / 'training' / 'best'}"
            )
    return 0


def fit_readout(args) -> int:
    with progress_bar("tumor features", "scan", args.quiet) as progress:
        model = None if args.model == "default" else args.model
        card = add_readout(model, args.study, args.out, version=args.version, progress=progress, device=args.device)
    cv = card.readout.get("cross_validation", {})
    print(
        f"readout fitted on {len(card.readout['fitted_on']['rats'])} rats (rat-grouped CV inside them: arm AUROC "
        f"{cv.get('arm_macro_auroc_pooled')} over each rat's sessions ({cv.get('arm_macro_auroc')} per scan), accuracy "
        f"{cv.get('arm_accuracy_pooled')}, viability RMSE {cv.get('viability_rmse')}, apoptosis RMSE {cv.get('apoptosis_rmse')} "
        f"from {card.readout.get('apoptosis_route')}); model {card.model_id} in {args.out}"
    )
    return 0


def _fold_training(args) -> dict:
    """How each fold model of --cv and --leaky is trained."""
    return {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size, "crop": args.crop}


def evaluate(args) -> int:
    training = None if args.quiet else TrainingProgress()
    if args.model is not None:
        model = None if args.model == "default" else args.model
        results, extra = protocols.evaluate_model(args.study, model, device=args.device, subsets=args.subsets)
    else:
        results, extra = protocols.evaluate_cv(
            args.study, args.cv, args.out, device=args.device, progress=training, **_fold_training(args)
        )
    leaky = None
    if args.leaky and args.cv:
        leaky = protocols.evaluate_leaky(
            args.study, args.cv, args.out, args.device, progress=training, **_fold_training(args)
        )
    summary = summarize(results, extra["size"], bootstrap=args.bootstrap, seed=args.seed)
    if "subsets" in extra:
        summary["segmentation"]["by_subset"] = extra["subsets"]
    if args.adapt:
        with progress_bar("adaptation curve", "fine-tuning", args.quiet) as progress:
            summary["adaptation"] = adaptation_curve(
                args.study, model, args.adapt, device=args.device, scratch=args.out.parent, progress=progress
            )
        if summary["adaptation"]["beyond_lab"]:
            say(beyond_lab_sentence(summary["adaptation"]))
    extra["info"]["bootstrap"] = args.bootstrap
    notes = None
    if args.notes is not None:
        try:
            notes = args.notes.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"notes file {args.notes} could not be read ({type(exc).__name__}).") from None
    report = protocols.write_results(args.out, results, summary, extra["info"], leaky, notes)
    for t in summary["targets"]:
        verdict = "nothing read to score" if t["met"] is None else "met" if t["met"] else "NOT met"
        print(f"{t['metric']}: {t['value']:.3f} (target {t['target']}: {verdict})")
    print(f"report: {report}")
    return 0
