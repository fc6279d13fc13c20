"""Reading a model: safetensors weights and a JSON model card. No torch here, and nothing unpickled.

A model lives in a folder holding `model.safetensors` and `model.json`. The card is also kept in
the safetensors header metadata, so a lone `.safetensors` file still says how to run it. Loading
checks the file, the card, the checksum and the response readout, and says in one sentence what is
wrong otherwise. The network's weights are read (as numpy) only when something asks for them: a scan
read by the model's exported graph never does. Building the torch network from them, and checking
that they fit the card's architecture, is `checkpoint.build_network`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open

from napari_hcc.errors import InputError
from napari_hcc.io.atomic import sha256_file
from napari_hcc.model.card import ModelCard
from napari_hcc.model.catalog import CARD_FILE, DEFAULT_MODEL_NAME, WEIGHTS_FILE, default_model_folder, untrained_card
from napari_hcc.readout.stored import Readout, subset_prefix

#: tensor names of the response readouts kept beside the network's in the weights file
READOUT_PREFIXES = ("readout.", "readout@")


@dataclass
class LoadedModel:
    card: ModelCard
    path: Path | None  # the weights file; None for the built-in untrained network
    readout: Readout | None = None  # arm and histology from tumor features; None = the network's heads
    #: readouts for sessions that lack a sequence, by the subset they read ('T1w+T2w', 'T2w', ...)
    subset_readouts: dict[str, Readout] = field(default_factory=dict)
    #: the network's tensors (name -> float32 array), read from `path` when first asked for; None for
    #: the built-in untrained network, which `build_network` makes from its seed
    _state: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def state(self) -> dict[str, np.ndarray] | None:
        """The network's tensors as float32 numpy arrays (integers as they are)."""
        if self._state is None and self.path is not None:
            tensors = _read_tensors(self.path, lambda name: not name.startswith(READOUT_PREFIXES))
            self._state = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in tensors.items()}
        return self._state


@contextmanager
def _opened(weights: Path):
    """The safetensors file opened for numpy, or one sentence saying it cannot be read."""
    try:
        with safe_open(str(weights), framework="numpy") as fh:
            yield fh
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise InputError(
            f"{weights} is not a readable safetensors checkpoint ({str(exc).splitlines()[0][:80]})."
        ) from None


def _read_tensors(weights: Path, wanted) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file whose names `wanted` accepts, as numpy arrays."""
    with _opened(weights) as fh:
        return {k: fh.get_tensor(k) for k in fh.keys() if wanted(k)}


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


def _read_card(weights: Path, card_path: Path | None) -> ModelCard:
    """The model's card (its own file, else the one in the weights' metadata), once the weights file's
    header has been read: a file that is not safetensors is refused here, not at its first use."""
    with _opened(weights) as fh:
        meta = fh.metadata() or {}
    if card_path is not None:
        try:
            text = card_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"model card {card_path} could not be read ({type(exc).__name__}).") from None
        return ModelCard.from_json(text, card_path)
    if "model_card" not in meta:
        raise InputError(
            f"{weights} has no model card (no {CARD_FILE} beside it and none in its metadata); it cannot be run safely."
        )
    return ModelCard.from_json(meta["model_card"], f"the model card inside {weights}")


def _read_readouts(weights: Path, card: ModelCard) -> tuple[Readout | None, dict[str, Readout]]:
    if not card.readout:
        return None, {}
    arrays = {
        k: v.astype(np.float32)
        for k, v in _read_tensors(weights, lambda name: name.startswith(READOUT_PREFIXES)).items()
    }
    try:
        readout = Readout.from_arrays(arrays, card.readout)
        subsets = {
            name: Readout.from_arrays(arrays, entry, subset_prefix(name))
            for name, entry in (card.readout.get("subsets") or {}).items()
        }
    except KeyError as exc:
        raise InputError(
            f"the model card of {weights} describes a response readout, but the file lacks its tensor {exc}."
        ) from None
    except ValueError as exc:  # e.g. a readout of a newer napari-hcc, on features this one does not compute
        raise InputError(f"the response readout of {weights} cannot be used: {exc}") from None
    return readout, subsets


def load_model(spec: str | Path | None = None) -> LoadedModel:
    """Load a model (folder, .safetensors or .json; None = the shipped default)."""
    if spec is None or str(spec) == DEFAULT_MODEL_NAME:
        return default_model()
    weights, card_path = locate(spec)
    card = _read_card(weights, card_path)
    expected = card.weights.get("sha256")
    if expected and card_path is not None and sha256_file(weights) != expected:
        raise InputError(
            f"{weights} does not match the checksum in its model card {card_path.name}; the file was changed or is from another model."
        )
    readout, subsets = _read_readouts(weights, card)
    return LoadedModel(card, weights, readout, subsets)


def default_model() -> LoadedModel:
    """The shipped model; until one is trained, a seeded untrained network (its card says so)."""
    folder = default_model_folder()
    if (folder / WEIGHTS_FILE).exists():
        return load_model(folder)
    card = untrained_card()
    card.weights = {"sha256": "", "dtype": "float32"}
    return LoadedModel(card, None)
