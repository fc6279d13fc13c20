"""Checkpoints: safetensors + model card round trip, no pickle, and one sentence for each bad file."""

import json

import numpy as np
import pytest
import torch

from napari_hcc.errors import InputError
from napari_hcc.inference.engine import Engine
from napari_hcc.io.study import bids_session
from napari_hcc.model.card import ModelCard
from napari_hcc.model.checkpoint import build_network, save_model, untrained_model
from napari_hcc.model.devices import resolve_device
from napari_hcc.model.loading import load_model
from napari_hcc.model.network import HCCNet, load_encoder_weights


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "m1"
    torch.manual_seed(5)
    net = HCCNet().eval()
    save_model(net, ModelCard(name="test-net", version="1.2.3", trained=True, metrics={"dice": 0.5}), folder)
    return folder, net


def test_round_trip_keeps_weights_and_card(saved):
    folder, net = saved
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_model(folder)
    assert loaded.card.name == "test-net" and loaded.card.version == "1.2.3" and loaded.card.metrics == {"dice": 0.5}
    assert loaded.card.weights["dtype"] == "float16" and len(loaded.card.weights["sha256"]) == 64
    assert loaded.model_id.startswith("test-net@1.2.3+")
    rebuilt = build_network(loaded)
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(rebuilt.state_dict()[name], tensor.half().float()), name
    card = json.loads((folder / "model.json").read_text())
    assert card["channels"] == ["T1w", "T2w", "CE"] and card["arms"] == ["Control", "Sorafenib", "NK", "Combination"]
    assert card["input"]["pixel_spacing_mm"] == [0.375, 0.375] and card["normalisation"]["method"] == "percentile"


def test_a_lone_safetensors_file_carries_its_card(saved, tmp_path):
    folder, _ = saved
    lone = tmp_path / "copy.safetensors"
    lone.write_bytes((folder / "model.safetensors").read_bytes())
    assert load_model(lone).card.name == "test-net"


def test_models_are_never_overwritten(saved):
    folder, net = saved
    with pytest.raises(InputError, match="already holds a model"):
        save_model(net, ModelCard(), folder)


def test_saved_model_predicts_like_the_network(saved, tiny_study):
    folder, _ = saved
    scan = bids_session(tiny_study / "sub-rat01" / "ses-wk0").load()
    a = Engine(load_model(folder), device="cpu", precision="fp32").predict(scan)
    b = Engine(load_model(folder / "model.json"), device="cpu", precision="fp32").predict(scan)
    assert np.array_equal(a.mask, b.mask) and a.run.model_id == b.run.model_id


def _copy(folder, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    for f in folder.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    return out


def test_unreadable_checkpoint(saved, tmp_path):
    folder = _copy(saved[0], tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x00garbage, not a checkpoint" * 10)
    with pytest.raises(InputError, match=r"model.safetensors is not a readable safetensors checkpoint"):
        load_model(folder)


def test_truncated_checkpoint(saved, tmp_path):
    folder = _copy(saved[0], tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable safetensors checkpoint"):
        load_model(folder)


def test_card_that_does_not_match_its_weights(saved, tmp_path):
    folder = _copy(saved[0], tmp_path)
    card = json.loads((folder / "model.json").read_text())
    card["architecture"]["decoder_channels"] = [128, 64, 32, 16, 8]
    card["weights"]["sha256"] = ""
    (folder / "model.json").write_text(json.dumps(card))
    model = load_model(folder)  # the card and the checksum are fine; the tensors are checked where torch builds them
    with pytest.raises(
        InputError, match=r"the weights in .*model.safetensors do not match its model card: .*of another shape"
    ):
        Engine(model, device="cpu", backend="torch")


def test_weights_changed_after_the_card_was_written(saved, tmp_path):
    from safetensors.torch import save_file

    folder = _copy(saved[0], tmp_path)
    other = {k: v.half() if v.is_floating_point() else v for k, v in HCCNet().state_dict().items()}
    save_file(other, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="does not match the checksum in its model card"):
        load_model(folder)


@pytest.mark.parametrize(
    "problem, text, message",
    [
        ("not json", "{oops", "is not valid JSON"),
        ("not a card", '{"name": "x"}', "is not a napari-hcc model card"),
        ("other channels", None, "expects input channels"),
    ],
)
def test_bad_model_cards(saved, tmp_path, problem, text, message):
    folder = _copy(saved[0], tmp_path)
    if text is None:
        card = json.loads((folder / "model.json").read_text())
        card["channels"] = ["T2w", "T1w", "CE"]
        text = json.dumps(card)
    (folder / "model.json").write_text(text)
    with pytest.raises(InputError, match=message):
        load_model(folder)


def test_pickles_are_refused_without_being_opened(tmp_path):
    evil = tmp_path / "model.pth"
    evil.write_bytes(b"not even read")
    with pytest.raises(InputError, match="pickle-based checkpoint"):
        load_model(evil)
    with pytest.raises(InputError, match="model not found"):
        load_model(tmp_path / "nothing")


def test_untrained_default_is_seeded_and_labelled():
    a, b = untrained_model(), untrained_model()
    assert not a.card.trained and "untrained" in a.model_id
    assert all(np.array_equal(a.state[k], b.state[k]) for k in a.state)


def test_local_encoder_weights_load_and_misfits_are_refused(tmp_path):
    from safetensors.torch import save_file

    donor = HCCNet()
    save_file(
        {f"encoder.{k}": v.contiguous() for k, v in donor.net.encoder.state_dict().items()},
        str(tmp_path / "enc.safetensors"),
    )
    net = HCCNet()
    assert load_encoder_weights(net, tmp_path / "enc.safetensors") == len(donor.net.encoder.state_dict())
    assert torch.equal(
        net.net.encoder.state_dict()["_conv_stem.weight"], donor.net.encoder.state_dict()["_conv_stem.weight"]
    )
    save_file({"fc.weight": torch.zeros(3, 3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="does not fit a efficientnet-b0 encoder"):
        load_encoder_weights(net, tmp_path / "other.safetensors")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("cuda", "no usable CUDA GPU"),
        ("cuda:3", "no usable CUDA GPU"),
        ("tpu", "unknown device 'tpu'"),
    ],
)
def test_unavailable_devices_are_refused(spec, message):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InputError, match=message):
        resolve_device(spec)


def test_auto_device_and_precision_choice():
    device = resolve_device("auto")
    assert device.type in ("cuda", "mps", "cpu")
    eng = Engine(untrained_model(), device="cpu")
    assert eng.precision in ("fp32", "bf16")
    with pytest.raises(InputError, match="fp16 is not supported on the CPU"):
        Engine(untrained_model(), device="cpu", precision="fp16")
    with pytest.raises(InputError, match="batch size must be at least 1"):
        Engine(untrained_model(), device="cpu", batch_size=0)
