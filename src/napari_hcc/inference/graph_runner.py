"""The exported-graph backends: OpenVINO or ONNX Runtime running a model's ONNX graph on the CPU.

No torch here: numpy in, numpy out. `GraphRunner(path, "openvino")(x)` takes model-frame slices
(N, 3, H, W) float32 and returns the network's three outputs as float32 logits, as the torch network
does. OpenVINO runs bf16 where the processor computes it natively (precision "auto" or "bf16") and
fp32 otherwise; ONNX Runtime runs fp32. OpenVINO keeps compiled graphs in a cache folder, so a second
start skips most of the compilation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.user_paths import user_cache_folder
from napari_hcc.model.compute import CPU, cpu_threads, describe_cpu
from napari_hcc.model.graph import ANATOMY_OUTPUT, GRAPH_INPUT, GRAPH_OUTPUTS

GRAPH_BACKENDS = ("openvino", "onnxruntime")

#: the Python package each graph backend needs
BACKEND_PACKAGE = {"openvino": "openvino", "onnxruntime": "onnxruntime"}


def backend_installed(kind: str) -> bool:
    """Whether the package of a graph backend can be imported here (without importing it)."""
    return importlib.util.find_spec(BACKEND_PACKAGE[kind]) is not None


class GraphRunner:
    """One compiled graph, ready for batches of slices."""

    def __init__(
        self,
        path: str | Path,
        kind: str,
        precision: str = "fp32",
        threads: int | None = None,
        liver: int | None = None,
    ):
        if kind not in GRAPH_BACKENDS:
            raise ValueError(f"unknown graph backend {kind!r}")
        if not backend_installed(kind):
            raise InputError(f"the {kind} backend is not installed here (pip install {BACKEND_PACKAGE[kind]}).")
        self.kind = kind
        self.device = CPU
        self.precision = precision if kind == "openvino" else "fp32"
        self.path = Path(path)
        self.threads = int(threads or cpu_threads())
        self.liver = liver  # the anatomy channel that is liver, for a graph with the anatomy output
        self._longest, self._slice_shape = 0, None  # the longest batch so far, and its slice shape
        self._run = self._openvino(self.threads) if kind == "openvino" else self._onnxruntime(self.threads)

    def describe(self) -> str:
        return f"{describe_cpu(self.threads)}, {self.kind}"

    def release_memory(self) -> None:
        """Nothing to give back: the compiled graph holds no cache worth dropping."""

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return self._run(np.ascontiguousarray(x, dtype=np.float32))

    def passes(self, batch: np.ndarray, flips) -> list[np.ndarray]:
        """A batch through every TTA flip (each undone on the mask): [tumor probabilities (F, N, H, W),
        arm probabilities (F, N, arms), biomarkers (F, N, 2)], as the torch engine gives them."""

        n = len(batch)
        batch = self._padded(batch)
        masks, arms, bios, livers = [], [], [], []
        for flip in flips:
            m, a, b, *organs = (out[:n] for out in self(np.flip(batch, flip) if flip else batch))
            masks.append(_sigmoid(np.flip(m, flip)[:, 0] if flip else m[:, 0]))
            arms.append(_softmax(a))
            bios.append(_sigmoid(b))
            if organs and self.liver is not None:
                liver = _class_probability(organs[0], self.liver)
                livers.append(np.flip(liver, flip) if flip else liver)
        return [np.stack(v) for v in (masks, arms, bios, livers) if v]

    def _padded(self, batch: np.ndarray) -> np.ndarray:
        """Under OpenVINO, a batch shorter than the largest one run so far, padded with blank slices to
        its length. OpenVINO prepares its kernels for each new input shape on first use (about 0.1 s on
        2 cores), more than the blank slices cost (about 9 ms each), and the last batch of a scan is
        usually short; the slices are independent, so the padding changes no output."""

        if self.kind != "openvino":
            return batch
        if len(batch) >= self._longest or batch.shape[1:] != self._slice_shape:
            self._longest, self._slice_shape = len(batch), batch.shape[1:]
            return batch
        blank = np.zeros((self._longest - len(batch), *batch.shape[1:]), dtype=batch.dtype)
        return np.concatenate([batch, blank])

    def _openvino(self, threads: int | None):
        import openvino as ov  # noqa: PLC0415 - lazy: only the backend in use is imported, and only if installed

        core = ov.Core()
        cache = user_cache_folder() / "openvino"
        try:
            cache.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(cache)})
        except (OSError, RuntimeError):
            pass  # no cache: every start compiles the graph again, which is slower but correct
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            compiled = core.compile_model(str(self.path), "CPU", config)
        except RuntimeError as exc:
            raise InputError(f"OpenVINO could not compile {self.path} ({str(exc).splitlines()[0][:120]}).") from None
        request = compiled.create_infer_request()
        names = [set(port.get_names()) for port in compiled.outputs]
        wanted = [*GRAPH_OUTPUTS, *([ANATOMY_OUTPUT] if any(ANATOMY_OUTPUT in n for n in names) else [])]
        order = [next(i for i, found in enumerate(names) if name in found) for name in wanted]

        def run(x: np.ndarray):
            request.infer({0: x})
            return tuple(np.array(request.get_output_tensor(i).data, dtype=np.float32) for i in order)

        return run

    def _onnxruntime(self, threads: int | None):
        import onnxruntime as ort  # noqa: PLC0415 - lazy: only the backend in use is imported, and only if installed

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors (Fail, InvalidProtobuf, ...) derive from Exception alone
            raise InputError(f"ONNX Runtime could not load {self.path} ({str(exc).splitlines()[0][:120]}).") from None

        present = {o.name for o in session.get_outputs()}
        wanted = [*GRAPH_OUTPUTS, *([ANATOMY_OUTPUT] if ANATOMY_OUTPUT in present else [])]

        def run(x: np.ndarray):
            return tuple(np.asarray(o, dtype=np.float32) for o in session.run(wanted, {GRAPH_INPUT: x}))

        return run


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _class_probability(logits: np.ndarray, k: int) -> np.ndarray:
    """The softmax probability of class k alone, (N, K, H, W) -> (N, H, W): 1 / sum_j exp(x_j - x_k), without
    normalising the other classes (a third of the work; a class far above k gives exp = inf, hence 0)."""
    with np.errstate(over="ignore"):
        return (1.0 / np.exp(logits - logits[:, k : k + 1]).sum(axis=1)).astype(np.float32, copy=False)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
