"""The network as an exported graph (ONNX) for the CPU backends: OpenVINO and ONNX Runtime.

`export_graph` traces the network of a model folder with torch's exporter (`torch.onnx.export(...,
dynamo=True)`; the legacy exporter fails on the arm head's pooling), with a dynamic batch and slice
size, and writes `model.onnx` beside `model.safetensors`. The weights of a model card with fp16
weights are stored as fp16 in the graph too (each behind a Cast to fp32), so the graph is no larger
than the checkpoint and loses nothing; what the exporter computes from shapes alone is folded into
constants (onnxscript), which lets ONNX Runtime fuse the convolutions. Before the file is kept, ONNX Runtime runs it on a test batch
against the torch network. The card then records the graph's file, its sha256 and the sha256 of
the weights it was made from (`exported.onnx`), so a graph left behind by older weights is known
to be stale (`model/graph.py`). Nothing is pickled; ONNX is a protobuf of operators and tensors.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import onnxscript
import onnxscript.optimizer
import torch
from onnx import TensorProto, helper, numpy_helper
from onnxscript import ir
from safetensors import SafetensorError, safe_open

from napari_hcc.errors import InputError
from napari_hcc.io.atomic import atomic_path, sha256_file, write_text
from napari_hcc.model.card import DEFAULT_ARCHITECTURE
from napari_hcc.model.catalog import CARD_FILE, WEIGHTS_FILE, default_model_folder
from napari_hcc.model.checkpoint import build_network, save_model
from napari_hcc.model.graph import GRAPH_FILE, GRAPH_INPUT, graph_for, graph_outputs
from napari_hcc.model.loading import LoadedModel, load_model

#: the largest difference in logits between the graph and the torch network that a kept export may show
EXPORT_TOLERANCE = 1e-3


def export_graph(model_dir: str | Path, progress=None, template: str | Path | None = None) -> dict:
    """Export the network of the model folder `model_dir` to `model_dir/model.onnx` and record it in
    the folder's card. Returns the card's new `exported.onnx` entry.

    With `template`, a model folder whose card has a usable graph and the same architecture, that graph
    is given this model's weights instead of tracing the network again (seconds instead of a minute:
    fine-tuning exports this way); the check against the torch network is the same."""

    folder = Path(model_dir)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a model folder; export writes the graph beside the model's weights.")
    model = load_model(folder)
    return _write_graph(folder, model, *_template_graph(template, model), progress)


def export_like(model_dir: str | Path, *templates: str | Path | None) -> dict | None:
    """After training or fitting a readout: give `model_dir` a graph by setting its weights into the
    graph of the first template built like it (the model it came from, then the shipped default),
    which takes seconds. None when no template fits (then `napari-hcc export` traces the network)."""

    model = load_model(model_dir)
    for template in (*templates, default_model_folder()):
        source, template_exporter = _template_graph(template, model)
        if source is not None:
            return _write_graph(Path(model_dir), model, source, template_exporter)
    return None


def save_with_card(source: LoadedModel, card, out: str | Path) -> dict | None:
    """Save `source`'s network and readouts unchanged under a changed `card` as a new model in `out` (the
    scripts that write a measured figure or a chosen setting into a card), its graph given these weights;
    the graph's card entry, or None when no graph fits."""

    save_model(build_network(source), card, out, readout=source.readout, subset_readouts=source.subset_readouts)
    return export_like(out, source.path.parent if source.path is not None else None)


def save_like(net, like: str | Path, out: str | Path, version: str, how: str) -> dict | None:
    """Save `net` as a new model in `out` made like the model `like` (its card, readouts and graph, given
    these weights), with `version` and `how` the weights were made added to the description; the graph's
    card entry, or None when no graph fits."""

    source = load_model(like)
    card = source.card.for_new_model(version, how)
    save_model(net, card, out, readout=source.readout, subset_readouts=source.subset_readouts)
    return export_like(out, like)


def _write_graph(folder: Path, model: LoadedModel, source: Path | None, template_exporter: str, progress=None) -> dict:
    """Trace (no `source`) or reweight `source`, check against torch, write the graph and the card entry."""
    say = progress or (lambda message: None)
    net = build_network(model)
    multiple = int(model.card.input.get("size_multiple", 32))
    size = int(np.ceil(128 / multiple) * multiple)
    example = torch.rand(2, len(model.card.channels), size, size, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="napari-hcc-export-") as tmp:
        if source is None:
            raw = Path(tmp) / "raw.onnx"
            say("tracing the network (about a minute on 2 cores)")
            _trace(net, example, raw, multiple, graph_outputs(model.card))
            graph = _fold_shapes(_compress(raw, model.card.weights.get("dtype", "float32")))
        else:
            say(f"giving the graph of {source.parent} this model's weights")
            graph = _reweight(source, model.state)
        with atomic_path(folder / GRAPH_FILE, overwrite=True) as out:
            out.write_bytes(graph.SerializeToString())
            say("checking the graph against the network")
            _check(net, out, example)
            digest = sha256_file(out)
    entry = {
        "file": GRAPH_FILE,
        "sha256": digest,
        "weights_sha256": str(model.card.weights.get("sha256", "")),
        "format": "onnx",
        "opset": max((int(o.version) for o in graph.opset_import if o.domain in ("", "ai.onnx")), default=0),
        "exporter": f"torch {torch.__version__} (dynamo), shape computations folded by onnxscript {onnxscript.__version__}"
        if source is None
        else f"{template_exporter}; this model's weights set into the graph of {source.parent.name}",
        "input": f"{GRAPH_INPUT}: (slices, {len(model.card.channels)}, H, W) float32, H and W multiples of {multiple}",
        "outputs": list(graph_outputs(model.card)),
    }
    card = model.card
    card.exported = dict(card.exported or {}) | {"onnx": entry}
    write_text(folder / CARD_FILE, card.to_json())
    return entry


def _template_graph(template: str | Path | None, model: LoadedModel) -> tuple[Path | None, str]:
    """(the template's usable graph, how it was made) when its network is built like this model's;
    (None, "") otherwise."""
    if template is None:
        return None, ""
    try:
        other = load_model(template)
    except InputError:
        return None, ""
    if {**DEFAULT_ARCHITECTURE, **other.card.architecture} != {**DEFAULT_ARCHITECTURE, **model.card.architecture}:
        return None, ""  # (a key an older card lacks means its default, as when the network is built)
    path = graph_for(other.card, other.path).path
    return path, str(other.card.exported.get("onnx", {}).get("exporter", "")) if path else ""


def _reweight(source: Path, state: dict) -> onnx.ModelProto:
    """The graph at `source` with each weight replaced by the tensor of the same name in `state` (fp16
    where fp16 holds it exactly, as in `_compress`; the Cast in front of it takes either)."""

    model = onnx.load(str(source))
    template_weights = _weight_names(source.parent / WEIGHTS_FILE)
    replaced, found = [], 0
    for init in model.graph.initializer:
        name = init.name.removesuffix("_fp16")
        if name not in state and name in template_weights:
            raise InputError(
                f"the graph of {source.parent} has a weight {name} this model lacks; export with a fresh trace."
            )
        if name not in state:  # a constant of the graph's own (`_fold_shapes`), not a weight
            replaced.append(init)
            continue
        found += 1
        values = np.asarray(state[name])
        if init.name.endswith("_fp16"):
            half = values.astype(np.float16)
            values = half if np.array_equal(half.astype(np.float32), values) else values.astype(np.float32)
        elif values.dtype != numpy_helper.to_array(init).dtype:
            values = values.astype(numpy_helper.to_array(init).dtype)
        replaced.append(numpy_helper.from_array(values, init.name))
    if not found:
        raise InputError(f"the graph of {source.parent} holds none of this model's weights; export with a fresh trace.")
    del model.graph.initializer[:]
    model.graph.initializer.extend(replaced)
    onnx.checker.check_model(model)
    return model


def _weight_names(path: Path) -> set[str]:
    """The tensor names of a safetensors file (its header only); empty when there is no such file."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            return set(f.keys())
    except (OSError, ValueError, SafetensorError):
        return set()


def _trace(net, example: torch.Tensor, path: Path, multiple: int, outputs: tuple[str, ...]) -> None:
    batch = torch.export.Dim("slices", min=1, max=4096)
    rows = torch.export.Dim("rows", min=1, max=64)
    cols = torch.export.Dim("cols", min=1, max=64)
    try:
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=True,
            input_names=[GRAPH_INPUT],
            output_names=list(outputs),
            dynamic_shapes={"x": {0: batch, 2: multiple * rows, 3: multiple * cols}},
            external_data=False,
            optimize=False,  # keep BatchNorm apart: the convolutions keep their fp16 weights exactly
            verbose=False,
        )
    except Exception as exc:  # noqa: BLE001 - the exporter's errors are many kinds from deep inside; one line says which
        raise InputError(
            f"the network could not be exported to ONNX ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})."
        ) from None


def _compress(path: Path, weights_dtype: str) -> onnx.ModelProto:
    """The graph with every fp32 weight that fp16 holds exactly stored as fp16 behind a Cast (the
    checkpoint's fp16 weights come back as they were; anything else stays fp32)."""

    model = onnx.load(str(path))
    if weights_dtype != "float16":
        return model
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        half = values.astype(np.float16)
        if values.size < 16 or not np.array_equal(half.astype(np.float32), values):
            kept.append(init)
            continue
        stored = numpy_helper.from_array(half, init.name + "_fp16")
        kept.append(stored)
        casts.append(
            helper.make_node("Cast", [stored.name], [init.name], to=TensorProto.FLOAT, name=init.name + "_cast")
        )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model


def _fold_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with what the exporter computes at run time from shapes alone folded into constants
    (above all, the zero bias each bias-free convolution gets from the shape of its weight). ONNX
    Runtime cannot fold these itself, and with them it fuses no convolution: a third slower. Nothing
    that reads a weight's values is folded, so the weights keep their names (and `_reweight` works)."""

    graph = ir.from_proto(model)
    weights = set(graph.graph.initializers)

    def should_fold(node) -> bool | None:
        if node.op_type != "Shape" and any(v is not None and v.name in weights for v in node.inputs):
            return False
        return None  # onnxscript's own rules

    onnxscript.optimizer.fold_constants(graph, should_fold=should_fold)
    onnxscript.optimizer.remove_unused_nodes(graph)
    folded = ir.to_proto(graph)
    onnx.checker.check_model(folded)
    return folded


def _check(net, path: Path, example: torch.Tensor) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = [t.float().numpy() for t in net(example)]
    got = session.run(None, {GRAPH_INPUT: example.numpy()})
    worst = max(float(np.abs(a - b).max()) for a, b in zip(expected, got, strict=True))
    if not np.isfinite(worst) or worst > EXPORT_TOLERANCE:
        raise InputError(
            f"the exported graph does not reproduce the network (largest logit difference {worst:.2g}); it was not kept."
        )
