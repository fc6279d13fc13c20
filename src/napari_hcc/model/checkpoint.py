"""Checkpoints: safetensors weights + a JSON model card. Loading never unpickles anything.

A model lives in a folder holding `model.safetensors` and `model.json`. The card is also kept in
the safetensors header metadata, so a lone `.safetensors` file still says how to run it. Loading
checks the file, the card, the checksum, and that every tensor the card's architecture needs is
present with the right shape, and says in one sentence what is wrong otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from napari_hcc.errors import InputError
from napari_hcc.io.atomic import atomic_path, sha256_file, write_text
from napari_hcc.model.card import ModelCard
from napari_hcc.model.catalog import CARD_FILE, DEFAULT_MODEL_NAME, WEIGHTS_FILE, default_model_folder, untrained_card
from napari_hcc.model.network import HCCNet
from napari_hcc.readout.stored import Readout, split_state, subset_prefix


@dataclass
class LoadedModel:
    card: ModelCard
    state: dict  # tensor name -> CPU float32 tensor (the network's)
    path: Path | None  # None for the built-in untrained network
    readout: Readout | None = None  # arm and histology from tumor features; None = the network's heads
    #: readouts for sessions that lack a sequence, by the subset they read ('T1w+T2w', 'T2w', ...)
    subset_readouts: dict[str, Readout] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return self.card.model_id

    def build(self):
        """A fresh HCCNet with these weights, on the CPU, in eval mode."""

        net = HCCNet(self.card.architecture)
        net.load_state_dict(self.state, strict=True)
        return net.eval()


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
    cast = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
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


def _card_path_for(weights: Path) -> Path:
    same_stem = weights.with_suffix(".json")
    return same_stem if same_stem.exists() else weights.parent / CARD_FILE


def locate(spec: str | Path | None) -> tuple[Path, Path | None]:
    """(weights file, card file or None) for a folder, a .safetensors or a .json path."""
    path = Path(spec)
    if not path.exists():
        raise InputError(f"model not found: {path}")
    if path.is_dir():
        weights = path / WEIGHTS_FILE
        if not weights.exists():
            raise InputError(f"model folder {path} has no {WEIGHTS_FILE}.")
        card = path / CARD_FILE
        return weights, card if card.exists() else None
    if path.suffix == ".json":
        try:
            name = json.loads(path.read_text(encoding="utf-8")).get("weights", {}).get("file", WEIGHTS_FILE)
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            raise InputError(f"model card {path} is not valid JSON.") from None
        weights = path.parent / name
        if not weights.exists():
            raise InputError(f"model card {path} names weights {name}, which are not in {path.parent}.")
        return weights, path
    if path.suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin"):
        raise InputError(
            f"{path} is a pickle-based checkpoint; napari-hcc loads only .safetensors models (pickles can run code)."
        )
    card = _card_path_for(path)
    return path, card if card.exists() else None


def load_model(spec: str | Path | None = None) -> LoadedModel:
    """Load a model (folder, .safetensors or .json; None = the shipped default)."""
    if spec is None or str(spec) == DEFAULT_MODEL_NAME:
        return default_model()
    weights, card_path = locate(spec)

    try:
        with safe_open(str(weights), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(
            f"{weights} is not a readable safetensors checkpoint ({str(exc).splitlines()[0][:80]})."
        ) from None
    if card_path is not None:
        try:
            text = card_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"model card {card_path} could not be read ({type(exc).__name__}).") from None
        card = ModelCard.from_json(text, card_path)
    elif "model_card" in meta:
        card = ModelCard.from_json(meta["model_card"], f"the model card inside {weights}")
    else:
        raise InputError(
            f"{weights} has no model card (no {CARD_FILE} beside it and none in its metadata); it cannot be run safely."
        )
    expected = card.weights.get("sha256")
    if expected and card_path is not None and sha256_file(weights) != expected:
        raise InputError(
            f"{weights} does not match the checksum in its model card {card_path.name}; the file was changed or is from another model."
        )
    state, readout_state = split_state(state)
    check_weights_match_card(state, card, weights)
    readout, subset_readouts = None, {}
    if card.readout:
        try:
            arrays = {k: v.float().numpy() for k, v in readout_state.items()}
            readout = Readout.from_arrays(arrays, card.readout)
            for name, entry in (card.readout.get("subsets") or {}).items():
                subset_readouts[name] = Readout.from_arrays(arrays, entry, subset_prefix(name))
        except KeyError as exc:
            raise InputError(
                f"the model card of {weights} describes a response readout, but the file lacks its tensor {exc}."
            ) from None
        except ValueError as exc:  # e.g. a readout of a newer napari-hcc, on features this one does not compute
            raise InputError(f"the response readout of {weights} cannot be used: {exc}") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    return LoadedModel(card, state, weights, readout, subset_readouts)


def check_weights_match_card(state: dict, card: ModelCard, source: Path) -> None:

    try:
        expected = {k: tuple(v.shape) for k, v in HCCNet(card.architecture).state_dict().items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"the model card of {source} describes an architecture napari-hcc cannot build ({exc})."
        ) from None
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


def default_model() -> LoadedModel:
    """The shipped model; until one is trained, a seeded untrained network (its card says so)."""
    folder = default_model_folder()
    if (folder / WEIGHTS_FILE).exists():
        return load_model(folder)
    return untrained_model()


def untrained_model(seed: int = 0) -> LoadedModel:

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = HCCNet().eval()
    card = untrained_card()
    card.weights = {"sha256": "", "dtype": "float32", "tensors": len(net.state_dict())}
    return LoadedModel(card, {k: v.detach().clone() for k, v in net.state_dict().items()}, None)
