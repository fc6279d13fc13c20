"""A tumor mask as a DICOM Segmentation object (highdicom), on the geometry of the DICOM series it came from.

The mask lives on the NIfTI grid that `import` wrote (dcm2niix may store a 3-D acquisition reoriented);
each source instance's pixels are located in the world (ImagePositionPatient, ImageOrientationPatient,
PixelSpacing) and looked up in the mask, so frame f of the SEG covers exactly source instance f. The SEG
references the source series (study, series and SOP instance UIDs), so 3D Slicer, OHIF and PACS lay it
over the images it was drawn on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.sr.codedict import codes

from napari_hcc import __version__
from napari_hcc.errors import InputError
from napari_hcc.io.atomic import atomic_path
from napari_hcc.io.dicom import slice_normal, slice_position
from napari_hcc.io.json_files import read_sidecar
from napari_hcc.io.orientation import LPS_TO_RAS


def source_dicom_files(image_path: Path) -> list[Path] | None:
    """The DICOM files an imported image came from (its sidecar's SourceDicomFiles), or None."""
    files = read_sidecar(image_path).get("SourceDicomFiles")
    return [Path(f) for f in files] if files else None


def in_slice_order(sources: list) -> list:
    """Source instances sorted along their slice normal: the SEG's frame order."""
    normal = slice_normal(sources[0])
    return sorted(sources, key=lambda ds: slice_position(ds, normal))


def _frame_indices(ds, inverse_affine: np.ndarray) -> np.ndarray:
    """The mask voxel index (3, rows, cols) of every pixel of one source instance."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
    rows, cols = int(ds.Rows), int(ds.Columns)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    lps = ipp[:, None, None] + iop[:3, None, None] * (c * dc) + iop[3:, None, None] * (r * dr)
    ras = np.einsum("ij,jrc->irc", LPS_TO_RAS[:3, :3], lps)
    ijk = np.einsum("ij,jrc->irc", inverse_affine[:3, :3], ras) + inverse_affine[:3, 3, None, None]
    return np.rint(ijk).astype(int)


def mask_on_source(mask: np.ndarray, affine: np.ndarray, sources: list) -> np.ndarray:
    """The mask sampled at the pixels of each source instance: (instances, rows, cols) uint8."""
    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    frames = []
    for ds in sources:
        ijk = _frame_indices(ds, inverse)
        inside = np.all((ijk >= 0) & (ijk < np.asarray(mask.shape)[:, None, None]), axis=0)
        frame = np.zeros(inside.shape, dtype=np.uint8)
        frame[inside] = mask[ijk[0][inside], ijk[1][inside], ijk[2][inside]]
        frames.append(frame)
    return np.stack(frames)


def write_dicom_seg(
    mask: np.ndarray,
    affine: np.ndarray,
    source_files: list[Path],
    out_path: Path,
    label: str = "tumor",
    manual: bool = False,
    description: str = "napari-hcc tumor mask",
) -> Path:
    """Write `mask` (on the grid `affine`) as a binary DICOM SEG referencing `source_files`; atomic."""
    missing = [f for f in source_files if not Path(f).is_file()]
    if missing:
        raise InputError(
            f"the DICOM series this scan came from is no longer at {missing[0]} ({len(missing)} files missing); "
            "no DICOM SEG was written."
        )
    sources = in_slice_order([pydicom.dcmread(f) for f in source_files])
    frames = mask_on_source(np.asarray(mask), affine, sources)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="napari-hcc", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL
        if manual
        else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=None if manual else algorithm,
    )
    with warnings.catch_warnings():  # animal IDs are rarely DICOM person names ("MS370"); that is fine here
        warnings.simplefilter("ignore", UserWarning)
        seg = _segmentation(sources, frames, segment, label, manual, description)
    with atomic_path(out_path) as tmp:
        seg.save_as(tmp)
    return out_path


def _segmentation(sources, frames, segment, label: str, manual: bool, description: str) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=int(sources[0].get("SeriesNumber") or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-hcc",
        manufacturer_model_name="napari-hcc",
        software_versions=__version__,
        device_serial_number="0",
        content_description=description[:64],
        series_description=f"{label} SEG ({'reviewed' if manual else 'napari-hcc'})"[:64],
        omit_empty_frames=False,
    )


def read_dicom_seg(path: Path, source_files: list[Path]) -> np.ndarray:
    """A SEG's mask as (instances, rows, cols), frames in the source instances' slice order (for checking)."""
    seg = hd.seg.segread(path)
    sources = in_slice_order([pydicom.dcmread(f, stop_before_pixels=True) for f in source_files])
    uids = [ds.SOPInstanceUID for ds in sources]
    return np.asarray(seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1]))[..., 0]
