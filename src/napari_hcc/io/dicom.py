"""DICOM folders: every MR series found at any depth, checked with pydicom, converted by dcm2niix.

pydicom reads the headers (no pixels) to sort files into series and to check each series before
anything is written: one orientation (else a multi-plane localiser), one echo per volume (multi-echo
series are split by echo), one slice per position (else a time series), evenly spaced slices (a gap
of one missing file, or uneven spacing, is refused with one sentence). dcm2niix (the PyPI wheel's
binary) converts the series that pass into NIfTI with its BIDS sidecar; it handles classic and
enhanced multi-frame objects, scaling, mosaics and vendor quirks better than any hand-written code.

`open_dicom_folder` is a context manager: the converted files live in a temporary folder that is
removed on the way out, so read the pixels inside the `with` block.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import dcm2niix
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from napari_hcc.errors import InputError
from napari_hcc.io.acquisition import Acquisition
from napari_hcc.io.nibabel_without_pydicom import nib

#: MR, Enhanced MR, Legacy Converted Enhanced MR
_MR_IMAGE_CLASSES = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4"}
_MAP_WORDS = ("ADC", "FA", "TRACEW", "T1MAP", "T2MAP", "T2STAR", "R2", "MAP", "SUB", "MIP", "MPR", "PROJECTION")


def is_dicom_folder(path: Path) -> bool:
    """True for a folder that holds at least one DICOM file (at any depth; the first few files are tried)."""
    path = Path(path)
    if not path.is_dir():
        return False
    for n, f in enumerate(_files(path)):
        if n > 50:
            return False
        if _read_header(f) is not None:
            return True
    return False


def _files(root: Path) -> Iterator[Path]:
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if not name.startswith(".") and name.upper() != "DICOMDIR":
                yield Path(folder) / name


def _read_header(path: Path):
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, AttributeError):
        return None


def _num(ds, key, default=None):
    value = ds.get(key)
    if value in (None, ""):
        return default
    try:
        return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)
    except (TypeError, ValueError):
        return default


def _text(ds, key) -> str:
    value = ds.get(key)
    return str(value).strip() if value not in (None, "") else ""


def _series_name(ds) -> str:
    return f"series {_text(ds, 'SeriesNumber') or '?'} '{_text(ds, 'SeriesDescription') or _text(ds, 'ProtocolName')}'"


def _left_out_kind(ds) -> str | None:
    if ds.get("SOPClassUID") not in _MR_IMAGE_CLASSES:
        modality = _text(ds, "Modality") or "unknown modality"
        return f"not an MR image ({modality})"
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if _num(ds, "DiffusionBValue", 0) > 0 or "DIFFUSION" in image_type or "TRACEW" in image_type:
        return "diffusion-weighted"
    if "DERIVED" in image_type and any(w in image_type for w in _MAP_WORDS):
        return "a derived image (" + "/".join(t for t in image_type[2:] if t) + ")"
    return None


def _group(files: list[tuple[Path, object]], folder: Path) -> dict[str, list[tuple[Path, object]]]:
    series: dict[str, list[tuple[Path, object]]] = defaultdict(list)
    for path, ds in files:
        uid = _text(ds, "SeriesInstanceUID")
        if not uid:
            raise InputError(f"DICOM file {path} has no SeriesInstanceUID; its series cannot be told apart.")
        series[uid].append((path, ds))
    return series


def slice_normal(ds) -> np.ndarray:
    """The normal of an instance's image plane (LPS), from ImageOrientationPatient."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return np.cross(iop[:3], iop[3:])


def slice_position(ds, normal: np.ndarray) -> float:
    """Where an instance lies along the slice normal (mm)."""
    return float(normal @ np.asarray(ds.ImagePositionPatient, dtype=float))


def _check_stack(items: list[tuple[Path, object]], name: str, folder: Path) -> tuple[str | None, list]:
    """Sort one orientation/echo stack by position; refuse missing or uneven slices. Returns (left_out, items)."""
    first = items[0][1]
    for path, ds in items:
        if (ds.get("Rows"), ds.get("Columns")) != (first.get("Rows"), first.get("Columns")):
            raise InputError(
                f"DICOM {name} in {folder} mixes image sizes ({first.Rows}x{first.Columns} and "
                f"{ds.Rows}x{ds.Columns}, e.g. {path.name}); it is not one volume."
            )
    normal = slice_normal(first)
    pos = np.array([slice_position(ds, normal) for _, ds in items])
    order = np.argsort(pos, kind="stable")
    items = [items[i] for i in order]
    pos = pos[order]
    unique = np.unique(np.round(pos, 3))
    if len(unique) < len(pos):
        if len(pos) % len(unique) == 0:
            return f"a series of {len(pos) // len(unique)} volumes (dynamic or repeated)", items
        raise InputError(
            f"DICOM {name} in {folder} has {len(pos)} images at {len(unique)} slice positions; "
            "some positions hold more images than others, so it is not one volume."
        )
    if len(pos) < 3:
        return None, items
    steps = np.diff(pos)
    step = float(np.median(steps))
    if step <= 0:
        raise InputError(f"DICOM {name} in {folder} has slices at one position; its geometry is unknown.")
    big = np.nonzero(steps > 1.5 * step)[0]
    if len(big):
        i = int(big[0])
        missing = round(float(steps[i]) / step) - 1
        raise InputError(
            f"DICOM {name} in {folder} is missing {missing} slice(s) between {items[i][0].name} and "
            f"{items[i + 1][0].name} ({steps[i]:.2f} mm apart where the others are {step:.2f} mm); "
            "a file was lost: export the series again."
        )
    if np.max(np.abs(steps - step)) > max(0.01 * step, 0.005):
        raise InputError(
            f"DICOM {name} in {folder} has unequal slice spacing ({steps.min():.2f} to {steps.max():.2f} mm); "
            "it is not one regular volume and would be placed wrongly."
        )
    return None, items


def _stacks(items, name: str, folder: Path) -> list[tuple[str, str | None, list, object]]:
    """Split a series into volumes: (suffix, left_out, sorted items, (echo, echoes)) per echo; localisers whole."""
    first = items[0][1]
    if first.get("NumberOfFrames") not in (None, "", 1, "1") or "ImageOrientationPatient" not in first:
        return [("", None, items, None)]  # enhanced multi-frame: dcm2niix sorts the frames out
    orientations = {tuple(np.round(np.asarray(ds.ImageOrientationPatient, dtype=float), 3)) for _, ds in items}
    if len(orientations) > 1:
        return [("", f"a {len(orientations)}-plane localiser", items, None)]  # echo: None
    echoes: dict[int, list] = defaultdict(list)
    for path, ds in items:
        echoes[int(_num(ds, "EchoNumbers", 1) or 1)].append((path, ds))
    out = []
    for echo, group in sorted(echoes.items()):
        left_out, group = _check_stack(group, name + (f" echo {echo}" if len(echoes) > 1 else ""), folder)
        suffix = f" echo {echo} of {len(echoes)}" if len(echoes) > 1 else ""
        out.append((suffix, left_out, group, (echo, len(echoes))))
    return out


def _convert(files: list[Path], out_dir: Path, name: str) -> tuple[Path, dict]:
    """dcm2niix one volume's files into out_dir; return the NIfTI and its sidecar."""
    src = out_dir / "in"
    src.mkdir(parents=True)
    for i, f in enumerate(files):
        os.symlink(os.path.abspath(f), src / f"{i:06d}.dcm")
    result = subprocess.run(
        [dcm2niix.bin, "-z", "y", "-b", "y", "-ba", "n", "-m", "n", "-f", "vol", "-o", str(out_dir), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    niftis = sorted(out_dir.glob("vol*.nii.gz"))
    if result.returncode != 0 or len(niftis) != 1:
        said = [line for line in (result.stdout + result.stderr).splitlines() if "rror" in line or "arn" in line]
        why = said[0].strip() if said else f"{len(niftis)} volumes made"
        raise InputError(f"DICOM {name} could not be converted by dcm2niix ({why}).")
    return niftis[0], json.loads(niftis[0].with_name(niftis[0].name[:-7] + ".json").read_text())


def _plane(ds) -> str | None:
    if "ImageOrientationPatient" not in ds:
        return None
    return {0: "sagittal", 1: "coronal", 2: "axial"}[int(np.argmax(np.abs(slice_normal(ds))))]


def _sidecar(ds, converted: dict) -> dict:
    keep = {k: v for k, v in converted.items() if k not in ("ConversionSoftware", "ConversionSoftwareVersion")}
    agent = _text(ds, "ContrastBolusAgent")
    if agent:
        keep["ContrastBolusAgent"] = agent
    route = _text(ds, "ContrastBolusRoute")
    if route:
        keep["ContrastBolusRoute"] = route
    keep["SourceConversion"] = f"dcm2niix {converted.get('ConversionSoftwareVersion', '')}".strip()
    return keep


def _reader(path: Path):
    def read() -> np.ndarray:
        img = nib.load(str(path))
        return np.asarray(img.get_fdata(dtype=np.float32))

    return read


def _acquisitions(folder: Path, work: Path) -> list[Acquisition]:
    headers = [(f, ds) for f in _files(folder) if (ds := _read_header(f)) is not None]
    if not headers:
        raise InputError(f"{folder} holds no DICOM files.")
    out: list[Acquisition] = []
    for n, items in enumerate(_group(headers, folder).values()):
        ds = items[0][1]
        name = _series_name(ds)
        base = dict(
            source="dicom",
            description=_text(ds, "SeriesDescription") or _text(ds, "ProtocolName"),
            subject=_text(ds, "PatientID") or _text(ds, "PatientName"),
            study_date=_text(ds, "StudyDate"),
        )
        kind = _left_out_kind(ds)
        if kind:
            out.append(Acquisition(name=name, shape=(), affine=np.eye(4), left_out=kind,
                                   files=tuple(p for p, _ in items), **base))  # fmt: skip
            continue
        for m, (suffix, left_out, group, echo) in enumerate(_stacks(items, name, folder)):
            files = tuple(p for p, _ in group)
            if left_out:
                out.append(Acquisition(name=name + suffix, shape=(), affine=np.eye(4), left_out=left_out,
                                       files=files, sidecar=_sidecar(group[0][1], {}), **base))  # fmt: skip
                continue
            nifti, converted = _convert(list(files), work / f"s{n:03d}_{m:02d}", name + suffix)
            if echo is not None and echo[1] > 1:
                converted |= {"EchoNumber": echo[0], "EchoCount": echo[1]}
            img = nib.load(str(nifti))
            shape = img.shape[:3] if len(img.shape) == 3 or img.shape[3:] == (1,) else img.shape
            if len(shape) != 3:
                left = f"a series of {int(np.prod(shape[3:]))} volumes"
                out.append(Acquisition(name=name + suffix, shape=(), affine=np.eye(4), left_out=left,
                                       files=files, **base))  # fmt: skip
                continue
            out.append(Acquisition(name=name + suffix, shape=tuple(int(v) for v in shape),
                                   affine=np.asarray(img.affine, dtype=float), sidecar=_sidecar(group[0][1], converted),
                                   files=files, reader=_reader(nifti), acquired_plane=_plane(group[0][1]),
                                   **base))  # fmt: skip
    return out


@contextlib.contextmanager
def open_dicom_folder(folder: str | Path) -> Iterator[list[Acquisition]]:
    """The series of a DICOM folder (any depth, series mixed) as Acquisitions, readable inside the block."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of DICOM files.")
    with tempfile.TemporaryDirectory(prefix="napari-hcc-dicom-") as tmp:
        yield _acquisitions(folder, Path(tmp))
