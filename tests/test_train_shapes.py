"""The Shapes training command is deterministic: the same settings give the same weight bytes.

The full recipes take minutes; these runs are one short epoch, enough to exercise every part
of the training loop (fresh data, shuffling, warm-up, token labelling for the ViT, the
shortcut tag) and the file writer.
"""
from __future__ import annotations

import json

import pytest
import torch

from course_lib.zoo import load_model
from course_lib.zoo import shapes_models as sm
from scripts import train_shapes


@pytest.fixture(autouse=True)
def restore_torch_settings():
    """Training sets seeds, threads and deterministic kernels; put torch's settings back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.mark.parametrize("name", ["shapes_cnn_shortcut", "shapes_vit"])
def test_training_twice_gives_identical_weight_files(name, tmp_path):
    digests = []
    for run in ("a", "b"):
        model, record = train_shapes.train(name, epochs=1, images=256)
        out = tmp_path / run
        train_shapes.save(name, model, record, {"test_accuracy": 0.0}, out)
        digests.append(json.loads((out / f"{name}.json").read_text())["sha256"])
    assert digests[0] == digests[1]
    assert (tmp_path / "a" / f"{name}.safetensors").read_bytes() == (tmp_path / "b" / f"{name}.safetensors").read_bytes()


def test_saved_weights_load_back_into_the_architecture(tmp_path, monkeypatch):
    model, record = train_shapes.train("shapes_cnn", epochs=1, images=128)
    train_shapes.save("shapes_cnn", model, record, {"test_accuracy": 0.0}, tmp_path)
    monkeypatch.setattr(sm, "WEIGHTS_DIR", tmp_path)
    loaded = load_model("shapes_cnn")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_token_targets_mark_object_patches_with_the_label_and_the_rest_as_background():
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[0, :8, :8] = True  # the whole first patch
    masks[0, 8:10, 8:10] = True  # 4 of 64 pixels of patch (1, 1): below a quarter
    targets = train_shapes.token_targets(masks, torch.tensor([3]))
    assert targets.shape == (1, 64)
    assert targets[0, 0] == 3
    assert (targets[0, 1:] == sm.NUM_CLASSES).all()


def test_learning_rate_warms_up_then_decays_to_zero():
    lrs = [train_shapes.lr_at(s, 100, 1.0, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] < 0.01
