"""JSON files a user writes (a role map, a protocol) and the JSON sidecars beside images."""

from __future__ import annotations

import json
from pathlib import Path

from napari_hcc.errors import InputError
from napari_hcc.io import bids
from napari_hcc.vocabulary import SEQUENCE_ROLES


def check_roles(names, where: str) -> None:
    """Refuse, in one sentence naming `where`, the first of `names` (a user's JSON keys) that is not a
    sequence role."""
    unknown = [r for r in names if r not in SEQUENCE_ROLES]
    if unknown:
        raise InputError(f"{where} names role {unknown[0]!r}; the roles are {', '.join(SEQUENCE_ROLES)}.")


def read_json_file(path: str | Path, what: str):
    """The content of a user's JSON file, or an InputError: "<what> file not found" / "is not valid JSON"."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} file {path} is not valid JSON ({exc}).") from None


def read_sidecar(image: str | Path) -> dict:
    """The JSON sidecar of an image (`x.nii.gz` -> `x.json`), or {} when it has none; a sidecar that is not
    valid JSON is an InputError naming it."""
    sidecar = bids.sidecar(Path(image))
    return read_json_file(sidecar, "sidecar") if sidecar.is_file() else {}
