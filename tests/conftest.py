from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not beside this checkout")
    return REALDATA


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory) -> Path:
    """One rat per arm, baseline and week 2, on the study's real geometry (about 8 s)."""
    from napari_hcc.simulate.cohort import simulate_study

    return simulate_study(tmp_path_factory.mktemp("study"), rats_per_arm=1, weeks=(0, 2), seed=11, workers=2)
