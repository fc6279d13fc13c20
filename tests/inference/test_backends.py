"""The exported-graph backends (OpenVINO, ONNX Runtime) against torch: the same masks, probabilities
and response on the sample study; auto's choice and the line that says why; the graph's card entry,
its checks, and the graphs that training and `napari-hcc export` make."""

import json
import shutil
import subprocess
import sys
import threading

import nibabel as nib
import numpy as np
import pytest

from napari_hcc.cli import main
from napari_hcc.errors import Cancelled, InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.graph_runner import GraphRunner
from napari_hcc.inference.slices import model_slices
from napari_hcc.io.atomic import sha256_file
from napari_hcc.io.study import find_scans
from napari_hcc.io.user_paths import sample_study
from napari_hcc.metrics import dice
from napari_hcc.model.catalog import default_model_folder
from napari_hcc.model.graph import graph_for
from napari_hcc.model.loading import default_model, load_model

pytestmark = pytest.mark.skipif(
    not (default_model_folder() / "model.onnx").exists(), reason="no shipped exported graph in this build"
)


@pytest.fixture(scope="module")
def torch_predictions():
    engine = Engine(default_model(), device="cpu", precision="fp32", backend="torch")
    return {(ref.subject, ref.session): engine.predict(ref.load()) for ref in find_scans(sample_study())}


@pytest.fixture
def model_copy(tmp_path):
    out = tmp_path / "model"
    shutil.copytree(default_model_folder(), out)
    return out


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_the_exported_graph_gives_what_torch_gives_on_the_sample_study(backend, torch_predictions):
    engine = Engine(default_model(), device="cpu", precision="fp32", backend=backend)
    assert engine.backend == backend and engine.net is None and backend in engine.device_name
    for ref in find_scans(sample_study()):
        key = (ref.subject, ref.session)
        expected, got = torch_predictions[key], engine.predict(ref.load())
        assert got.run.backend == backend
        assert dice(got.mask, expected.mask) >= 0.999, key
        assert np.abs(got.probability - expected.probability).max() <= 0.01, key
        assert np.abs(got.response.arm_probabilities - expected.response.arm_probabilities).max() <= 0.01, key
        assert got.response.viability == pytest.approx(expected.response.viability, abs=0.01)
        assert got.response.apoptosis == pytest.approx(expected.response.apoptosis, abs=0.01)
        assert got.tumor_volume_mm3 == pytest.approx(expected.tumor_volume_mm3, rel=0.01, abs=1.0)


def test_tta_progress_and_cancel_work_on_the_graph_as_on_torch():
    scan = next(iter(find_scans(sample_study()))).load()
    graph = Engine(default_model(), device="cpu", precision="fp32", backend="openvino", batch_size=4)
    torch_engine = Engine(default_model(), device="cpu", precision="fp32", backend="torch", batch_size=4)
    seen = []
    got = graph.predict(scan, tta=True, progress=seen.append)
    expected = torch_engine.predict(scan, tta=True)
    assert [p.done for p in seen] == list(range(1, len(seen) + 1)) and seen[-1].done == seen[-1].total == 4
    assert dice(got.mask, expected.mask) >= 0.999 and got.uncertainty == pytest.approx(expected.uncertainty, abs=0.01)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        graph.predict(scan, cancel=cancel)


def test_a_short_batch_padded_to_the_compiled_length_gives_the_same_slices():
    scan = next(iter(find_scans(sample_study()))).load()
    engine = Engine(default_model(), device="cpu", precision="fp32", backend="openvino")
    slices, _ = model_slices(scan.channels(), scan.affine, engine.card, scan.stand_ins)
    alone = engine.runner.passes(slices[:3], [(), (-1,)])  # its first batch: nothing to pad to
    padded_runner = GraphRunner(engine.runner.path, "openvino", "fp32", liver=engine.runner.liver)
    padded_runner.passes(slices[:5], [()])  # a batch of five sets the length ...
    padded = padded_runner.passes(slices[:3], [(), (-1,)])  # ... so three are run with two blank slices
    assert [a.shape for a in padded] == [a.shape for a in alone] and padded[0].shape[:2] == (2, 3)
    for got, expected in zip(padded, alone, strict=True):
        assert np.abs(got - expected).max() <= 1e-4


def test_auto_runs_the_graph_on_a_cpu_and_says_why_when_it_cannot(model_copy):
    engine = Engine(default_model(), device="cpu")
    assert engine.backend == "openvino" and engine.backend_note == ""

    card_path = model_copy / "model.json"
    card = json.loads(card_path.read_text())
    # a graph made from other weights (a model whose weights changed after the export)
    card["exported"]["onnx"]["weights_sha256"] = "0" * 64
    card_path.write_text(json.dumps(card))
    engine = Engine(load_model(model_copy), device="cpu")
    assert engine.backend == "torch" and "made from other weights" in engine.backend_note
    assert f"napari-hcc export --model {model_copy}" in engine.backend_note
    # a graph file changed on disk
    card["exported"]["onnx"]["weights_sha256"] = sha256_file(model_copy / "model.safetensors")
    card_path.write_text(json.dumps(card))
    with open(model_copy / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    engine = Engine(load_model(model_copy), device="cpu")
    assert engine.backend == "torch" and "does not match the checksum" in engine.backend_note
    # the graph file gone; asking for a graph backend by name is refused in one sentence
    (model_copy / "model.onnx").unlink()
    assert "is missing" in graph_for(load_model(model_copy).card, model_copy / "model.safetensors").reason
    with pytest.raises(InputError, match="needs the model's exported graph"):
        Engine(load_model(model_copy), device="cpu", backend="openvino")


def test_predict_says_which_backend_ran_and_writes_it(tmp_path, model_copy, capsys):
    session = sample_study() / "sub-rat01" / "ses-wk2"
    assert main(["predict", "-i", str(session), "-o", str(tmp_path / "a"), "--backend", "onnxruntime"]) == 0
    said = capsys.readouterr()
    assert "onnxruntime" in said.err.splitlines()[0] and "on cpu (onnxruntime)" in said.out
    header, row = (tmp_path / "a" / "predictions.csv").read_text().splitlines()[:2]
    assert dict(zip(header.split(","), row.split(","), strict=False))["backend"] == "onnxruntime"

    _without_graph(model_copy)  # a model from before exported graphs
    args = ["predict", "-i", str(session), "-o", str(tmp_path / "b"), "--model", str(model_copy)]
    assert main(args) == 0
    assert "note: torch runs the network: the model has no exported graph" in capsys.readouterr().err
    assert main([*args, "--backend", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the model's exported graph" in err


def test_export_makes_a_graph_that_matches_torch_and_records_it(model_copy, capsys):
    # a model built like the shipped one gets the shipped graph with its own weights set in (seconds; tracing
    # a new architecture is tested by the first anatomy run, tests/training/test_anatomy.py)
    _without_graph(model_copy)
    assert main(["export", "--model", str(model_copy), "--quiet"]) == 0
    assert "exported" in capsys.readouterr().out
    card = load_model(model_copy).card
    entry = card.exported["onnx"]
    assert entry["sha256"] == sha256_file(model_copy / "model.onnx")
    assert entry["weights_sha256"] == card.weights["sha256"] and "weights set into the graph of" in entry["exporter"]
    # fp16 weights stay fp16 in the graph: it is no bigger than the checkpoint and a fifth more at most
    assert (model_copy / "model.onnx").stat().st_size < 1.2 * (model_copy / "model.safetensors").stat().st_size
    scan = next(iter(find_scans(sample_study()))).load()
    graph = Engine(load_model(model_copy), device="cpu", precision="fp32").predict(scan)
    reference = Engine(load_model(model_copy), device="cpu", precision="fp32", backend="torch").predict(scan)
    assert dice(graph.mask, reference.mask) >= 0.999
    assert np.abs(graph.probability - reference.probability).max() <= 0.01


def _without_graph(folder):
    (folder / "model.onnx").unlink()
    card = json.loads((folder / "model.json").read_text())
    del card["exported"]
    (folder / "model.json").write_text(json.dumps(card))


def test_a_machine_without_openvino_takes_onnxruntime_and_without_either_torch(monkeypatch):
    import napari_hcc.inference.backend_choice as choice

    model = default_model()
    monkeypatch.setattr(choice, "backend_installed", lambda kind: kind == "onnxruntime")
    assert choice.choose_backend("auto", "cpu", model.card, model.path).kind == "onnxruntime"
    with pytest.raises(InputError, match="openvino backend is not installed"):
        choice.choose_backend("openvino", "cpu", model.card, model.path)
    monkeypatch.setattr(choice, "backend_installed", lambda kind: False)
    fallback = choice.choose_backend("auto", "cpu", model.card, model.path)
    assert fallback.kind == "torch" and "neither OpenVINO nor ONNX Runtime is installed" in fallback.note
    # on a GPU, auto is torch whatever is installed; a graph backend asked for there is refused
    assert choice.choose_backend("auto", "cuda", model.card, model.path).kind == "torch"
    with pytest.raises(InputError, match="runs on the CPU"):
        choice.choose_backend("onnxruntime", "cuda", model.card, model.path)


def test_predict_on_the_exported_graph_imports_no_torch(tmp_path):
    """The whole `napari-hcc predict` of a follow-up scan (the scan, its rat's baseline for the
    readout, the files written) in a fresh process, as a user runs it: torch, timm and
    segmentation-models-pytorch are never imported, nor what a NIfTI scan does not need and the start
    paid for (pydicom through nibabel, scipy.spatial), and the masks are the ones torch gives."""
    session = sample_study() / "sub-rat01" / "ses-wk2"
    code = (
        "import sys; from napari_hcc.cli import main; "
        f"code = main(['predict', '-i', {str(session)!r}, '-o', {str(tmp_path / 'graph')!r}, '--device', 'cpu', '--quiet']); "
        "print(code, sorted(m for m in ('torch', 'timm', 'segmentation_models_pytorch', 'pydicom', 'scipy.spatial') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stderr
    assert main(["predict", "-i", str(session), "-o", str(tmp_path / "torch"), "--backend", "torch", "--quiet"]) == 0
    rows = {}
    for kind in ("graph", "torch"):
        header, row = (tmp_path / kind / "predictions.csv").read_text().splitlines()[:2]
        rows[kind] = dict(zip(header.split(","), row.split(","), strict=True))
    assert rows["graph"]["backend"] in ("openvino", "onnxruntime") and rows["torch"]["backend"] == "torch"
    masks = {kind: sorted((tmp_path / kind).rglob("*_mask.nii.gz")) for kind in rows}
    assert len(masks["graph"]) == len(masks["torch"]) == 1
    graph, reference = (np.asarray(nib.load(m[0]).dataobj) for m in (masks["graph"], masks["torch"]))
    assert graph.sum() > 0 and dice(graph, reference) >= 0.999
    for column in ("tumor_volume_mm3", "p_control", "p_sorafenib", "p_nk", "p_combination", "viability", "apoptosis"):
        assert abs(float(rows["graph"][column]) - float(rows["torch"][column])) <= 0.01 * max(
            1.0, abs(float(rows["torch"][column]))
        )


def test_a_template_graph_with_a_weight_the_model_lacks_is_refused():
    from napari_hcc.model.export import _reweight

    state = dict(default_model().state)
    del state["net.segmentation_head.0.weight"]
    with pytest.raises(InputError, match="has a weight net.segmentation_head.0.weight this model lacks"):
        _reweight(default_model_folder() / "model.onnx", state)
    # the graph's own folded constants are not weights: a complete model is given the graph
    assert _reweight(default_model_folder() / "model.onnx", default_model().state) is not None


def test_the_liver_probability_alone_is_the_softmax_of_its_class():
    from scipy.special import softmax

    from napari_hcc.inference.graph_runner import _class_probability

    logits = (np.random.default_rng(0).normal(size=(3, 7, 6, 6)) * 8).astype(np.float32)
    logits[0, 3, 0, 0] = 1000.0  # a class far above the liver: its exp overflows, the liver's share is 0
    np.testing.assert_allclose(_class_probability(logits, 1), softmax(logits, axis=1)[:, 1], atol=1e-6)
    assert _class_probability(logits, 1).dtype == np.float32 and _class_probability(logits, 1)[0, 0, 0] == 0.0
