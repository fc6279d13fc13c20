"""`napari-hcc simulate`, `import` and `check`: studies in, files and a report out. No torch here."""

from __future__ import annotations

import time

from napari_hcc.cli.common import progress_bar, scan_refs
from napari_hcc.importing.importer import import_study
from napari_hcc.registration.align import aligner
from napari_hcc.simulate.cohort import check_arguments, simulate_study
from napari_hcc.simulate.render import Grid


def simulate(args) -> int:
    check_arguments(args.rats_per_arm, args.weeks)
    grid = Grid(shape=(args.matrix, args.matrix, args.slices), spacing=(args.pixel_mm, args.pixel_mm, args.slice_mm))
    start = time.perf_counter()
    total = args.rats_per_arm * 4 * len(set(args.weeks))
    with progress_bar("simulate", "scan", args.quiet, total) as progress:
        root = simulate_study(
            args.out, args.rats_per_arm, args.weeks, args.seed, grid, args.motion_mm, args.workers, progress
        )
    print(
        f"wrote {args.rats_per_arm * 4} rats x {len(set(args.weeks))} sessions to {root} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


def check(args) -> int:
    align = aligner(args.register) if args.register else None
    scans = [ref.load(args.on_mismatch, align) for ref in scan_refs(args, hint="an INPUT folder", mask=args.mask)]
    for scan in scans:
        mask = f", mask {int(scan.mask.sum())} voxels" if scan.mask is not None else ""
        arm = f" [{scan.arm}]" if scan.arm else ""
        print(
            f"{scan.label}{arm}: {'x'.join(map(str, scan.shape))} voxels of "
            f"{'x'.join(f'{v:.2f}' for v in scan.spacing)} mm, {scan.orientation}, slice axis {scan.slice_axis}{mask}"
        )
        for note in scan.notes:
            print(f"  note: {note}")
    print(f"{len(scans)} scan(s) ok")
    return 0


def import_(args) -> int:
    # no progress bar: an import takes seconds, and what it says is the mapping below
    result = import_study(args.inputs, args.out, args.subject, args.session, args.map_path)
    if not args.quiet:
        for item in result.sessions:
            print(f"sub-{item.subject} ses-{item.session}:")
            for role, path in item.files.items():
                print(f"  {role:<4} <- {item.sources[role]}  ->  {path.relative_to(result.study)}")
            for note in item.notes:
                print(f"  note: {note}")
        for name, why in result.left_out:
            print(f"left out: {name}: {why}")
    print(f"imported {len(result.sessions)} session(s) into {result.study}")
    return 0
