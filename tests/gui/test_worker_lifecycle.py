"""Workers end cleanly whatever the reader does: closing the viewer while the model loads or runs, or
closing the HCC Review dock first, never crashes the process (it used to end with SIGABRT: "wrapped
C/C++ object of type WorkerBaseSignals has been deleted")."""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui

SCRIPT = textwrap.dedent(
    """
    import sys

    import napari
    from qtpy.QtWidgets import QApplication

    mode = sys.argv[1]
    viewer = napari.Viewer(show=True)
    viewer.open_sample("napari-hcc", "rat_control")
    _, widget = viewer.window.add_plugin_dock_widget("napari-hcc", "HCC Review")
    if mode in ("mid-run", "dock-closed"):
        widget.run()
    QApplication.processEvents()
    if mode == "dock-closed":
        viewer.window.remove_dock_widget("all")
        for _ in range(50):
            QApplication.processEvents()
    viewer.close()
    print("closed", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["while-loading", "mid-run", "dock-closed"])
def test_closing_mid_work_ends_the_process_cleanly(mode, tmp_path):
    script = tmp_path / "close.py"
    script.write_text(SCRIPT)
    env_home = {"XDG_DATA_HOME": str(tmp_path / "data")}
    import os

    r = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=300, env={**os.environ, **env_home}
    )
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    assert "closed" in r.stdout
    assert "Traceback" not in r.stderr, r.stderr[-4000:]
