"""A model with a response readout: the network of one model plus a readout fitted through that network's
own masks (`napari-hcc fit-readout`). The source model is never changed."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.io.labels import simulation_of
from napari_hcc.model.catalog import WEIGHTS_FILE
from napari_hcc.model.checkpoint import load_model, save_model
from napari_hcc.progress import ProgressFn
from napari_hcc.readout.fit import feature_rows, fit_readout


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
    try:
        readout = fit_readout(feature_rows(studies, progress, Engine(base, device=device)), base.card.arms)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    readout.info["studies"] = [str(Path(s).resolve()) for s in studies]
    readout.info["simulations"] = [sim for s in studies if (sim := simulation_of(s))]
    card = copy.deepcopy(base.card)
    card.version = version or card.version
    note = "response readout fitted by napari-hcc fit-readout"
    if note not in (card.description or ""):  # a readout refitted onto a model that had one says so once
        card.description = (card.description + "; " if card.description else "") + note
    card.weights = {}
    save_model(base.build(), card, out, dtype=str(base.card.weights.get("dtype", "float16")), readout=readout)
    return card
