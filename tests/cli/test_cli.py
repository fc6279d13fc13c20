"""The command line as a user runs it: exit codes, one-sentence errors, fast start."""

import subprocess
import sys

import pytest


def run(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "napari_hcc", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def test_help_is_fast_and_imports_no_torch_or_napari():
    code = "import sys, napari_hcc.cli as c, napari_hcc.plugin.reader, napari_hcc.plugin.writer, napari_hcc.plugin.sample; c.build_parser(); print(sorted(m for m in ('torch', 'napari', 'qtpy', 'PyQt6') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    r = run("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("simulate", "check", "predict", "info", "view"))
    r = run("predict", "--help")
    assert r.returncode == 0 and "--save-probabilities" in r.stdout


def test_simulate_then_check(tmp_path):
    r = run(
        "simulate",
        "--out",
        tmp_path / "s",
        "--rats-per-arm",
        "1",
        "--weeks",
        "1",
        "--quiet",
        "--matrix",
        "96",
        "--pixel-mm",
        "0.5",
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 4 rats x 1 sessions" in r.stdout
    r = run("check", tmp_path / "s")
    assert r.returncode == 0 and "4 scan(s) ok" in r.stdout and "96x96x15 voxels of 0.50x0.50x1.20 mm, LAS" in r.stdout


def test_check_reports_resampling_of_real_mismatched_grids(realdata):
    d = realdata / "remind_mismatched_grids"
    t1c, t2 = d / "ReMIND-022_T1c.nii.gz", d / "ReMIND-022_T2.nii.gz"
    r = run("check", "--t1w", t1c, "--t2w", t2, "--ce", t1c)
    assert r.returncode == 0 and "note: T2w ReMIND-022_T2.nii.gz" in r.stdout
    r = run("check", "--t1w", t1c, "--t2w", t2, "--ce", t1c, "--on-mismatch", "refuse")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "different voxel grid" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "/nonexistent/study"], "does not exist"),
        (["check", "--ce", "/nonexistent/ce.nii.gz"], "a --ce alone cannot be read"),
        (
            ["check", "--t1w", "/nonexistent/a.nii.gz", "--t2w", "/x", "--ce", "/y"],
            "T1w file not found: /nonexistent/a.nii.gz",
        ),
        (["simulate", "--out", "/tmp/never", "--rats-per-arm", "0"], "at least 1"),
        (["check", "--t2w", "/tmp"], "--t2w /tmp is a folder, not a NIfTI file; a DICOM or Bruker folder"),
    ],
)
def test_errors_are_one_sentence_and_exit_non_zero(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
