import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The suite runs on as many pytest-xdist workers as there are cores (scripts/setup.sh): one thread
    # each, for torch and the processes the tests start, or two workers' thread pools fight over two
    # cores and both slow down. Set before anything imports torch.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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
