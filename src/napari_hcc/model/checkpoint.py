"""Checkpoints on the torch side: writing a model (safetensors weights + a JSON model card) and
building the torch network from a loaded one. Reading a model needs no torch and is in `loading.py`.

Saving never replaces a model, and nothing is ever pickled. Building checks that every tensor the
card's architecture needs is present with the right shape, and says in one sentence what is wrong
otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors.torch import save_file

from napari_hcc.errors import InputError
from napari_hcc.io.atomic import atomic_path, sha256_file, write_text
from napari_hcc.model.card import ModelCard
from napari_hcc.model.catalog import CARD_FILE, WEIGHTS_FILE, untrained_card
from napari_hcc.model.loading import LoadedModel
from napari_hcc.model.network import HCCNet
from napari_hcc.readout.stored import Readout, subset_prefix

#: the seed of the built-in untrained network
UNTRAINED_SEED = 0


def save_model(
    net,
    card: ModelCard,
    folder: str | Path,
    dtype: str = "float16",
    overwrite: bool = False,
    readout: Readout | None = None,
    subset_readouts: dict[str, Readout] | None = None,
) -> Path:
    """Write `folder/model.safetensors` and `folder/model.json` atomically; never replaces a model
    unless `overwrite`. fp16 halves the file; the network still runs in fp32 or mixed precision.
    A response readout is stored beside the network's tensors (float32, `readout.` prefix)."""

    folder = Path(folder)
    if (folder / WEIGHTS_FILE).exists() and not overwrite:
        raise InputError(f"{folder} already holds a model; choose a new folder (models are never overwritten).")
    cast = {"float16": torch.float16, "float32": torch.float32}[dtype]  # numpy (the reader) has no bfloat16
    state = {
        k: (v.detach().to("cpu", cast) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in net.state_dict().items()
    }
    card.created = card.created or datetime.now(UTC).isoformat(timespec="seconds")
    card.architecture = dict(net.architecture)
    card.readout = readout.card_entry() if readout is not None else {}
    if readout is not None:
        state.update({k: torch.from_numpy(v) for k, v in readout.arrays().items()})
        if subset_readouts:
            card.readout["subsets"] = {name: r.card_entry() for name, r in subset_readouts.items()}
            for name, r in subset_readouts.items():
                state.update({k: torch.from_numpy(v) for k, v in r.arrays(subset_prefix(name)).items()})
    card.weights = {"file": WEIGHTS_FILE, "dtype": dtype, "tensors": len(state), "sha256": ""}
    card.exported = {}  # a graph exported from earlier weights is not these weights' graph
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_FILE, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata={"model_card": card.to_json()})
        card.weights["sha256"] = sha256_file(tmp)
    write_text(folder / CARD_FILE, card.to_json())
    return folder


def _check_weights_fit(state: dict, net: HCCNet, source: Path | None) -> None:
    """One sentence when the file's tensors are not the ones the card's architecture needs."""
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape (e.g. {k}: card {list(expected[k])}, file {list(state[k].shape)})"
            )
        raise InputError(f"the weights in {source} do not match its model card: {'; '.join(parts)}.")


def build_network(model: LoadedModel) -> HCCNet:
    """A fresh HCCNet with the model's weights, on the CPU, in eval mode (the built-in untrained
    network from its seed), or one sentence saying why the weights do not fit the card."""
    if model.state is None:
        return _seeded_network(UNTRAINED_SEED)
    try:
        net = HCCNet(model.card.architecture)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"the model card of {model.path} describes an architecture napari-hcc cannot build ({exc})."
        ) from None
    state = {k: torch.as_tensor(v) for k, v in model.state.items()}  # no copy: load_state_dict copies them in
    _check_weights_fit(state, net, model.path)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _seeded_network(seed: int) -> HCCNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HCCNet().eval()


def untrained_model(seed: int = UNTRAINED_SEED) -> LoadedModel:
    """The built-in untrained network (seeded; its card says it is untrained), its weights in hand."""
    net = _seeded_network(seed)
    card = untrained_card()
    card.weights = {"sha256": "", "dtype": "float32", "tensors": len(net.state_dict())}
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return LoadedModel(card, None, _state=state)
