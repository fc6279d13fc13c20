"""Time `napari-hcc simulate` for the default cohort (32 rats x 4 sessions) with the `study` and the
`varied` protocols, and report the size baseline on each.

    python benchmarks/simulate_benchmark.py [OUT_DIR]

Prints wall time, scans per second and the size-only macro AUROC (rat-grouped CV) on the rendered masks
of each cohort, and on a 400-rat virtual cohort from the growth model (the biology, which no protocol
changes). Figures go in docs/benchmarks.md.
"""

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from napari_hcc.evaluation.size_baseline import records_from_biology, records_from_study, size_only_auroc
from napari_hcc.simulate.cohort import simulate_study
from napari_hcc.simulate.protocol import STUDY_PROTOCOL

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="hcc-bench-"))
print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
for name, protocol in (("study", STUDY_PROTOCOL), ("varied", "varied")):
    start = time.perf_counter()
    root = simulate_study(out / name, protocol=protocol)
    seconds = time.perf_counter() - start
    print(f"{name}: default cohort, 128 scans in {seconds:.1f} s ({128 / seconds:.2f} scans/s)")
    rendered = size_only_auroc(records_from_study(root))
    print(
        f"{name}: size-only macro AUROC on the rendered masks (32 rats): {rendered['macro_auroc']:.3f} {rendered['per_arm']}"
    )
virtual = size_only_auroc(records_from_biology(seed=0, rats_per_arm=100))
print(f"size-only macro AUROC, virtual cohort (400 rats): {virtual['macro_auroc']:.3f} {virtual['per_arm']}")
