"""Inference speed: the napari-hcc engine against the straightforward pipeline of the paper's code.

    python benchmarks/predict_benchmark.py [--devices cpu cuda] [--repeats 10] [--model PATH]

For one sample scan (15 x 160 x 160) and for the batch of all sample scans, in-process, with the
model loaded once: median latency per scan, slices per second and peak memory, for each device
(CUDA only where there is one). In the same run, the reference a user would write from the paper's
code: each slice resized to 224 x 224, divided by 255, one slice at a time, fp32, the mask resized
back. Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import numpy as np
import torch

from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.checkpoint import build_network
from napari_hcc.model.compute import cpu_native_bf16
from napari_hcc.model.devices import describe_device, resolve_device
from napari_hcc.model.loading import load_model


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(engine: Engine, scans, repeats: int, tta: bool = False, cold_history: bool = False) -> list[float]:
    """Median-ready latencies. A follow-up scan is read with the rat's earlier sessions, whose features the
    engine caches: warm (the usual case, a study predicted in order) or cold (each earlier session
    segmented again, the cost of opening one follow-up scan on its own)."""
    for scan in scans[:2]:
        engine.predict(scan, tta=tta)  # warm-up (kernels, allocator)
    times = []
    for _ in range(repeats):
        for scan in scans:
            if cold_history:
                engine.forget_sessions()
            sync(engine.device)
            t = time.perf_counter()
            engine.predict(scan, tta=tta)
            sync(engine.device)
            times.append(time.perf_counter() - t)
    return times


def reference_pipeline(net, scan, device) -> np.ndarray:
    """The paper-style pipeline: per slice resize to 224, /255, batch of one, fp32, resize back."""
    from skimage.transform import resize

    out = np.zeros(scan.shape, dtype=np.uint8)
    channels = scan.channels()  # (3, X, Y, Z), slices along the last axis
    for k in range(scan.shape[2]):
        img = np.moveaxis(channels[:, :, :, k], 0, -1)
        x = resize(img, (224, 224, 3), preserve_range=True) / 255.0
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))[None].astype(np.float32)).to(device)
        with torch.no_grad():
            logits = net(t)[0]
        prob = torch.sigmoid(logits)[0, 0].cpu().numpy()
        out[:, :, k] = resize(prob, scan.shape[:2], order=1) > 0.5
    return out


def time_reference(loaded, scans, device, repeats: int) -> list[float]:
    net = build_network(loaded).to(device).eval()
    reference_pipeline(net, scans[0], device)
    times = []
    for _ in range(repeats):
        for scan in scans:
            sync(device)
            t = time.perf_counter()
            reference_pipeline(net, scan, device)
            sync(device)
            times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))

    loaded = load_model(args.model)
    refs = find_scans(sample_study(), with_truth=False)
    scans = [r.load() for r in refs]
    one = [next(s for s in scans if s.subject == "rat01" and s.session == "wk2")]
    slices = one[0].shape[one[0].slice_axis]
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, native CPU bf16: {cpu_native_bf16()}"
    )
    print(f"model: {loaded.model_id}; sample scan {'x'.join(map(str, one[0].shape))}, batch of {len(scans)} scans\n")
    print("| device | pipeline | scan(s) | median s/scan | slices/s | peak memory |")
    print("|---|---|---|---|---|---|")
    for spec in devices:
        device = resolve_device(spec)
        name = describe_device(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        variants = [
            ("napari-hcc", "auto", False, False, "auto"),
            ("napari-hcc, earlier sessions read afresh", "auto", False, True, "auto"),
        ]
        if device.type == "cpu":
            variants.append(("napari-hcc fp32", "fp32", False, False, "auto"))
            variants.append(("napari-hcc on torch", "auto", False, False, "torch"))
        variants.append(("napari-hcc + TTA (4 flips)", "auto", True, False, "auto"))
        results = {}
        for label, precision, tta, cold, backend in variants:
            engine = Engine(loaded, device=spec, precision=precision, backend=backend)
            for what, group, reps in (
                ("1 sample", one, args.repeats),
                (f"{len(scans)} sample", scans, max(1, args.repeats // 5)),
            ):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                times = time_engine(engine, group, reps, tta, cold)
                med = statistics.median(times)
                results[(label, what)] = med
                mem = (
                    f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB GPU"
                    if device.type == "cuda"
                    else f"{peak_rss_mib():.0f} MiB RSS"
                )
                print(
                    f"| {name} | {label} ({engine.backend}, {engine.precision}) | {what} | {med:.4f} | {slices / med:.0f} | {mem} |",
                    flush=True,
                )
        times = time_reference(loaded, one, device, max(2, args.repeats // 3))
        ref = statistics.median(times)
        mem = (
            f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB GPU"
            if device.type == "cuda"
            else f"{peak_rss_mib():.0f} MiB RSS"
        )
        print(
            f"| {name} | paper-style reference (fp32, 224 px, 1 slice at a time) | 1 sample | {ref:.4f} | {slices / ref:.0f} | {mem} |"
        )
        fast = results[("napari-hcc", "1 sample")]
        print(
            f"\n{name}: napari-hcc {fast * 1000:.0f} ms/scan vs reference {ref * 1000:.0f} ms/scan: {ref / fast:.1f}x faster\n",
            flush=True,
        )


if __name__ == "__main__":
    main()
