"""The anatomy a simulated session shows, from the simulator's tissue map (`derivatives/truth/..._desc-
tissue_dseg.nii.gz` and its `.tsv` of names), grouped into the classes of `vocabulary.ANATOMY`.

Only simulated studies have a tissue map; a session without one has no anatomy to learn from (the
training loss ignores it). The tumor class follows the session's tumor mask (a reviewer's correction
where there is one); where the map says tumor and the mask does not, the class is unknown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_hcc.io import bids
from napari_hcc.io.orientation import spacing
from napari_hcc.io.volume import load_volume
from napari_hcc.vocabulary import ANATOMY

#: the class of each of the simulator's tissue names; tissues not listed are "other"
TISSUE_CLASS = {
    "liver": "liver",
    "tumor": "tumor",
    "kidney_cortex": "kidney",
    "kidney_medulla": "kidney",
    "stomach_wall": "gut",
    "stomach_content": "gut",
    "bowel_wall": "gut",
    "bowel_content": "gut",
    "gas": "gut",
    "spleen": "spleen",
    "blood_vessel": "vessel",
}
#: a pixel whose class is not known (no tissue map, or the map and the outline disagree on tumor)
UNKNOWN = 255


def anatomy_map(study: Path, subject: str, session: str, tumor: np.ndarray) -> np.ndarray | None:
    """(source grid) uint8 ANATOMY indices, or None when the session has no tissue map of that grid."""
    path = bids.truth_tissue_path(study, subject, session)
    names = _names(path)
    if names is None:
        return None
    tissue = np.asarray(load_volume(path, "tissue map").data)
    if tissue.shape != tumor.shape:
        return None
    lookup = np.zeros(max(256, int(tissue.max()) + 1), np.uint8)  # index -> class; unlisted tissues: "other"
    for index, name in names.items():
        lookup[index] = ANATOMY.index(TISSUE_CLASS.get(name, "other"))
    out = lookup[tissue.astype(np.int64)]
    tumor_class = ANATOMY.index("tumor")
    out[(out == tumor_class) & ~tumor] = UNKNOWN
    out[tumor] = tumor_class
    return out


def liver_cm3(study: Path, subject: str, session: str) -> float | None:
    """The liver's volume in a simulated session's tissue map, cm^3; None without a tissue map."""
    path = bids.truth_tissue_path(study, subject, session)
    names = _names(path)
    if names is None:
        return None
    tissue = load_volume(path, "tissue map")
    liver = [index for index, name in names.items() if TISSUE_CLASS.get(name) == "liver"]
    voxel_mm3 = float(np.prod(spacing(tissue.affine)))
    return float(np.isin(tissue.data, liver).sum() * voxel_mm3 / 1000.0)


def _names(path: Path) -> dict[int, str] | None:
    table = Path(str(path).removesuffix(".nii.gz") + ".tsv")
    if not path.is_file() or not table.is_file():
        return None
    rows = bids.read_tsv(table)
    return {int(r["index"]): r["name"] for r in rows if r.get("index", "").isdigit()}
