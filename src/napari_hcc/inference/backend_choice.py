"""Which backend runs the network: torch, or the model's exported graph under OpenVINO or ONNX Runtime.

`auto` takes, on a CPU, the exported graph under OpenVINO (the fastest measured on CPUs,
docs/benchmarks.md), else under ONNX Runtime, and torch when the model has no usable graph or neither
package is installed, saying why in one line; on a GPU it takes torch. A backend asked for by name is
used or refused in one sentence, never swapped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.inference.graph_runner import BACKEND_PACKAGE, GRAPH_BACKENDS, backend_installed
from napari_hcc.model.graph import graph_for
from napari_hcc.vocabulary import BACKENDS


@dataclass(frozen=True)
class BackendChoice:
    kind: str  # "torch", "openvino" or "onnxruntime"
    graph: Path | None = None  # the exported graph a graph backend runs
    note: str = ""  # why auto chose it, when that is worth a line


def choose_backend(requested: str | None, device_type: str, card, weights: Path | None) -> BackendChoice:
    """The backend for a model (its card and weights file) on a device type ('cpu', 'cuda', 'mps')."""
    requested = (requested or "auto").lower()
    if requested not in BACKENDS:
        raise InputError(f"unknown backend '{requested}'; choose {', '.join(BACKENDS)}.")
    if requested == "torch":
        return BackendChoice("torch")
    status = graph_for(card, weights)
    if requested in GRAPH_BACKENDS:
        if device_type != "cpu":
            raise InputError(
                f"the {requested} backend runs on the CPU; choose --device cpu, or --backend torch for {device_type}."
            )
        if status.path is None:
            raise InputError(f"the {requested} backend needs the model's exported graph, but {status.reason}.")
        if not backend_installed(requested):
            raise InputError(
                f"the {requested} backend is not installed here (pip install {BACKEND_PACKAGE[requested]})."
            )
        return BackendChoice(requested, status.path)
    if device_type != "cpu":
        return BackendChoice("torch")
    if status.path is None:
        return BackendChoice("torch", note=f"torch runs the network: {status.reason}")
    for kind in GRAPH_BACKENDS:
        if backend_installed(kind):
            return BackendChoice(kind, status.path)
    return BackendChoice("torch", note="torch runs the network: neither OpenVINO nor ONNX Runtime is installed here")
