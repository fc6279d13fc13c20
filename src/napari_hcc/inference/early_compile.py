"""OpenVINO's compilation of a model's graph, started in a thread before `predict` imports the rest.

A whole `napari-hcc predict` on one scan spends about 0.4 s importing (numpy, nibabel, scipy.ndimage:
Python, holding the interpreter lock) and 0.1-0.2 s compiling the graph from OpenVINO's cache (C++,
which releases the lock). Started first, the compilation runs on the second core while the imports run
on the first (docs/benchmarks.md). Only light modules are imported here (no numpy).

It is a guess made from the command line alone: the engine takes the compiled graph only when it chose
OpenVINO for the very same file and settings after all its checks (the card's checksum, the backend
choice); otherwise the graph is compiled as usual and this one is dropped. A failure here is silent:
the engine compiles again and reports the error itself.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from pathlib import Path

from napari_hcc.io.user_paths import user_cache_folder
from napari_hcc.model.catalog import GRAPH_FILE, default_model_folder
from napari_hcc.model.compute import cpu_precision, cpu_threads, cpu_without_torch

#: how long the process waits at exit for a compilation nobody took (it runs native code)
EXIT_WAIT_S = 10.0

_lock = threading.Lock()
_pending: dict[tuple, tuple[threading.Thread, dict]] = {}


def openvino_config(precision: str, threads: int | None) -> dict:
    """The compile settings of the CPU graph: latency first, bf16 or fp32, the thread count."""
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def openvino_core():
    """An OpenVINO core with the compiled-graph cache in the user's cache folder (when it can be made)."""
    import openvino as ov  # noqa: PLC0415 - lazy: OpenVINO only where it runs

    core = ov.Core()
    cache = user_cache_folder() / "openvino"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(cache)})
    except (OSError, RuntimeError):
        pass  # no cache: every start compiles the graph again, which is slower but correct
    return core


def start(model: str | Path | None, backend: str | None, device: str | None, precision: str | None) -> None:
    """Begin compiling the graph `predict` will most likely run: OpenVINO asked for or chosen by auto, on
    the CPU, for the shipped default model or a model folder with a graph. Does nothing otherwise."""
    if (backend or "auto") not in ("auto", "openvino") or cpu_without_torch(device) is None:
        return
    if importlib.util.find_spec("openvino") is None:
        return
    folder = default_model_folder() if model in (None, "default") else Path(model)
    if folder.suffix == ".safetensors":
        folder = folder.parent
    graph = folder / GRAPH_FILE
    try:
        if not graph.is_file():
            return
        wanted = openvino_config(cpu_precision(precision or "auto"), cpu_threads())
    except Exception:  # noqa: BLE001 - a bad option is reported by the command itself, not here
        return
    key = _key(graph, wanted)
    result: dict = {}

    def compile_graph() -> None:
        try:
            result["compiled"] = openvino_core().compile_model(str(graph), "CPU", wanted)
        except Exception:  # noqa: BLE001 - the engine compiles again and reports what is wrong
            pass

    thread = threading.Thread(target=compile_graph, name="napari-hcc early compile", daemon=True)
    with _lock:
        _pending[key] = (thread, result)
    thread.start()


def take(graph: Path, config: dict):
    """The graph compiled early for this file and these settings (waiting for it), or None."""
    with _lock:
        entry = _pending.pop(_key(graph, config), None)
    if entry is None:
        return None
    thread, result = entry
    thread.join()
    return result.get("compiled")


def _key(graph: Path, config: dict) -> tuple:
    return (str(Path(graph).resolve()), tuple(sorted(config.items())))


@atexit.register
def _wait_at_exit() -> None:
    """A compilation nobody took (the command stopped on bad input) ends before the interpreter does."""
    with _lock:
        threads = [thread for thread, _ in _pending.values()]
        _pending.clear()
    for thread in threads:
        thread.join(EXIT_WAIT_S)
