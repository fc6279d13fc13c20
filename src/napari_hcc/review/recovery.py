"""Recovery files: edits in progress survive a crash.

While a reviewer edits a mask, the review widget writes the mask (on the scan's source grid) to a
recovery file a moment after each change; saving the correction removes it. When the same scan is
opened again and a recovery file is there, the widget offers to restore it.

A scan is identified by the SHA-256 of its three source images (or, for images that are not files,
by their voxels), so a moved study still finds its recovery file and a changed image does not.
Files live in `$NAPARI_HCC_RECOVERY` or `~/.local/share/napari-hcc/recovery/`, one `.npz` each,
written atomically (a crash during the autosave leaves the previous recovery file intact).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from napari_hcc.io.atomic import atomic_path, sha256_file
from napari_hcc.io.user_paths import user_data_folder


def recovery_folder() -> Path:
    env = os.environ.get("NAPARI_HCC_RECOVERY")
    if env:
        return Path(env)
    return user_data_folder() / "recovery"


def scan_key(paths: dict[str, str | Path] | None = None, arrays: list[np.ndarray] | None = None) -> str:
    """A stable identity for a scan: hashes of its source files, else of its voxels."""

    h = hashlib.sha256()
    if paths and all(Path(p).is_file() for p in paths.values()):
        for role in sorted(paths):
            h.update(f"{role}:{sha256_file(Path(paths[role]))}\n".encode())
    elif arrays is not None:
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(str((a.shape, a.dtype.str)).encode())
            h.update(a.tobytes())
    else:
        raise ValueError("a scan key needs the source files or the voxels")
    return h.hexdigest()[:24]


@dataclass
class Recovered:
    mask: np.ndarray
    label: str
    saved: str  # ISO time
    model_id: str | None
    path: Path


def recovery_path(key: str, folder: Path | None = None) -> Path:
    return (folder or recovery_folder()) / f"{key}.npz"


def write_recovery(
    key: str, mask: np.ndarray, label: str, model_id: str | None = None, folder: Path | None = None
) -> Path:
    path = recovery_path(key, folder)
    meta = {"label": label, "saved": datetime.now(UTC).isoformat(timespec="seconds"), "model": model_id}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, mask=(np.asarray(mask) > 0).astype(np.uint8), meta=np.array(json.dumps(meta)))
    return path


def read_recovery(key: str, folder: Path | None = None) -> Recovered | None:
    """The recovery file of a scan, or None (also when the file cannot be read: it is then kept)."""
    path = recovery_path(key, folder)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            mask = z["mask"].copy()
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError):
        return None
    return Recovered(mask, meta.get("label", ""), meta.get("saved", ""), meta.get("model"), path)


def discard_recovery(key: str, folder: Path | None = None) -> None:
    recovery_path(key, folder).unlink(missing_ok=True)
