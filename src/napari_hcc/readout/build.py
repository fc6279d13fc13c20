"""A model with a response readout: the network of one model plus a readout fitted through that network's
own masks (`napari-hcc fit-readout`). The source model is never changed.

The main readout is fitted on the sessions that have all three sequences. For a model that reads
sequence subsets, one more readout per smaller subset (T1w+T2w, T2w+CE, T2w, T1w) is fitted on the
sessions that have at least those sequences, on the features those sequences give (no CE: no
enhancement). A subset readout reads the response only where its rat-grouped cross-validated arm AUROC
reaches `MIN_SUBSET_AUROC`; below that, `predict` says that the response cannot be read from that
subset and shows no numbers. The features are taken on the mask the network finds with the session's
own sequences (one segmentation per session); at reading, the mask comes from the subset itself."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.slices import reads_subsets
from napari_hcc.inference.subsets import FULL
from napari_hcc.io.labels import simulation_of
from napari_hcc.model.catalog import WEIGHTS_FILE
from napari_hcc.model.checkpoint import build_network, save_model
from napari_hcc.model.export import export_like
from napari_hcc.model.loading import load_model
from napari_hcc.progress import ProgressFn
from napari_hcc.readout.features import subset_feature_names
from napari_hcc.readout.fit import feature_rows, fit_readout
from napari_hcc.vocabulary import READABLE_SUBSETS, subset_name

#: a subset readout reads the response only at or above this rat-grouped cross-validated macro arm AUROC
MIN_SUBSET_AUROC = 0.8


def add_readout(
    model: str | Path | None,
    studies: Sequence[str | Path],
    out: str | Path,
    version: str | None = None,
    progress: ProgressFn | None = None,
    device: str = "auto",
):
    """A new model in `out`: the network of `model` (None = the shipped default) plus a readout fitted
    on every outlined session of `studies`, read through that network's own masks. The source model is
    never changed; `out` must be new. Returns the new model's card (as written, checksum included)."""

    out = Path(out)
    if (out / WEIGHTS_FILE).exists():
        raise InputError(f"{out} already holds a model; choose a new folder (models are never overwritten).")

    base = load_model(model)
    rows = feature_rows(studies, progress, Engine(base, device=device))
    try:
        readout = fit_readout([r for r in rows if r.sequences == FULL], base.card.arms)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    subset_readouts = _subset_readouts(rows, base.card.arms) if reads_subsets(base.card) else {}
    readout.info["studies"] = [str(Path(s).resolve()) for s in studies]
    readout.info["simulations"] = [sim for s in studies if (sim := simulation_of(s))]
    card = copy.deepcopy(base.card)
    card.version = version or card.version
    note = "response readout fitted by napari-hcc fit-readout"
    if note not in (card.description or ""):  # a readout refitted onto a model that had one says so once
        card.description = (card.description + "; " if card.description else "") + note
    card.weights = {}
    dtype = str(base.card.weights.get("dtype", "float16"))
    save_model(build_network(base), card, out, dtype=dtype, readout=readout, subset_readouts=subset_readouts)
    export_like(out, base.path.parent if base.path is not None else None)  # the same network: its graph, reweighted
    return card


def _subset_readouts(rows, arms) -> dict:
    """A readout per smaller readable subset, fitted where the sessions allow; each says whether it may
    read the response (`reads_response`, from its cross-validated arm AUROC)."""
    out = {}
    for subset in READABLE_SUBSETS[1:]:
        name = subset_name(subset)
        usable = [r for r in rows if set(subset) <= set(r.sequences.split("+"))]
        try:
            fitted = fit_readout(usable, arms, subset_feature_names(name))
        except ValueError:  # too few sessions with these sequences
            continue
        auroc = fitted.info["cross_validation"]["arm_macro_auroc_pooled"]
        fitted.info["reads_response"] = bool(auroc >= MIN_SUBSET_AUROC)
        fitted.info["minimum_arm_auroc"] = MIN_SUBSET_AUROC
        out[name] = fitted
    return out
