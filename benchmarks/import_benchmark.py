"""Time `import` on the real scanner files and the registration of one session's sequences.

    python benchmarks/import_benchmark.py [REALDATA]   (default ../shared/realdata)

Prints, for each real fixture, the wall time of `import_study` (headers, conversion, writing), the
median of 3 runs into fresh folders; and the time of one rigid registration (T2w to T1w, and CE to
T1w) on a simulated session with 2 mm of motion. Figures go in docs/benchmarks.md.
"""

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from napari_hcc.importing.importer import import_study
from napari_hcc.io.study import find_scans
from napari_hcc.io.volume import load_volume
from napari_hcc.registration.align import register
from napari_hcc.simulate.cohort import simulate_study

realdata = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "realdata")
work = Path(tempfile.mkdtemp(prefix="hcc-import-bench-"))
phantom_map = work / "map.json"
phantom_map.write_text(json.dumps({"roles": {"T2w": [{"description": "T2_TurboRARE_3D"}]}}))
cases = [
    ("real rat, GE 3 T coronal 3-D FIESTA, 92 DICOM files", realdata / "ucsf_rat_abdomen_dicom", None),
    ("real mouse, GE 3 T axial T2 FSE, 40 DICOM files", realdata / "ucsf_mouse_tumor_dicom", None),
    ("ParaVision 6 phantom study (3 scans, 6 packages), 3-D T2 RARE mapped", realdata / "bruker_paravision_phantom" / "study", phantom_map),
]  # fmt: skip
print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
for label, path, mapping in cases:
    times = []
    for n in range(3):
        start = time.perf_counter()
        import_study([path], work / f"{path.name}-{n}", map_path=mapping)
        times.append(time.perf_counter() - start)
    print(f"import, {label}: {statistics.median(times):.2f} s (runs {', '.join(f'{t:.2f}' for t in times)})")

study = simulate_study(work / "moved", 1, (0,), seed=5, motion_mm=2.0, workers=2)
ref = find_scans(study)[0]
t1w = load_volume(ref.t1w)
for role, path in (("T2w", ref.t2w), ("CE", ref.ce)):
    moving = load_volume(path)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        _, result = register(t1w.data, t1w.affine, moving.data, moving.affine, role)
        times.append(time.perf_counter() - start)
    print(f"rigid registration {role} -> T1w, 160x160x15: {statistics.median(times):.2f} s; {result.note()}")
