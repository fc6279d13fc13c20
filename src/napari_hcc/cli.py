"""The `napari-hcc` command line: thin, calling the same core functions as the napari widgets.

Heavy modules (numpy work, torch, napari) are imported inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _simulate(args) -> int:
    import time

    from tqdm import tqdm

    from .core.simulate.cohort import check_arguments, simulate_study
    from .core.simulate.render import Grid

    check_arguments(args.rats_per_arm, args.weeks)
    grid = Grid(shape=(args.matrix, args.matrix, args.slices), spacing=(args.pixel_mm, args.pixel_mm, args.slice_mm))
    start = time.perf_counter()
    with tqdm(total=args.rats_per_arm * 4 * len(set(args.weeks)), unit="scan", desc="simulate", disable=args.quiet) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        root = simulate_study(args.out, args.rats_per_arm, args.weeks, args.seed, grid, args.motion_mm, args.workers, progress)
    print(f"wrote {args.rats_per_arm * 4} rats x {len(set(args.weeks))} sessions to {root} in {time.perf_counter() - start:.0f} s")
    return 0


def _check(args) -> int:
    from .core.study import find_scans, load_scan

    if args.t1w or args.t2w or args.ce:
        missing = [n for n, v in (("--t1w", args.t1w), ("--t2w", args.t2w), ("--ce", args.ce)) if not v]
        if missing:
            raise _UsageError(f"one scan needs all three files; missing {', '.join(missing)}.")
        scans = [load_scan(args.t1w, args.t2w, args.ce, args.mask, on_mismatch=args.on_mismatch)]
    elif args.input:
        scans = [ref.load(args.on_mismatch) for ref in find_scans(args.input)]
    else:
        raise _UsageError("give an INPUT folder or --t1w, --t2w and --ce.")
    for scan in scans:
        mask = f", mask {int(scan.mask.sum())} voxels" if scan.mask is not None else ""
        arm = f" [{scan.arm}]" if scan.arm else ""
        print(f"{scan.label}{arm}: {'x'.join(map(str, scan.shape))} voxels of "
              f"{'x'.join(f'{v:.2f}' for v in scan.spacing)} mm, {scan.orientation}, slice axis {scan.slice_axis}{mask}")
        for note in scan.notes:
            print(f"  note: {note}")
    print(f"{len(scans)} scan(s) ok")
    return 0


def _view(args) -> int:
    from .gui.launch import launch

    return launch(args.input)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-hcc",
        description="Preclinical HCC MRI in rats: simulate cohorts, check and view scans (napari).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated preclinical cohort as a BIDS study")
    sim.add_argument("--out", required=True, type=Path, help="study folder to write")
    sim.add_argument("--rats-per-arm", type=int, default=8, help="rats in each of the 4 arms (default 8)")
    sim.add_argument("--weeks", type=int, nargs="+", default=[0, 1, 2, 3], help="scan weeks; 0 = baseline (default 0 1 2 3)")
    sim.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical files")
    sim.add_argument("--matrix", type=int, default=160, help="in-plane matrix (default 160)")
    sim.add_argument("--pixel-mm", type=float, default=0.3, help="in-plane pixel size in mm (default 0.3)")
    sim.add_argument("--slices", type=int, default=15, help="number of axial slices (default 15)")
    sim.add_argument("--slice-mm", type=float, default=1.2, help="slice thickness in mm (default 1.2)")
    sim.add_argument("--motion-mm", type=float, default=0.3, help="largest in-plane shift between sequences (default 0.3; 0 = none)")
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=_simulate)

    chk = sub.add_parser("check", help="load scans, check their geometry and report what was found")
    chk.add_argument("input", nargs="?", type=Path, help="a study, subject, session or original-layout folder")
    chk.add_argument("--t1w", type=Path)
    chk.add_argument("--t2w", type=Path)
    chk.add_argument("--ce", type=Path)
    chk.add_argument("--mask", type=Path)
    chk.add_argument("--on-mismatch", choices=["resample", "refuse"], default="resample",
                     help="sequences on different grids: resample onto the T1w grid (default) or refuse")
    chk.set_defaults(func=_check)

    view = sub.add_parser("view", help="open napari with the plugin docked and a scan loaded (default: the sample)")
    view.add_argument("input", nargs="?", type=Path, help="a study, session or original-layout folder")
    view.set_defaults(func=_view)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .core.study import InputError

    try:
        return int(args.func(args) or 0)
    except (InputError, _UsageError, ValueError, FileNotFoundError) as exc:
        print(f"napari-hcc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"napari-hcc {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
