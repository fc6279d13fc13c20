"""Where a model's exported graph is and whether it is usable (no torch here: the exported backend
reads a scan without importing torch).

A graph is usable when the card records one (`exported.onnx`), the file is there, its sha256 matches
the card, and it was made from the weights the card describes now; otherwise `reason` says which."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_hcc.io.atomic import sha256_file

GRAPH_FILE = "model.onnx"

GRAPH_INPUT = "slices"

GRAPH_OUTPUTS = ("mask_logits", "arm_logits", "biomarker_logits")

#: the fourth output of a network with an anatomy head (model/network.py)
ANATOMY_OUTPUT = "anatomy_logits"


def liver_channel(card) -> int | None:
    """Which anatomy channel is liver, for a network with an anatomy head; None otherwise."""
    classes = list(card.architecture.get("anatomy") or [])
    return classes.index("liver") if "liver" in classes else None


def graph_outputs(card) -> tuple[str, ...]:
    """The outputs of the card's network, in the order the network returns them."""
    return GRAPH_OUTPUTS + ((ANATOMY_OUTPUT,) if card.architecture.get("anatomy") else ())


@dataclass(frozen=True)
class GraphStatus:
    path: Path | None  # the usable graph, or None
    reason: str = ""  # why there is none, for the line that says the torch backend serves instead


def graph_for(card, weights: Path | None) -> GraphStatus:
    """The exported graph of the model whose weights file is `weights` and whose card is `card`."""
    entry = (getattr(card, "exported", None) or {}).get("onnx")
    if weights is None:
        return GraphStatus(None, "the built-in untrained network has no exported graph")
    export_hint = f"run `napari-hcc export --model {Path(weights).parent}`"
    if not entry:
        return GraphStatus(None, f"the model has no exported graph ({export_hint})")
    path = Path(weights).parent / str(entry.get("file", GRAPH_FILE))
    if not path.is_file():
        return GraphStatus(None, f"its exported graph {path.name} is missing ({export_hint})")
    if entry.get("weights_sha256") != card.weights.get("sha256"):
        return GraphStatus(None, f"its exported graph was made from other weights ({export_hint})")
    if sha256_file(path) != entry.get("sha256"):
        return GraphStatus(
            None, f"its exported graph {path.name} does not match the checksum in the card ({export_hint})"
        )
    return GraphStatus(path)
