"""`napari-hcc simulate`, `import` and `check`: studies in, files and a report out. No torch here."""

from __future__ import annotations

import time

from napari_hcc.cli.common import progress_bar, scan_refs
from napari_hcc.errors import UsageError
from napari_hcc.importing.importer import import_study
from napari_hcc.registration.align import aligner
from napari_hcc.simulate.cohort import VARIED, check_arguments, simulate_study
from napari_hcc.simulate.protocol import STUDY_PROTOCOL, Protocol, load_protocol, protocol_from_study


def simulation_protocol(args) -> Protocol | str:
    """The protocol the command line names: study, varied, a JSON file, or `--like` a real study; with the
    grid options applied to every sequence."""
    if args.like is not None:
        if args.protocol != "study":
            raise UsageError("give --protocol or --like, not both: --like reads the protocol from the study.")
        protocol: Protocol | str = protocol_from_study(args.like)
    elif args.protocol == VARIED:
        protocol = VARIED
    elif args.protocol == "study":
        protocol = STUDY_PROTOCOL
    else:
        protocol = load_protocol(args.protocol)
    grid = {
        "matrix": None if args.matrix is None else (args.matrix, args.matrix),
        "pixel_mm": None if args.pixel_mm is None else (args.pixel_mm, args.pixel_mm),
        "slices": args.slices,
        "slice_mm": args.slice_mm,
    }
    grid = {k: v for k, v in grid.items() if v is not None}
    if args.plane and protocol != VARIED:
        raise UsageError("--plane applies to --protocol varied; a protocol file or --like sets each sequence's plane.")
    if grid and protocol == VARIED:
        raise UsageError(
            "--matrix, --pixel-mm, --slices and --slice-mm do not apply to --protocol varied, which draws its grids."
        )
    if any(v is not None and v <= 0 for v in (args.matrix, args.pixel_mm, args.slices, args.slice_mm)):
        raise UsageError("--matrix, --pixel-mm, --slices and --slice-mm must be positive.")
    return protocol.with_sequences(**grid) if grid else protocol


def simulate(args) -> int:
    check_arguments(args.rats_per_arm, args.weeks)
    protocol = simulation_protocol(args)
    start = time.perf_counter()
    total = args.rats_per_arm * 4 * len(set(args.weeks))
    with progress_bar("simulate", "scan", args.quiet, total) as progress:
        root = simulate_study(
            args.out,
            args.rats_per_arm,
            args.weeks,
            args.seed,
            protocol,
            args.motion_mm,
            args.workers,
            progress,
            args.plane,
        )
    source = protocol if protocol == VARIED else protocol.source
    source += f", {args.plane}" if args.plane else ""
    print(
        f"wrote {args.rats_per_arm * 4} rats x {len(set(args.weeks))} sessions ({source}) to {root} "
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
