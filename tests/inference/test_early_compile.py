"""OpenVINO's compilation started before `predict` imports the rest: the engine takes it when it chose
the same graph and settings, compiles again when the guess was wrong, and a command that stops on bad
input while the graph compiles still exits with its one sentence."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

import napari_hcc.inference.graph_runner as graph_runner
from napari_hcc.inference import early_compile
from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.model.catalog import default_model_folder
from napari_hcc.model.loading import default_model, load_model

pytestmark = pytest.mark.skipif(
    not (default_model_folder() / "model.onnx").exists() or not graph_runner.backend_installed("openvino"),
    reason="no shipped exported graph or no OpenVINO in this build",
)


def _no_compiling_here(*args, **kwargs):
    raise AssertionError("the engine compiled the graph itself")


def test_the_engine_takes_the_graph_compiled_early_and_predicts_the_same(monkeypatch):
    scan = next(iter(find_scans(sample_study()))).load()
    expected = Engine(default_model(), device="cpu", precision="fp32", backend="openvino").predict(scan)
    early_compile.start(None, "auto", "cpu", "fp32")
    with monkeypatch.context() as patch:
        patch.setattr(graph_runner, "openvino_core", _no_compiling_here)
        engine = Engine(default_model(), device="cpu", precision="fp32", backend="openvino")
    got = engine.predict(scan)
    assert np.array_equal(got.mask, expected.mask)
    assert np.abs(got.probability - expected.probability).max() <= 1e-5


def test_a_wrong_guess_is_left_and_the_engine_compiles_its_own(tmp_path, monkeypatch):
    other = tmp_path / "model"
    shutil.copytree(default_model_folder(), other)
    early_compile.start(other, "openvino", "cpu", "fp32")  # another folder than the one predicted with
    compiled = []
    real_core = graph_runner.openvino_core
    monkeypatch.setattr(graph_runner, "openvino_core", lambda: compiled.append(1) or real_core())
    engine = Engine(default_model(), device="cpu", precision="fp32", backend="openvino")
    assert compiled == [1] and engine.backend == "openvino"
    # the early one is still there for its own folder
    monkeypatch.setattr(graph_runner, "openvino_core", _no_compiling_here)
    assert Engine(load_model(str(other)), device="cpu", precision="fp32", backend="openvino").backend == "openvino"


def test_nothing_is_compiled_early_for_torch_or_a_folder_without_a_graph(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(early_compile.threading, "Thread", lambda *a, **k: started.append(1))
    early_compile.start(None, "torch", "cpu", "auto")
    early_compile.start(None, "onnxruntime", "cpu", "auto")
    early_compile.start(None, "auto", "cuda", "auto")
    early_compile.start(tmp_path, "auto", "cpu", "auto")
    assert started == []


def test_predict_stopped_by_bad_input_while_the_graph_compiles_exits_with_one_sentence(tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("not a folder")
    scan = sample_study() / "sub-rat01" / "ses-wk2" / "anat" / "sub-rat01_ses-wk2_T2w.nii.gz"
    out = subprocess.run(
        [sys.executable, "-m", "napari_hcc", "predict", "--t2w", str(scan), "--device", "cpu", "-o", str(taken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [f"napari-hcc predict: error: output {taken} exists and is not a folder."]
    assert taken.read_text() == "not a folder"
