"""The options of `napari-hcc simulate` (argparse only: `napari-hcc --help` stays light)."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_hcc.vocabulary import PLANES


def add_simulate_parser(sub) -> argparse.ArgumentParser:
    """Add `simulate` to the command line's subparsers and return its parser."""
    sim = sub.add_parser("simulate", help="write a simulated preclinical cohort as a BIDS study")
    sim.add_argument("--out", required=True, type=Path, help="study folder to write")
    sim.add_argument("--rats-per-arm", type=int, default=8, help="rats in each of the 4 arms (default 8)")
    sim.add_argument(
        "--weeks", type=int, nargs="+", default=[0, 1, 2, 3], help="scan weeks; 0 = baseline (default 0 1 2 3)"
    )
    sim.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    sim.add_argument(
        "--protocol",
        default="study",
        metavar="study|varied|FILE.json",
        help="how the rats are scanned: 'study' (default; the paper's lab, 7 T RARE), 'varied' (a lab drawn at "
        "random for every rat: field, sequences, grids, plane, artifacts), or a protocol JSON file (docs/simulator.md)",
    )
    sim.add_argument(
        "--like",
        type=Path,
        default=None,
        metavar="STUDY",
        help="a real study (as `napari-hcc import` writes it): simulate rats acquired the same way (field, "
        "sequences, TR/TE/flip, grids, plane), with artifacts and SNR drawn per rat",
    )
    sim.add_argument("--matrix", type=int, default=None, help="in-plane matrix of every sequence (study: 160)")
    sim.add_argument("--pixel-mm", type=float, default=None, help="in-plane pixel size in mm (study: 0.3)")
    sim.add_argument("--slices", type=int, default=None, help="number of slices (study: 15)")
    sim.add_argument("--slice-mm", type=float, default=None, help="slice thickness in mm (study: 1.2)")
    sim.add_argument(
        "--motion-mm",
        type=float,
        default=None,
        help="largest in-plane shift of each sequence against the first (study: 0.3; 0 = none)",
    )
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument(
        "--plane",
        choices=PLANES,
        default=None,
        help="with --protocol varied: every lab scans in this plane (default: each lab draws axial, 70 %%, or "
        "coronal); sagittal labs are outside the default world",
    )
    return sim
