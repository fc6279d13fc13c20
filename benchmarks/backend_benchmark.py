"""The inference backends side by side on the CPU: torch, OpenVINO and ONNX Runtime (issue 18).

    python benchmarks/backend_benchmark.py [--repeats 10] [--process-runs 3] [--model PATH]

In one run, for each backend available: (1) in-process, model loaded once, the sample scan
`sub-rat01 ses-wk2` (15 x 160 x 160): median seconds for the whole `predict` and for the network alone
(the engine's own timing), and the time to make the engine (load, compile); (2) whole process:
`napari-hcc predict --t1w ... --backend B` on that scan, median wall time and peak resident memory
over `--process-runs` runs. Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from napari_hcc.inference.engine import Engine
from napari_hcc.inference.graph_runner import GRAPH_BACKENDS, backend_installed
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.compute import cpu_native_bf16
from napari_hcc.model.loading import load_model

#: the installed command, as a user runs it: the console script beside this interpreter (what a virtual
#: environment or a plain install puts on the PATH). A version manager's wrapper found first on the PATH
#: (pyenv's shim is a bash script that runs `pyenv exec`) adds its own start, about 0.1 s on the project's
#: machine, which is not napari-hcc's; where no such script exists, whatever the PATH gives.
_BESIDE = Path(sys.executable).with_name("napari-hcc")
CLI = str(_BESIDE) if _BESIDE.exists() else shutil.which("napari-hcc") or "napari-hcc"


def in_process(loaded, scan, backend: str, precision: str, repeats: int) -> tuple[float, float, float]:
    """(engine set-up s, median predict s, median network s)."""
    t = time.perf_counter()
    engine = Engine(loaded, device="cpu", precision=precision, backend=backend)
    made = time.perf_counter() - t
    for _ in range(2):
        engine.predict(scan)
    total, network = [], []
    for _ in range(repeats):
        prediction = engine.predict(scan)
        total.append(prediction.run.timings["total"])
        network.append(prediction.run.timings["network"])
    return made, statistics.median(total), statistics.median(network)


#: runs a command and prints its peak resident memory in KiB. A child forked from this benchmark's own
#: process (a GiB, torch loaded) would report that GiB as its own peak (Linux keeps the high-water mark
#: across fork and exec); forked from this small launcher, it reports only what it used itself.
PEAK_LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def whole_process(ref, backend: str, model: str | None, runs: int) -> tuple[float, float]:
    """(median wall s, peak RSS MiB of the largest run) of `napari-hcc predict` on one scan (the wall
    time includes the small launcher's start, about 20 ms)."""
    walls, peaks = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            args = [CLI, "predict", "--t1w", str(ref.t1w), "--t2w", str(ref.t2w)]
            args += ["--ce", str(ref.ce), "-o", out, "--backend", backend, "--quiet", "--device", "cpu"]
            args += ["--model", model] if model else []
            t = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", PEAK_LAUNCHER, *args], capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-500:]}")
            peaks.append(int(done.stdout.split()[-1]) / 1024)
    return statistics.median(walls), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--process-runs", type=int, default=3)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    loaded = load_model(args.model)
    ref = next(r for r in find_scans(sample_study(), with_truth=False) if r.subject == "rat01" and r.session == "wk2")
    scan = ref.load()
    backends = ["torch"] + [b for b in GRAPH_BACKENDS if backend_installed(b)]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} threads, native CPU bf16: {cpu_native_bf16()}; model {loaded.model_id}\n"
    )
    print("| backend | precision | engine ready s | predict s/scan | network s/scan | whole process s | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    for backend in backends:
        for precision in ("auto", "fp32") if cpu_native_bf16() and backend != "onnxruntime" else ("fp32",):
            made, total, network = in_process(loaded, scan, backend, precision, args.repeats)
            wall, peak = ("", "")
            if precision == "auto" or not cpu_native_bf16() or backend == "onnxruntime":
                w, p = whole_process(ref, backend, args.model, args.process_runs)
                wall, peak = f"{w:.2f}", f"{p:.0f}"
            shown = "bf16" if precision == "auto" else "fp32"
            print(f"| {backend} | {shown} | {made:.2f} | {total:.3f} | {network:.3f} | {wall} | {peak} |", flush=True)


if __name__ == "__main__":
    main()
