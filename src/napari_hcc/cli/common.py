"""What the command handlers share: the scans named on the command line, and the
adapters that turn the core's `Progress` updates (progress.py) into tqdm bars and lines on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from napari_hcc.errors import UsageError
from napari_hcc.io.scan import ScanRef, stand_ins_for
from napari_hcc.io.study import find_scans
from napari_hcc.progress import Progress, ProgressFn


def scan_refs(
    args, with_truth: bool = True, hint: str = "an INPUT folder (-i)", mask: Path | None = None
) -> list[ScanRef]:
    """The scans named on the command line: files of one scan (any of --t1w, --t2w, --ce with a T1w or a
    T2w; a missing sequence is read from a stand-in, as in a session without it), or every scan under INPUT."""
    if args.t1w or args.t2w or args.ce:
        present = {role: path for role, path in (("T1w", args.t1w), ("T2w", args.t2w), ("CE", args.ce)) if path}
        for role, path in present.items():
            if Path(path).is_dir():  # named by its option, with the way to read a scanner folder
                raise UsageError(
                    f"--{role.lower()} {path} is a folder, not a NIfTI file; a DICOM or Bruker folder is read after "
                    f"`napari-hcc import {path} -o STUDY`, then `-i STUDY`."
                )
        stand_ins = stand_ins_for(present)
        if stand_ins is None:
            raise UsageError("one scan needs a --t1w or a --t2w; a --ce alone cannot be read.")
        full = {role: present.get(role) or present[stand_ins[role]] for role in ("T1w", "T2w", "CE")}
        return [ScanRef(full["T1w"], full["T2w"], full["CE"], mask, stand_ins=tuple(sorted(stand_ins.items())))]
    if args.input:
        return find_scans(args.input, with_truth=with_truth)
    raise UsageError(f"give {hint} or --t1w, --t2w and --ce.")


def say(text: str) -> None:
    """A line on stderr that does not break a progress bar."""
    tqdm.write(text, file=sys.stderr)


@contextmanager
def progress_bar(desc: str, unit: str, quiet: bool, total: int | None = None) -> Iterator[ProgressFn]:
    """A tqdm bar fed by `Progress` updates (done of total); nothing is shown when `quiet`."""
    with tqdm(total=total, unit=unit, desc=desc, disable=quiet) as bar:

        def progress(update: Progress) -> None:
            bar.total = update.total
            bar.update(update.done - bar.n)

        yield progress


class TrainingProgress:
    """`train`'s updates on the terminal: a bar of the epoch's batches with their losses, and one line per
    epoch (losses and validation), as `napari-hcc train` and `evaluate --cv` show them."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, update: Progress) -> None:
        d = update.detail
        if update.unit == "batch":
            if self.bar is None:
                self.bar = tqdm(total=d["batches"], desc=f"epoch {d['epoch']}/{d['epochs']}", unit="batch", leave=False)
            self.bar.update(1)
            self.bar.set_postfix(
                loss=f"{d['loss']:.3f}", seg=f"{d['seg']:.3f}", arm=f"{d['arm']:.3f}", bio=f"{d['bio']:.3f}"
            )
            if update.done == update.total:
                self.close()
        elif update.unit == "epoch":
            self.close()
            if d.get("resumed"):
                tqdm.write(f"resuming {d['out']} after epoch {update.done} of {update.total}")
                return
            validation = "".join(
                f", val {k[4:].replace('_', ' ')} {v:.4f}" for k, v in d.items() if k.startswith("val_")
            )
            tqdm.write(
                "epoch {epoch}: loss {loss:.4f} (seg {seg:.4f}, arm {arm:.4f}, bio {bio:.4f})".format(**d) + validation
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
