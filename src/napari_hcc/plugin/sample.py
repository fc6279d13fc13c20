"""The packaged sample study (a small simulated cohort) and the napari Sample-menu entries."""

from __future__ import annotations

from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.plugin.layers import scan_layers

SAMPLE_COMMAND = "napari-hcc simulate --out sample_data/study --rats-per-arm 1 --weeks 0 2 --seed 2026"


def sample_scan_ref(arm: str = "Control", session: str = "wk2"):
    refs = [r for r in find_scans(sample_study()) if r.arm == arm and r.session == session]
    if not refs:
        raise FileNotFoundError(f"the sample study has no {arm} scan at session {session}.")
    return refs[0]


def _sample(arm: str) -> list[tuple]:
    return scan_layers(sample_scan_ref(arm).load())


def sample_control() -> list[tuple]:
    return _sample("Control")


def sample_sorafenib() -> list[tuple]:
    return _sample("Sorafenib")


def sample_nk() -> list[tuple]:
    return _sample("NK")


def sample_combination() -> list[tuple]:
    return _sample("Combination")
