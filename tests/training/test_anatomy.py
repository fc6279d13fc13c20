"""The anatomy head: the simulator's tissue maps become classes in the model's frame, a run with
`--anatomy` learns them and says how well, its exported graph carries the fourth output, and a study
without tissue maps is refused in one sentence."""

import shutil

import numpy as np
import pytest

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.inference.postprocess import PostProcess
from napari_hcc.inference.slices import model_labels, model_mask, model_slices
from napari_hcc.io import bids
from napari_hcc.io.anatomy_labels import anatomy_map
from napari_hcc.io.atomic import sha256_file
from napari_hcc.io.orientation import spacing
from napari_hcc.io.study import bids_session
from napari_hcc.io.volume import load_volume
from napari_hcc.metrics import dice
from napari_hcc.model.card import ModelCard
from napari_hcc.model.graph import graph_for
from napari_hcc.model.loading import load_model
from napari_hcc.training.config import TrainConfig
from napari_hcc.training.trainer import train
from napari_hcc.vocabulary import ANATOMY


def test_tissue_maps_become_anatomy_classes_in_the_model_frame(tiny_study):
    scan = bids_session(tiny_study / "sub-rat02" / "ses-wk2").load()
    tumor = load_volume(bids.truth_mask_path(tiny_study, "rat02", "wk2")).data > 0
    labels = anatomy_map(tiny_study, "rat02", "wk2", tumor)
    _, geometry = model_slices(scan.channels(), scan.affine, ModelCard(), scan.stand_ins)
    framed = model_labels(labels, geometry, len(ANATOMY))
    assert framed.shape == model_mask(tumor, geometry).shape
    pixel_mm2 = np.prod(
        [geometry.display_spacing[1 + i] * geometry.display_shape[1 + i] / geometry.model_size[i] for i in range(2)]
    )
    for organ in ("liver", "kidney", "tumor"):
        source_mm3 = (labels == ANATOMY.index(organ)).sum() * np.prod(spacing(scan.affine))
        model_mm3 = (framed == ANATOMY.index(organ)).sum() * pixel_mm2 * geometry.display_spacing[0]
        assert source_mm3 > 0 and model_mm3 == pytest.approx(source_mm3, rel=0.05), organ
    # the tumor class is the session's tumor outline, as the mask the network learns (the two differ only
    # on edge pixels of the resampling: the largest share against a share of at least half)
    assert dice(framed == ANATOMY.index("tumor"), model_mask(tumor, geometry) > 0) >= 0.97
    assert (framed[:, :4, :] == 0).all()  # the padding and the air around the rat are "other"


def test_a_run_with_anatomy_learns_the_organs_and_its_graph_carries_them(tiny_study, tmp_path):
    out = tmp_path / "anatomy"
    result = train(TrainConfig([tiny_study], out, epochs=1, batch_size=8, crop=64, anatomy=True, version="a"))
    model = load_model(out)
    assert model.card.architecture["anatomy"] == list(ANATOMY)
    row = result.history[-1]
    assert row["anatomy"] > 0 and 0 <= row["val_liver_dice"] <= 1
    # one epoch outlines no liver well: the gate stays off rather than remove true tumors
    assert model.card.postprocess["min_liver_share"] == 0.0
    # the shipped model (2.0.0) is built alike, so the run's graph is its graph given these weights (seconds,
    # not a trace), with the fourth output
    entry = model.card.exported["onnx"]
    assert entry["outputs"][-1] == "anatomy_logits" and graph_for(model.card, out / "model.safetensors").path
    assert "dynamo" in entry["exporter"] and entry["exporter"].endswith("weights set into the graph of default")
    assert (
        entry["sha256"] == sha256_file(out / "model.onnx") and entry["weights_sha256"] == model.card.weights["sha256"]
    )
    # fp16 weights stay fp16 in the graph: it is no bigger than the checkpoint and a fifth more at most
    assert (out / "model.onnx").stat().st_size < 1.2 * (out / "model.safetensors").stat().st_size
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk2").load()
    gate = PostProcess.from_card(model.card, min_liver_share=0.5)
    by_graph = Engine(model, device="cpu").predict(scan, postprocess=gate)
    by_torch = Engine(model, device="cpu", backend="torch").predict(scan, postprocess=gate)
    assert by_graph.run.backend != "torch" and by_torch.run.backend == "torch"
    assert np.abs(by_graph.probability - by_torch.probability).max() <= 0.01
    assert np.array_equal(by_graph.mask, by_torch.mask)
    ungated = Engine(model, device="cpu", backend="torch").predict(scan, postprocess=PostProcess.from_card(model.card))
    left_out = [n for n in by_torch.notes if "off the liver" in n]
    # what the gate left out is the difference between the ungated and the gated mask, and is said
    removed_mm3 = ungated.tumor_volume_mm3 - by_torch.tumor_volume_mm3
    if removed_mm3 > 0:
        assert left_out and float(left_out[0].split(" mm^3")[0]) == pytest.approx(removed_mm3, rel=0.02)  # holes
    else:
        assert not left_out


def test_anatomy_without_tissue_maps_is_refused_in_one_sentence(tiny_study, tmp_path):
    study = tmp_path / "no_maps"
    shutil.copytree(tiny_study, study)
    for path in study.rglob("*_desc-tissue_dseg.*"):
        path.unlink()
    with pytest.raises(InputError, match=r"--anatomy needs the simulator's tissue maps.*no session of .* has one"):
        train(TrainConfig([study], tmp_path / "m", epochs=1, batch_size=8, anatomy=True))
