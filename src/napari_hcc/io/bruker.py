"""Bruker ParaVision studies (a study folder or a zip of one), read with brkraw.

brkraw parses the parameter files (`subject`, `acqp`, `method`, `visu_pars`) and reads `2dseq`; this
module turns each scan's slice packages into `Acquisition`s.

Geometry convention: the DICOM patient frame, as ParaVision's own DICOM export and dicomifier write it.
`VisuCorePosition` and `VisuCoreOrientation` are already given in the subject's frame (ParaVision has
applied the animal's position, e.g. Head_Prone), so the voxel-centre affine is built from them per
slice package (LPS, then flipped to RAS+). brkraw 0.5.7's own `subject_ras` affine places the same
voxels turned 180 degrees about the head-foot axis for a prone animal, and puts the slices of a
localiser package 3 mm apart where `VisuCorePosition` says 2 mm; both are checked in the tests against
the reference conversion.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import brkraw
import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.acquisition import Acquisition
from napari_hcc.io.orientation import LPS_TO_RAS

_WORD_BYTES = {"_8BIT_UNSGN_INT": 1, "_16BIT_SGN_INT": 2, "_32BIT_SGN_INT": 4, "_32BIT_FLOAT": 4}
#: Frame groups that are slices of one volume; anything else (echoes, repetitions, diffusion
#: directions, cycles) makes the scan a series of volumes.
_SLICE_GROUPS = {"<FG_SLICE>"}
_GROUP_WORDS = {
    "<FG_ECHO>": "multi-echo ({n} echoes)",
    "<FG_DIFFUSION>": "diffusion-weighted ({n} frames)",
    "<FG_CYCLE>": "a time series ({n} repetitions)",
    "<FG_MOVIE>": "a time series ({n} frames)",
    "<FG_IRMODE>": "an inversion-recovery series ({n} inversion times)",
}


def is_bruker_study(path: Path) -> bool:
    """True for a ParaVision study folder (a `subject` file beside numbered scan folders) or a zip of one."""
    path = Path(path)
    if path.is_dir():
        return (path / "subject").is_file() and any((p / "acqp").is_file() for p in path.iterdir() if p.is_dir())
    if path.is_file() and path.suffix.lower() in (".zip", ".pvdatasets"):
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.rstrip("/").endswith("subject") for n in zf.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(_text(v) for v in value)
    return str(value).strip().strip("<>").strip()


def _number(value) -> float | None:
    if value is None:
        return None
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    return float(arr[0]) if arr.size else None


def _date(value) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d")
    text = _text(value)
    digits = text.replace("-", "")[:8]
    return digits if digits.isdigit() and len(digits) == 8 else ""


def _frame_groups(visu) -> list[tuple[int, str]]:
    desc = visu.get("VisuFGOrderDesc")
    if desc is None:
        return []
    rows = [desc] if not isinstance(desc[0], (list, tuple)) else list(desc)
    return [(int(r[0]), str(r[1])) for r in rows]


def _package_affine(visu, frames: list[int], size, extent, dim: int) -> np.ndarray:
    orient = np.asarray(visu.get("VisuCoreOrientation"), dtype=float).reshape(-1, 9)
    pos = np.asarray(visu.get("VisuCorePosition"), dtype=float).reshape(-1, 3)
    rows = orient[frames[0]].reshape(3, 3)
    step = np.asarray(extent, dtype=float) / np.asarray(size, dtype=float)
    a = np.eye(4)
    a[:3, 0] = rows[0] * step[0]
    a[:3, 1] = rows[1] * step[1]
    if dim == 3:
        a[:3, 2] = rows[2] * step[2]
    elif len(frames) > 1:
        a[:3, 2] = (pos[frames[-1]] - pos[frames[0]]) / (len(frames) - 1)
    else:
        a[:3, 2] = rows[2] * float(_number(visu.get("VisuCoreFrameThickness")) or 1.0)
    a[:3, 3] = pos[frames[0]]
    return LPS_TO_RAS @ a


def _sidecar(visu, method, acqp, scan_id: int, reco_id: int, package: int, packages: int) -> dict:
    freq = _number(visu.get("VisuAcqImagingFrequency")) or _number(acqp.get("BF1"))
    te = _number(visu.get("VisuAcqEchoTime"))
    tr = _number(visu.get("VisuAcqRepetitionTime"))
    out = {
        "Manufacturer": "Bruker",
        "ManufacturersModelName": _text(visu.get("VisuStation")),
        "SoftwareVersions": _text(visu.get("VisuAcqSoftwareVersion")),
        "MagneticFieldStrength": round(freq / 42.577478, 2) if freq else None,
        "ImagingFrequency": freq,
        "PulseSequenceType": _text(visu.get("VisuAcqSequenceName")),
        "ScanningSequence": _text(visu.get("VisuAcqEchoSequenceType")),
        "ProtocolName": _text(visu.get("VisuAcquisitionProtocol")),
        "SeriesDescription": _text(acqp.get("ACQ_scan_name")) or _text(visu.get("VisuAcquisitionProtocol")),
        "MRAcquisitionType": f"{int(visu.get('VisuCoreDim'))}D",
        "RepetitionTime": tr / 1000.0 if tr else None,
        "EchoTime": te / 1000.0 if te else None,
        "FlipAngle": _number(visu.get("VisuAcqFlipAngle")),
        "EchoTrainLength": int(_number(visu.get("VisuAcqEchoTrainLength")) or 1),
        "NumberOfAverages": _number(visu.get("VisuAcqNumberOfAverages")),
        "PatientPosition": _text(visu.get("VisuSubjectPosition")),
        "SliceThickness": _number(visu.get("VisuCoreFrameThickness")),
        "BrukerScan": {"scan": scan_id, "reco": reco_id, "slice_package": package, "slice_packages": packages},
    }
    return {k: v for k, v in out.items() if v not in (None, "")}


def _check_2dseq(path: Path, visu, frames: int, label: str) -> None:
    word = _text(visu.get("VisuCoreWordType"))
    size = [int(n) for n in np.atleast_1d(visu.get("VisuCoreSize"))]
    expected = int(np.prod(size)) * frames * _WORD_BYTES.get("_" + word.lstrip("_"), 0)
    if not path.is_file():
        raise InputError(f"{label}: {path} is missing; the scan has no reconstructed image.")
    actual = path.stat().st_size
    if expected and actual != expected:
        what = "truncated" if actual < expected else "longer than described"
        raise InputError(
            f"{path} holds {actual} bytes but visu_pars describes {frames} frames of "
            f"{'x'.join(map(str, size))} {word} ({expected} bytes): the 2dseq is {what} or visu_pars disagrees with it."
        )


def _scan_acquisitions(study, root: Path, scan_id: int, subject: str, date: str) -> list[Acquisition]:
    scan = study.get_scan(scan_id)
    reco_id = min(scan.avail)
    visu = scan.avail[reco_id].visu_pars
    method, acqp = scan.method, scan.acqp
    protocol = _text(visu.get("VisuAcquisitionProtocol")) or _text(acqp.get("ACQ_protocol_name"))
    label = f"scan {scan_id} '{protocol}'"
    dim = int(visu.get("VisuCoreDim"))
    size = [int(n) for n in np.atleast_1d(visu.get("VisuCoreSize"))]
    extent = [float(v) for v in np.atleast_1d(visu.get("VisuCoreExtent"))]
    nframes = int(_number(visu.get("VisuCoreFrameCount")) or 1)
    seq_path = root / str(scan_id) / "pdata" / str(reco_id) / "2dseq"
    groups = _frame_groups(visu)
    other = [(n, g) for n, g in groups if g not in _SLICE_GROUPS and n > 1]
    packs = visu.get("VisuCoreSlicePacksSlices")
    if dim == 2 and packs is not None:
        pack_sizes = [int(p[1]) for p in (packs if isinstance(packs[0], (list, tuple)) else [packs])]
    else:
        pack_sizes = [nframes]
    base = dict(source="bruker", subject=subject, study_date=date, files=(seq_path,))
    if other:
        n, g = other[0]
        why = _GROUP_WORDS.get(g, "a series of volumes ({n} frames of " + g.strip("<>") + ")").format(n=n)
        sidecar = _sidecar(visu, method, acqp, scan_id, reco_id, 1, len(pack_sizes))
        return [Acquisition(name=label, description=protocol, shape=(), affine=np.eye(4), sidecar=sidecar,
                            left_out=f"{why}; one 3-D volume per role is needed", **base)]  # fmt: skip
    _check_2dseq(seq_path, visu, nframes, label)
    if sum(pack_sizes) != nframes:
        raise InputError(
            f"{root / str(scan_id)}: visu_pars lists slice packages of {pack_sizes} slices but {nframes} frames."
        )
    slope = np.atleast_1d(np.asarray(visu.get("VisuCoreDataSlope", 1.0), dtype=float))
    offset = np.atleast_1d(np.asarray(visu.get("VisuCoreDataOffs", 0.0), dtype=float))
    out = []
    start = 0
    localiser = len(pack_sizes) > 1 and len({_orientation_key(visu, start) for start in _starts(pack_sizes)}) > 1
    for p, n in enumerate(pack_sizes, start=1):
        frames = list(range(start, start + n))
        start += n
        shape = (size[0], size[1], n) if dim == 2 else tuple(size)
        affine = _package_affine(visu, frames, size, extent, dim)
        name = label + (f" package {p} of {len(pack_sizes)}" if len(pack_sizes) > 1 else "")
        sidecar = _sidecar(visu, method, acqp, scan_id, reco_id, p, len(pack_sizes))
        reader = _package_reader(study, scan_id, reco_id, p - 1, frames, slope, offset)
        left_out = None
        if localiser and ("locali" in protocol.lower() or "tripilot" in protocol.lower() or n < 5):
            left_out = f"a {len(pack_sizes)}-plane localiser"
        out.append(Acquisition(name=name, description=protocol, shape=shape, affine=affine, sidecar=sidecar,
                               left_out=left_out, reader=reader, **base))  # fmt: skip
    return out


def _starts(pack_sizes: list[int]) -> list[int]:
    return [int(s) for s in np.cumsum([0, *pack_sizes[:-1]])]


def _orientation_key(visu, frame: int) -> tuple:
    orient = np.asarray(visu.get("VisuCoreOrientation"), dtype=float).reshape(-1, 9)
    return tuple(np.round(orient[frame][6:], 2))


def _package_reader(study, scan_id: int, reco_id: int, index: int, frames: list[int], slope, offset):
    def read() -> np.ndarray:
        objs = study.get_dataobj(scan_id, reco_id)
        obj = objs[index] if isinstance(objs, tuple) else objs
        data = np.asarray(obj, dtype=np.float32)
        if data.ndim == 2:
            data = data[..., None]
        s = slope[frames] if slope.size > 1 else np.full(len(frames), slope[0])
        o = offset[frames] if offset.size > 1 else np.full(len(frames), offset[0])
        if data.shape[-1] == len(frames):
            return data * s.astype(np.float32) + o.astype(np.float32)
        return data * np.float32(s[0]) + np.float32(o[0])  # 3-D: one frame

    return read


@contextlib.contextmanager
def open_bruker_study(path: str | Path) -> Iterator[list[Acquisition]]:
    """Every scan of a ParaVision study folder, or of a zip of one, as Acquisitions readable inside the block.

    A zip is unpacked into a temporary folder that is removed on the way out.
    """
    path = Path(path)
    if path.is_dir():
        yield read_bruker_study(path)
        return
    with tempfile.TemporaryDirectory(prefix="napari-hcc-bruker-") as tmp:
        try:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{path} could not be unpacked as a zip of a ParaVision study ({_reason(exc)}).") from None
        roots = sorted({p.parent for p in Path(tmp).rglob("subject")}, key=lambda p: len(p.parts))
        if not roots:
            raise InputError(f"{path} holds no ParaVision study (no 'subject' file).")
        yield read_bruker_study(roots[0], shown_as=path)


def read_bruker_study(path: str | Path, shown_as: Path | None = None) -> list[Acquisition]:
    """Every scan of a ParaVision study folder as Acquisitions, in scan order."""
    path = Path(path)
    try:
        study = brkraw.load(str(path))
    except Exception as exc:  # noqa: BLE001 - brkraw raises many kinds; the user needs one sentence
        raise InputError(f"{path} could not be read as a ParaVision study ({_reason(exc)}).") from None
    subj = study.subject or {}
    subject = _text((subj.get("Subject") or {}).get("ID")) or (shown_as or path).name
    date = _date((subj.get("Study") or {}).get("Date"))
    root = path
    out: list[Acquisition] = []
    for scan_id in sorted(study.avail):
        try:
            out.extend(_scan_acquisitions(study, root, int(scan_id), subject, date))
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged scan folder; name it
            raise InputError(
                f"{path / str(scan_id)} could not be read as a ParaVision scan ({_reason(exc)})."
            ) from None
    if not out:
        raise InputError(f"{path} is a ParaVision study with no reconstructed scans (no pdata/*/2dseq).")
    return out


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__
