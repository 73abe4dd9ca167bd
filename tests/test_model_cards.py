"""The model cards page is generated from the registry, the training metrics and the cited
sources; it is current, and every model, dataset and photo on it has a licence and a source."""
from __future__ import annotations

import json
import re
import sys

import pytest

from course_lib import list_datasets, list_models
from course_lib.zoo.imagenet import PHOTO_CREDITS, PHOTOS
from scripts.model_cards import CARDS, DATASET_CARDS, PAGE, ROOT, card, render

MODELS = {m["name"]: m for m in list_models()}
# A model is an ImageNet classifier when the registry says so; new ones are then covered too.
IMAGENET_MODELS = sorted(n for n, m in MODELS.items() if "ImageNet-1k" in m["description"])
# Every published figure links to where it is printed.
SOURCE = re.compile(r"^https://\S+$")


def test_every_registered_model_has_a_card():
    missing = set(MODELS) - set(CARDS)
    assert not missing, f"add a card to scripts/model_cards.py for: {sorted(missing)}"


def test_models_page_is_up_to_date():
    assert PAGE.read_text() == render(), "book/models.md is stale: run python scripts/model_cards.py"


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    import scripts.model_cards as cards

    stale = tmp_path / "models.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(cards, "PAGE", stale)
    monkeypatch.setattr(sys, "argv", ["model_cards.py", "--check"])
    assert cards.main() == 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_card_states_a_licence(name):
    licence = CARDS[name].get("licence", "")
    assert len(licence) > 10, f"{name}: the card states no licence"
    assert "| licence |" in card(MODELS[name])


def test_the_registry_knows_the_imagenet_models():
    assert {"efficientnet_lite0", "resnet18", "resnet50", "vgg16", "vit_b16"} <= set(IMAGENET_MODELS)


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_every_imagenet_model_has_a_published_accuracy_with_its_source(name):
    published = CARDS[name].get("published", [])
    assert published, f"{name}: no published ImageNet accuracy"
    for entry in published:
        assert 0.5 < entry["value"] < 1, f"{name}: {entry['value']} is not a top-1 fraction"
        assert "ImageNet" in entry["metric"]
        assert SOURCE.match(entry["source"]), f"{name}: source {entry['source']!r} is not a URL"
        assert entry["source_name"] and entry["by"]
    shown = card(MODELS[name])
    first = f"{100 * published[0]['value']:.3f}".rstrip("0").rstrip(".")
    assert f"**{first} %**" in shown and published[0]["source"] in shown


@pytest.mark.parametrize("name", IMAGENET_MODELS)
def test_every_imagenet_model_names_its_weights_and_preprocessing(name):
    info = CARDS[name]
    assert info.get("weights") or info.get("source"), f"{name}: which weights?"
    assert info.get("preprocessing"), f"{name}: the preprocessing the course applies is not stated"


def test_torchvision_cards_match_the_weights_the_loader_uses():
    """Published acc@1 and file name agree with torchvision's own metadata (no download)."""
    import torchvision.models as tvm

    for name, enum in (("resnet18", "ResNet18_Weights"), ("resnet50", "ResNet50_Weights"), ("vgg16", "VGG16_Weights")):
        weights = getattr(tvm, enum).IMAGENET1K_V1  # the tag course_lib/zoo/online.py loads
        assert f"{enum}.IMAGENET1K_V1" in CARDS[name]["weights"]
        assert weights.url.rsplit("/", 1)[1] in CARDS[name]["weights"]
        acc1 = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] / 100
        assert CARDS[name]["published"][0]["value"] == pytest.approx(acc1, abs=1e-9)


def test_efficientnet_card_names_the_file_the_loader_checks():
    from course_lib.zoo.imagenet import EFFICIENTNET_LITE0_SHA256

    # The conversion script names each file by the first 8 hex digits of its SHA-256.
    assert f"efficientnet-lite0-{EFFICIENTNET_LITE0_SHA256[:8]}.pth" in CARDS["efficientnet_lite0"]["source"]


def test_models_trained_with_mask_labels_carry_a_warning():
    """A model whose training record says it saw the true masks is flagged on its card."""
    flagged = []
    for path in sorted((ROOT / "course_lib" / "zoo" / "weights").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("token_labels_weight", 0) > 0:
            flagged.append(record["name"])
            caveat = CARDS[record["name"]].get("caveat", "")
            assert "mask" in caveat and "localisation" in caveat, record["name"]
            assert "| warning |" in card(MODELS[record["name"]])
    assert "shapes_vit" in flagged


def test_every_dataset_has_a_source_and_a_licence():
    for d in list_datasets():
        assert DATASET_CARDS.get(d["name"], {}).get("source"), d["name"]
        assert DATASET_CARDS[d["name"]].get("licence"), d["name"]


def test_every_bundled_photo_has_a_credit_and_a_licence():
    assert set(PHOTO_CREDITS) == set(PHOTOS)
    for name, credit in PHOTO_CREDITS.items():
        assert credit["licence"] and credit["credit"] and credit["documented_in"], name
