"""The committed Shapes models: they load, reach their accuracy, the shortcut shows, ViT attends."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from course_lib.zoo import WeightFileError, list_models, load_model
from course_lib.zoo import shapes as S
from course_lib.zoo import shapes_models as sm
from course_lib.zoo.weights import WEIGHTS_DIR

# A test set the training never saw (training used seeds 100_000 + epoch; reports used TEST_SEED).
FRESH_SEED = 31_337
N = 600


@pytest.fixture(scope="module")
def fresh() -> S.ShapesBatch:
    return S.make_shapes(N, FRESH_SEED)


@pytest.fixture(scope="module")
def cnn():
    return load_model("shapes_cnn")


@pytest.fixture(scope="module")
def shortcut_cnn():
    return load_model("shapes_cnn_shortcut")


@pytest.fixture(scope="module")
def vit():
    return load_model("shapes_vit")


def test_models_are_listed_as_offline():
    listed = {m["name"]: m["offline"] for m in list_models()}
    for name in ("shapes_cnn", "shapes_cnn_shortcut", "shapes_vit"):
        assert listed.get(name) is True, name


def test_cnn_accuracy_at_least_95_percent(cnn, fresh):
    assert sm.accuracy(cnn.model, fresh) >= 0.95


def test_vit_accuracy_at_least_85_percent(vit, fresh):
    assert sm.accuracy(vit.model, fresh) >= 0.85


def test_shortcut_cnn_looks_good_on_its_own_test_distribution(shortcut_cnn):
    # Tagged as in training, the shortcut model seems excellent; it is not (the next tests).
    like_training = S.make_shapes(N, FRESH_SEED, shortcut_class=sm.SHORTCUT_CLASS, shortcut_rate=sm.SHORTCUT_RATE)
    assert sm.accuracy(shortcut_cnn.model, like_training) >= 0.95


def test_shortcut_cnn_accuracy_falls_when_the_tag_moves_to_other_classes(shortcut_cnn):
    report = sm.shortcut_report(shortcut_cnn.model, n=N, seed=FRESH_SEED)
    assert report["clean_on_others"] >= 0.95, report
    assert report["tag_on_others"] < report["clean_on_others"] - 0.4, report
    assert report["others_called_shortcut"] > 0.4, report
    # Without its tag, a circle is often not recognised: the model learnt the tag, not the shape.
    assert report["clean_shortcut_class"] < report["clean_on_others"] - 0.2, report


def test_plain_cnn_ignores_the_tag(cnn):
    report = sm.shortcut_report(cnn.model, n=N, seed=FRESH_SEED)
    assert report["tag_on_others"] > report["clean_on_others"] - 0.05, report


def test_loaded_models_carry_labels_preprocess_and_layer_names(cnn, shortcut_cnn, vit):
    for loaded in (cnn, shortcut_cnn, vit):
        assert loaded.labels == S.CLASSES
        assert not loaded.model.training
        assert loaded.info["training_command"] == f"python scripts/train_shapes.py {loaded.name}"
    for loaded in (cnn, shortcut_cnn):
        modules = dict(loaded.model.named_modules())
        assert isinstance(modules[loaded.info["last_conv_layer"]], torch.nn.Module)
        assert any(isinstance(m, torch.nn.ReLU) and m.inplace for m in modules.values())
    assert shortcut_cnn.info["shortcut_class"] == sm.SHORTCUT_CLASS
    assert vit.info["patch_grid"] == (8, 8)


def test_preprocess_accepts_pil_arrays_and_tensors(cnn, fresh):
    image = fresh.images[0]
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    from_pil = cnn.preprocess(Image.fromarray(array))
    from_array = cnn.preprocess(array)
    assert from_pil.shape == (3, 64, 64) and torch.equal(from_pil, from_array)
    assert torch.allclose(from_array, cnn.preprocess(image), atol=1 / 255)
    assert torch.allclose(cnn.denormalize(cnn.preprocess(fresh.images[:4])), fresh.images[:4], atol=1e-6)
    big = Image.fromarray(array).resize((128, 128))
    assert cnn.preprocess(big).shape == (3, 64, 64)
    with pytest.raises(ValueError, match="expected"):
        cnn.preprocess(torch.zeros(64, 64))


def test_vit_returns_attentions_with_the_right_shapes(vit, fresh):
    x = vit.preprocess(fresh.images[:5])
    with torch.no_grad():
        out = vit.model(pixel_values=x, output_attentions=True)
    assert out.logits.shape == (5, len(S.CLASSES))
    assert len(out.attentions) == sm.VIT_CONFIG["num_hidden_layers"]
    heads, tokens = sm.VIT_CONFIG["num_attention_heads"], 1 + 8 * 8
    for a in out.attentions:
        assert a.shape == (5, heads, tokens, tokens)
        assert torch.allclose(a.sum(-1), torch.ones(5, heads, tokens), atol=1e-5)
    assert torch.equal(sm.logits_model(vit.model)(x), out.logits)


@pytest.mark.parametrize("name", ["shapes_cnn", "shapes_vit"])
def test_flipped_byte_gives_weight_file_error_naming_the_fix(name, tmp_path):
    copy = tmp_path / f"{name}.safetensors"
    shutil.copy(WEIGHTS_DIR / f"{name}.safetensors", copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match=f"python scripts/train_shapes.py {name}"):
        load_model(name, path=copy)
    with pytest.raises(WeightFileError, match="missing"):
        load_model(name, path=tmp_path / "nowhere.safetensors")


def test_manifests_record_the_accuracy_the_tests_check():
    assert sm.read_manifest("shapes_cnn")["test_accuracy"] >= 0.95
    assert sm.read_manifest("shapes_vit")["test_accuracy"] >= 0.85
    shortcut = sm.read_manifest("shapes_cnn_shortcut")["shortcut"]
    assert shortcut["tag_on_others"] < shortcut["clean_on_others"] - 0.4


@pytest.mark.parametrize("concept", ["striped", "dotted"])
def test_linear_probe_finds_the_concept_well_above_chance(cnn, concept):
    # Where the concept is irrelevant to the class: the CNN still represents it.
    acc = sm.concept_probe(cnn.model, concept, "pool", n_train=400, n_test=300, classes=["circle", "triangle", "cross"])
    assert acc >= 0.9
