"""Scans as napari layer-data tuples, and back. Plain numpy: no napari or Qt import here.

Volumes are shown in the display frame of `io.orientation` (axial slices on the slider, anterior
up, the animal's right on the left of the screen) with their true voxel size as `scale` and the
rest of the NIfTI affine as `affine`, so the three sequences and the mask overlay in millimetres.
Each layer's metadata keeps the source grid (shape, affine, NIfTI header) for exact write-back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hcc.errors import InputError
from napari_hcc.io.nibabel_without_pydicom import nib
from napari_hcc.io.orientation import affine_from_napari, from_display, split_scale, to_display
from napari_hcc.io.scan import Scan, missing_note, stand_ins_for
from napari_hcc.io.volume import describe_grid, same_grid

META_KEY = "napari_hcc"
#: the three sequences of a scan, in the model's channel order; also the keys of `Scan.paths`
#: How each sequence is shown: fused as colour channels over a grey T1w, each one toggleable.
STYLE = {
    "T1w": {"colormap": "gray", "blending": "translucent_no_depth", "opacity": 1.0},
    "T2w": {"colormap": "magenta", "blending": "additive", "opacity": 0.55},
    "CE": {"colormap": "green", "blending": "additive", "opacity": 0.7},
}


def source_geometry(shape, affine, header=None, path: Path | None = None) -> dict:
    geo = {"shape": [int(n) for n in shape], "affine": np.asarray(affine, dtype=float).tolist()}
    if header is not None:
        geo["header"] = bytes(header.binaryblock)
    if path is not None:
        geo["path"] = str(path)
    return geo


def contrast_limits(data: np.ndarray) -> tuple[float, float]:
    """Robust window: 0.5th to 99.5th percentile of the non-background voxels."""
    sample = data[data > 0] if np.any(data > 0) else data.ravel()
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _geometry_kwargs(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, dict]:
    shown, world = to_display(data, affine)
    scale, unit = split_scale(world)
    return shown, {"scale": tuple(float(s) for s in scale), "affine": unit}


def image_layer(data: np.ndarray, affine: np.ndarray, name: str, role: str | None, geometry: dict, **style) -> tuple:
    shown, geo = _geometry_kwargs(data.astype(np.float32, copy=False), affine)
    kwargs = {"name": name, "contrast_limits": contrast_limits(data), **geo, **style}
    kwargs["metadata"] = {META_KEY: {"role": role, "source": geometry}}
    return shown, kwargs, "image"


def labels_layer(mask: np.ndarray, affine: np.ndarray, name: str, geometry: dict, role: str = "mask") -> tuple:
    shown, geo = _geometry_kwargs(mask.astype(np.uint8, copy=False), affine)
    kwargs = {"name": name, "opacity": 0.45, **geo, "metadata": {META_KEY: {"role": role, "source": geometry}}}
    return shown, kwargs, "labels"


def scan_layers(scan: Scan) -> list[tuple]:
    """Layer-data tuples for a scan: T1w, T2w, CE images and, if present, the mask as Labels."""
    geometry = source_geometry(scan.shape, scan.affine, scan.header, scan.paths.get("T1w"))
    scan_meta = {
        "subject": scan.subject,
        "session": scan.session,
        "arm": scan.arm,
        "notes": list(scan.notes),
        "paths": {k: str(v) for k, v in scan.paths.items()},
        "stand_ins": dict(scan.stand_ins),
    }
    layers = []
    alone = len(set(STYLE) - set(scan.stand_ins)) == 1  # one real sequence: shown grey, not as an overlay tint
    for role, data in (("T1w", scan.t1w), ("T2w", scan.t2w), ("CE", scan.ce)):
        if role in scan.stand_ins:  # a sequence the session lacks gets no layer; the picker says "none"
            continue
        layer = image_layer(data, scan.affine, role, role, geometry, **(STYLE["T1w"] if alone else STYLE[role]))
        layer[1]["metadata"][META_KEY]["scan"] = scan_meta
        layers.append(layer)
    if scan.mask is not None:
        layer = labels_layer(scan.mask, scan.affine, scan.mask_kind, geometry)
        layer[1]["metadata"][META_KEY]["scan"] = scan_meta
        layers.append(layer)
    return layers


def volume_layer(vol, as_labels: bool) -> tuple:
    """A single NIfTI volume as an image (or labels) layer on its own grid."""
    geometry = source_geometry(vol.data.shape, vol.affine, vol.header, vol.path)
    name = vol.path.name.removesuffix(".gz").removesuffix(".nii")
    if as_labels:
        return labels_layer(np.rint(vol.data).astype(np.int32), vol.affine, name, geometry)
    return image_layer(vol.data, vol.affine, name, None, geometry, colormap="gray")


def looks_like_labels(vol) -> bool:
    """Integer data with few values and a mask-like name: show as Labels, not as an image."""
    name = vol.path.name.lower()
    if not any(word in name for word in ("mask", "seg", "label", "dseg", "roi")):
        return False
    values = np.unique(vol.data[:: max(1, vol.data.shape[0] // 64)])
    return bool(np.allclose(values, np.round(values)) and len(values) <= 256)


# -- and back: layers -> a Scan for the model ------------------------------------------------------


def _matrix(affine) -> np.ndarray | None:
    if affine is None:
        return None
    return np.asarray(getattr(affine, "affine_matrix", affine), dtype=float)


def layer_source(layer) -> tuple[np.ndarray, np.ndarray, dict]:
    """A layer's voxels on its source grid, that grid's affine, and its geometry record.

    Layers opened by napari-hcc carry their source grid in metadata; other layers (an array added
    from the console, another reader) are taken as they are shown, with their napari scale/affine.
    """
    data = np.asarray(layer.data)
    if data.ndim != 3:
        raise InputError(f"layer '{layer.name}' is {data.ndim}-D; a 3-D volume is needed.")
    source = (getattr(layer, "metadata", None) or {}).get(META_KEY, {}).get("source")
    if source:
        affine = np.asarray(source["affine"], dtype=float)
        try:
            return from_display(data, affine, tuple(source["shape"])), affine, source
        except ValueError as exc:
            raise InputError(f"layer '{layer.name}' no longer matches its source grid: {exc}") from None
    affine = affine_from_napari(layer.scale, _matrix(getattr(layer, "affine", None)), getattr(layer, "translate", None))
    return data, affine, source_geometry(data.shape, affine)


def layer_scan_meta(layer) -> dict:
    return (getattr(layer, "metadata", None) or {}).get(META_KEY, {}).get("scan") or {}


def scan_from_layers(t1w, t2w, ce) -> tuple[Scan, dict]:
    """The chosen sequence layers as a core Scan (source grid), and the grid record for new layers.

    Any of them may be None ("none" in the picker) as long as a T1w or a T2w is given: the missing ones
    are read as a session without them (`io.study.stand_ins_for`). Refuses, in one sentence, layers on
    different voxel grids and layers from different scans.
    """
    chosen = {"T1w": t1w, "T2w": t2w, "CE": ce}
    layers = {role: layer for role, layer in chosen.items() if layer is not None}
    stand_ins = stand_ins_for(layers)
    if stand_ins is None:
        raise InputError("choose a T1w or a T2w image layer: the model reads any sequences that include one of them.")
    if len({id(v) for v in layers.values()}) < len(layers):
        raise InputError("the T1w, T2w and CE choices must be different layers (or none).")
    metas = {role: layer_scan_meta(layer) for role, layer in layers.items()}
    ids = {(m.get("subject"), m.get("session")) for m in metas.values() if m.get("subject")}
    if len(ids) > 1:
        shown = ", ".join(
            f"{layers[r].name} = sub-{m.get('subject')} ses-{m.get('session')}" for r, m in metas.items() if m
        )
        raise InputError(f"the layers come from different scans ({shown}); choose one scan's sequences.")
    volumes = {role: layer_source(layer) for role, layer in layers.items()}
    reference = "T1w" if "T1w" in layers else "T2w"
    ref_data, ref_affine, geometry = volumes[reference]
    for role in layers:
        data, affine, _ = volumes[role]
        if not same_grid(data.shape, affine, ref_data.shape, ref_affine):
            a, b = describe_grid(data.shape, affine), describe_grid(ref_data.shape, ref_affine)
            if a == b:
                shift = float(np.linalg.norm(np.asarray(affine)[:3, 3] - np.asarray(ref_affine)[:3, 3]))
                a += f", shifted {shift:.1f} mm"
            raise InputError(
                f"layer '{layers[role].name}' ({a}) is not on the grid of "
                f"'{layers[reference].name}' ({b}); resample it onto the {reference} first."
            )
    for role, source in stand_ins.items():
        volumes[role] = volumes[source]
    meta = metas[reference] or next((m for m in metas.values() if m), {})
    header = geometry.get("header")
    if isinstance(header, bytes | bytearray):
        header = nib.Nifti1Header(binaryblock=header)
    scan = Scan(
        t1w=volumes["T1w"][0].astype(np.float32, copy=False),
        t2w=volumes["T2w"][0].astype(np.float32, copy=False),
        ce=volumes["CE"][0].astype(np.float32, copy=False),
        affine=ref_affine,
        header=header,
        subject=meta.get("subject"),
        session=meta.get("session"),
        arm=meta.get("arm"),
        paths={k: Path(v) for k, v in (meta.get("paths") or {}).items()},
        stand_ins=stand_ins,
    )
    if scan.stand_ins:
        scan.notes.append(missing_note(scan.stand_ins))
    return scan, geometry
