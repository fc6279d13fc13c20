"""The npe2 manifest is valid and its commands resolve."""

import subprocess
import sys

from npe2 import PluginManifest


def test_npe2_validate():
    r = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-hcc"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid" in (r.stdout + r.stderr).lower()


def test_manifest_contributions_resolve():
    pm = PluginManifest.from_distribution("napari-hcc")
    assert {s.key for s in pm.contributions.sample_data} == {
        "rat_control",
        "rat_sorafenib",
        "rat_nk",
        "rat_combination",
    }
    assert [w.display_name for w in pm.contributions.widgets] == ["HCC Review", "Study browser"]
    for cmd in pm.contributions.commands:
        module, _, attr = cmd.python_name.partition(":")
        assert hasattr(__import__(module, fromlist=[attr]), attr), cmd.python_name
