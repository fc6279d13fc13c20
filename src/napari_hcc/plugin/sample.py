"""The packaged sample study (a small simulated cohort) and the napari Sample-menu entries."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from napari_hcc.io.study import find_scans
from napari_hcc.plugin.layers import scan_layers

SAMPLE_COMMAND = (
    "napari-hcc simulate --out sample_data/study --rats-per-arm 1 --weeks 0 2 --seed 2026"
)


def sample_study() -> Path:
    """The sample study's root: inside the installed package, or the repository's sample_data/."""
    packaged = Path(str(resources.files("napari_hcc"))) / "_sample_data" / "study"
    if packaged.is_dir():
        return packaged
    in_repo = Path(__file__).resolve().parents[3] / "sample_data" / "study"  # editable install
    if in_repo.is_dir():
        return in_repo
    raise FileNotFoundError("the napari-hcc sample study is missing from this installation; reinstall the package.")


def study_for_corrections(root: str | Path) -> Path:
    """Where a study's corrections are saved: the study itself, except for the sample study, which
    ships inside the package (or the repository); its corrections go to a working copy in the user's
    data folder, made on first use, so that the installation stays untouched."""
    import shutil

    from napari_hcc.io.user_paths import user_data_folder

    root = Path(root)
    try:
        is_sample = root.resolve() == sample_study().resolve()
    except FileNotFoundError:
        is_sample = False
    if not is_sample:
        return root
    copy = user_data_folder() / "sample-study"
    if not (copy / "participants.tsv").exists():
        tmp = copy.with_name(copy.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(root, tmp, ignore=shutil.ignore_patterns("corrections"))
        shutil.rmtree(copy, ignore_errors=True)
        tmp.rename(copy)
    return copy


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
