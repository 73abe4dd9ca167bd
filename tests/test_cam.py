"""The CAM family: agreement with pytorch-grad-cam and Captum, CAM = Grad-CAM on a GAP network,
in-place activations, batching, no leftovers, clear errors.

pytorch-grad-cam min-max scales every map to [0, 1] and returns float32, so we compare our maps
scaled the same way. Tolerances (largest differences measured in brackets):
- ``PGC_ATOL = 1e-6`` on float64 models (the tiny CNNs, the Shapes CNN): float32 rounding of the
  scaled maps [1.8e-7]. ``PGC_FLOAT32_ATOL = 5e-6`` on EfficientNet-Lite0 in float32 [1.7e-6],
  ``PGC_FLOAT32_GCPP_ATOL = 1e-4`` for its Grad-CAM++, which cubes float32 gradients [4e-5].
- Grad-CAM++: pytorch-grad-cam adds 1e-6 to the denominator of alpha, which the paper does not;
  with gradients of 1e-3 (the Shapes CNN) that changes the maps by about 2e-2. With the same
  epsilon in a subclass ours agrees within ``PGC_ATOL``; without it, on a model whose gradients
  are large enough for the epsilon to be negligible, within ``PGC_ATOL`` too.
- Score-CAM: pytorch-grad-cam upsamples the masks with ``align_corners=True``, we with
  ``align_corners=False`` like every other map. With its upsampling in a subclass, or on a layer
  at the input's resolution (no upsampling), ours agrees within ``PGC_ATOL``.
- ``CAPTUM_ATOL = 1e-10``: Grad-CAM against Captum's LayerGradCam, float64, unscaled.
- ``BATCH_ATOL = 1e-12``: batched against one by one.
"""
from __future__ import annotations

import copy
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import course_lib as cl

pytestmark = pytest.mark.usefixtures("deterministic")

PGC_ATOL = 1e-6
PGC_FLOAT32_ATOL = 5e-6
PGC_FLOAT32_GCPP_ATOL = 1e-4
CAPTUM_ATOL = 1e-10
BATCH_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]

cam_module = sys.modules["course_lib.cam.grad_cam"]
score_module = sys.modules["course_lib.cam.score_cam"]

METHODS = {
    "cam": cl.cam,
    "grad_cam": cl.grad_cam,
    "grad_cam_plus_plus": cl.grad_cam_plus_plus,
    "hires_cam": cl.hires_cam,
    "layer_cam": cl.layer_cam,
    "score_cam": lambda *a, **k: cl.score_cam(*a, batch_size=4, **k),
}
GRADIENT_METHODS = ("grad_cam", "grad_cam_plus_plus", "hires_cam", "layer_cam")
# The conftest CNNs' last activation before pooling: 6 x 8 x 8, the input's resolution.
LAST_ACTIVATION = {"relu_inplace": "3", "relu6": "3", "batchnorm_dropout": "6", "smooth": "3"}


@pytest.fixture(params=list(METHODS))
def method(request):
    return request.param, METHODS[request.param]


def gap_cnn(seed: int = 0, inplace: bool = True) -> nn.Module:
    """A tiny float64 CNN ending in global average pooling and a linear layer (CAM's case)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=inplace),
        nn.Conv2d(6, 8, 3, padding=1, stride=2), nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, N_CLASSES),
    ).double().eval()
    g = torch.Generator().manual_seed(seed + 1000)
    model[0].weight.grad = torch.randn(model[0].weight.shape, generator=g, dtype=torch.float64)
    model[6].bias.requires_grad_(False)
    return model


GAP_LAYER = "3"  # the ReLU after the last conv: N x 8 x 4 x 4, pooled into the classifier


@pytest.fixture
def gap() -> nn.Module:
    return gap_cnn()


def _scale(maps: torch.Tensor) -> torch.Tensor:
    m = maps - maps.flatten(1).amin(dim=1)[:, None, None]
    return m / (1e-7 + m.flatten(1).amax(dim=1)[:, None, None])


def minmax(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map to [0, 1] as pytorch-grad-cam does: its ``scale_cam_image`` once per layer
    and once more after averaging the layers (twice matters: with maps of 1e-4, the 1e-7 in the
    denominator leaves the first result 1e-3 short of 1)."""
    return _scale(_scale(maps))


def pgc(cam_class, model, x, targets, layer: str, **kwargs) -> torch.Tensor:
    """pytorch-grad-cam's map, run on a copy (it puts the model in eval mode and leaves .grad)."""
    model = copy.deepcopy(model)
    layer_module = dict(model.named_modules())[layer]
    with cam_class(model, [layer_module], **kwargs) as c:
        out = c(x, [ClassifierOutputTarget(int(t)) for t in targets])
    return torch.from_numpy(out)


def assert_matches_pgc(ours: torch.Tensor, theirs: torch.Tensor, atol: float = PGC_ATOL) -> None:
    assert ours.shape == theirs.shape
    assert ours.amax() > 0, "an all-zero map makes the comparison vacuous"
    torch.testing.assert_close(minmax(ours).float(), theirs, atol=atol, rtol=0)


class GradCAMPlusPlusWithEpsilon(cam_module.GradCAMPlusPlus):
    """Ours with pytorch-grad-cam's epsilon in the denominator of alpha."""

    def channel_weights(self, c):
        g, a = c.gradients, c.activations
        alpha = g.pow(2) / (2 * g.pow(2) + a.sum(dim=(2, 3), keepdim=True) * g.pow(3) + 1e-6)
        alpha = torch.where(g != 0, alpha, 0.0)
        return (alpha * g.clamp(min=0)).sum(dim=(2, 3))


class ScoreCAMCornerAligned(score_module.ScoreCAM):
    """Ours with pytorch-grad-cam's mask upsampling (``align_corners=True``)."""

    def masks(self, activations, size):
        up = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]
        lo = up.flatten(1).amin(1)[:, None, None]
        hi = up.flatten(1).amax(1)[:, None, None]
        return (up - lo) / (hi - lo + 1e-8)


OURS_AND_PGC = {
    "grad_cam": (cl.grad_cam, GradCAM),
    "hires_cam": (cl.hires_cam, HiResCAM),
    "layer_cam": (cl.layer_cam, LayerCAM),
    "grad_cam_plus_plus_with_pgc_epsilon": (
        lambda m, x, t, **k: GradCAMPlusPlusWithEpsilon()(m, x, t, **k), GradCAMPlusPlus),
    "score_cam_with_pgc_masks": (
        lambda m, x, t, **k: ScoreCAMCornerAligned(batch_size=16)(m, x, t, **k), ScoreCAM),
}


# ----------------------------------------------------- the course's real models (module scope)
@pytest.fixture(scope="module")
def shapes():
    """The Shapes CNN in float64 and four test images (normalised), with their predictions."""
    loaded = cl.load_model("shapes_cnn")
    model = copy.deepcopy(loaded.model).double()
    batch = cl.load_dataset("shapes", n=4, seed=900_123).batch
    x = loaded.preprocess(batch.images).double()
    return model, x


@pytest.fixture(scope="module")
def effnet():
    """EfficientNet-Lite0 (float32, ReLU6) and two photos at 96 px (any size runs; small is fast)."""
    loaded = cl.load_model("efficientnet_lite0")
    x = torch.stack([loaded.preprocess(cl.load_photo(n)) for n in ("chelsea", "coffee")])
    return loaded.model, F.interpolate(x, size=96, mode="bilinear", antialias=True, align_corners=False)


# ------------------------------------------------------------- agreement with pytorch-grad-cam
@pytest.mark.parametrize("name", list(OURS_AND_PGC))
@pytest.mark.parametrize("layer", ["features.layer3", "features.layer2"])
def test_matches_pytorch_grad_cam_on_the_shapes_cnn(shapes, name, layer):
    model, x = shapes
    ours_fn, theirs_cls = OURS_AND_PGC[name]
    targets = [0, 2, 4, 5]
    if name.startswith("score_cam"):  # 128 forward passes per image in each library: two images
        x, targets = x[:2], targets[:2]
    assert_matches_pgc(ours_fn(model, x, targets, layer=layer), pgc(theirs_cls, model, x, targets, layer))


@pytest.mark.parametrize("name,layer", [
    ("grad_cam", "bn2"), ("hires_cam", "bn2"), ("layer_cam", "blocks.5"),
    ("grad_cam_plus_plus_with_pgc_epsilon", "blocks.5"), ("score_cam_with_pgc_masks", "blocks.2"),
])
def test_matches_pytorch_grad_cam_on_efficientnet_lite0(effnet, name, layer):
    model, x = effnet
    ours_fn, theirs_cls = OURS_AND_PGC[name]
    targets = [282, 967]  # tiger cat, espresso
    # float32 through a deep network: the two libraries sum in different orders, and
    # Grad-CAM++ cubes float32 gradients.
    atol = PGC_FLOAT32_GCPP_ATOL if "plus_plus" in name else PGC_FLOAT32_ATOL
    assert_matches_pgc(ours_fn(model, x, targets, layer=layer), pgc(theirs_cls, model, x, targets, layer), atol=atol)


@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout"])
@pytest.mark.parametrize("name", ["grad_cam", "hires_cam", "layer_cam", "grad_cam_plus_plus_with_pgc_epsilon"])
def test_matches_pytorch_grad_cam_on_tiny_cnns(make_cnn, x, kind, name):
    model = make_cnn(kind)
    ours_fn, theirs_cls = OURS_AND_PGC[name]
    layer = LAST_ACTIVATION[kind]
    assert_matches_pgc(ours_fn(model, x, TARGETS, layer=layer), pgc(theirs_cls, model, x, TARGETS, layer))


def test_grad_cam_plus_plus_matches_pytorch_grad_cam_where_its_epsilon_is_negligible(shapes):
    model, x = shapes
    big = copy.deepcopy(model)
    with torch.no_grad():  # gradients x 1e4: their 1e-6 is then tiny next to g^2 >= 1e-2
        big.classifier.weight.mul_(1e4)
    targets = [0, 2, 4, 5]
    ours = cl.grad_cam_plus_plus(big, x, targets, layer="features.layer3")
    # 4e-6 measured: the epsilon still nudges the alphas of the smallest gradients.
    assert_matches_pgc(ours, pgc(GradCAMPlusPlus, big, x, targets, "features.layer3"), atol=1e-5)
    # On the model as trained, the epsilon is not negligible: the maps differ visibly.
    plain = minmax(cl.grad_cam_plus_plus(model, x, targets, layer="features.layer3")).float()
    assert (plain - pgc(GradCAMPlusPlus, model, x, targets, "features.layer3")).abs().max() > 1e-3


def test_score_cam_matches_pytorch_grad_cam_on_a_layer_at_input_resolution(make_cnn, x):
    # No upsampling, so the one deliberate difference (mask upsampling) is out of play.
    model = make_cnn("relu_inplace")
    ours = cl.score_cam(model, x, TARGETS, layer="1", batch_size=4)
    assert_matches_pgc(ours, pgc(ScoreCAM, model, x, TARGETS, "1"))


def test_score_cam_differs_from_pytorch_grad_cam_only_by_the_mask_upsampling(shapes):
    model, x = shapes
    x, targets = x[:2], [0, 2]
    theirs = pgc(ScoreCAM, model, x, targets, "features.layer2")
    ours = minmax(cl.score_cam(model, x, targets, layer="features.layer2")).float()
    aligned = minmax(ScoreCAMCornerAligned()(model, x, targets, layer="features.layer2")).float()
    assert (ours - theirs).abs().max() > 1e-2
    torch.testing.assert_close(aligned, theirs, atol=PGC_ATOL, rtol=0)


# ----------------------------------------------------------------------- agreement with Captum
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout", "smooth"])
def test_grad_cam_matches_captum_layer_grad_cam_within_1e_10(make_cnn, x, kind, relu):
    model = make_cnn(kind)
    layer = LAST_ACTIVATION[kind]
    ours = cl.grad_cam(model, x, TARGETS, layer=layer, upsample=False, relu=relu)
    theirs = LayerGradCam(model, model[int(layer)]).attribute(
        x.clone().requires_grad_(), target=TARGETS, relu_attributions=relu)
    assert ours.shape == theirs[:, 0].shape
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs[:, 0].detach(), atol=CAPTUM_ATOL, rtol=0)


def test_grad_cam_matches_captum_on_the_shapes_cnn_within_1e_10(shapes):
    model, x = shapes
    ours = cl.grad_cam(model, x, [1, 1, 3, 0], layer="features.layer3", upsample=False)
    theirs = LayerGradCam(model, model.features.layer3).attribute(
        x.clone().requires_grad_(), target=[1, 1, 3, 0], relu_attributions=True)[:, 0]
    torch.testing.assert_close(ours, theirs.detach(), atol=CAPTUM_ATOL, rtol=0)


def test_grad_cam_matches_captum_on_efficientnet_lite0(effnet):
    model, x = effnet
    ours = cl.grad_cam(model, x, [282, 967], layer="bn2", upsample=False)
    theirs = LayerGradCam(model, model.bn2).attribute(x.clone().requires_grad_(), target=[282, 967],
                                                       relu_attributions=True)[:, 0].detach()
    assert (ours - theirs).abs().max() <= 1e-5 * theirs.abs().max()


# ----------------------------------------------------------------------- CAM and Grad-CAM
def test_cam_equals_grad_cam_times_the_number_of_positions_on_a_gap_network(gap, x):
    # logit_c = sum_k w_ck mean_ij A_kij + b, so dS/dA_kij = w_ck / (h w) everywhere and
    # Grad-CAM's weight (the mean gradient) is w_ck / (h w): CAM = (h w) x Grad-CAM.
    c = cl.cam(gap, x, TARGETS, layer=GAP_LAYER, upsample=False, relu=False)
    g = cl.grad_cam(gap, x, TARGETS, layer=GAP_LAYER, upsample=False, relu=False)
    h, w = c.shape[-2:]
    assert c.abs().max() > 0
    torch.testing.assert_close(c, g * (h * w), atol=1e-12, rtol=0)


def test_cam_equals_grad_cam_times_64_on_the_shapes_cnn(shapes):
    model, x = shapes
    c = cl.cam(model, x, layer="features.layer3", upsample=False, relu=False)
    g = cl.grad_cam(model, x, layer="features.layer3", upsample=False, relu=False)
    torch.testing.assert_close(c, g * 64, atol=1e-10, rtol=0)


def test_cam_weights_are_the_classifier_row_of_the_target(gap, x):
    acts = gap[:4](x).detach()
    expected = torch.einsum("nk,nkhw->nhw", gap[6].weight[TARGETS].detach(), acts)
    torch.testing.assert_close(cl.cam(gap, x, TARGETS, layer=GAP_LAYER, upsample=False, relu=False), expected)


def test_cam_on_a_network_without_global_average_pooling_says_use_grad_cam(make_cnn, x):
    model = make_cnn("relu_inplace")  # AdaptiveAvgPool2d(2): four pooled cells, not one
    with pytest.raises(ValueError, match="CAM needs a linear layer|global average pooling.*grad_cam"):
        cl.cam(model, x, TARGETS, layer="3")


def test_cam_on_a_layer_that_is_not_the_pooled_one_says_use_grad_cam(gap, x):
    with pytest.raises(ValueError, match="global average pooling and a linear layer.*Use grad_cam"):
        cl.cam(gap, x, TARGETS, layer="2")  # the conv before the ReLU: pooled only after the ReLU


def test_course_lib_cam_is_the_subpackage_and_the_cam_function(gap, x):
    assert cl.cam.grad_cam is cl.grad_cam
    torch.testing.assert_close(cl.cam(gap, x, TARGETS, layer=GAP_LAYER),
                               cl.cam.cam(gap, x, TARGETS, layer=GAP_LAYER), atol=0, rtol=0)


# ------------------------------------------------------------------------ the variants' algebra
def _captured(acts, grads):
    n = acts.shape[0]
    return cl.cam.Captured(None, None, None, torch.zeros(n, dtype=torch.long), None, acts, grads)


def test_grad_cam_plus_plus_alpha_is_one_over_two_plus_sum_of_activations_times_gradient():
    # alpha = g^2 / (2 g^2 + S g^3) = 1 / (2 + S g) where g != 0, and 0 where g == 0.
    acts = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]]]], dtype=torch.float64)  # S = 6
    grads = torch.tensor([[[[0.5, -0.25], [0.0, 1.0]]]], dtype=torch.float64)
    w = cam_module.GradCAMPlusPlus().channel_weights(_captured(acts, grads))
    expected = 0.5 / (2 + 6 * 0.5) + 1.0 / (2 + 6 * 1.0)  # negative and zero gradients drop out
    torch.testing.assert_close(w, torch.tensor([[expected]], dtype=torch.float64))


def test_hires_and_layer_cam_are_elementwise_and_grad_cam_averages(make_batch):
    g = torch.Generator().manual_seed(0)
    acts = torch.rand((2, 4, 3, 3), generator=g, dtype=torch.float64)
    grads = torch.randn((2, 4, 3, 3), generator=g, dtype=torch.float64)
    c = _captured(acts, grads)
    torch.testing.assert_close(cam_module.HiResCAM().combine(c), (grads * acts).sum(1))
    torch.testing.assert_close(cam_module.LayerCAM().combine(c), (grads.clamp(min=0) * acts).sum(1))
    torch.testing.assert_close(cam_module.GradCAM().combine(c), (grads.mean((2, 3), keepdim=True) * acts).sum(1))


def test_hires_cam_equals_grad_cam_when_the_gradient_is_constant_over_space(gap, x):
    # On a GAP network every position has the same gradient, so averaging it changes nothing.
    for relu in (True, False):
        torch.testing.assert_close(cl.hires_cam(gap, x, TARGETS, layer=GAP_LAYER, relu=relu),
                                   cl.grad_cam(gap, x, TARGETS, layer=GAP_LAYER, relu=relu), atol=1e-12, rtol=0)


def test_score_cam_weights_are_a_softmax_of_the_masked_scores(gap, x):
    c = cl.cam.capture(gap, x, TARGETS, gap[3], gradients=False)
    w = score_module.ScoreCAM(batch_size=5).channel_weights(c)
    k = c.activations.shape[1]
    scores = torch.empty(len(x), k, dtype=torch.float64)
    with torch.no_grad():
        for i in range(len(x)):
            for j in range(k):
                a = F.interpolate(c.activations[i : i + 1, j : j + 1], size=x.shape[-2:], mode="bilinear")[0, 0]
                mask = (a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else torch.zeros_like(a)
                scores[i, j] = gap(x[i : i + 1] * mask)[0, TARGETS[i]]
    torch.testing.assert_close(w, scores.softmax(dim=1), atol=1e-12, rtol=0)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(len(x), dtype=torch.float64))


def test_score_cam_costs_one_forward_pass_per_channel_plus_one(gap, x):
    calls = []
    handle = gap.register_forward_pre_hook(lambda m, i: calls.append(i[0].shape[0]))
    try:
        cl.score_cam(gap, x, TARGETS, layer=GAP_LAYER, batch_size=5)
    finally:
        handle.remove()
    k = 8
    assert sum(calls) == len(x) * (k + 1)
    assert max(calls) == 5


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_score_cam_batch_size_changes_the_speed_not_the_map(gap, x, batch_size):
    reference = cl.score_cam(gap, x, TARGETS, layer=GAP_LAYER, batch_size=4)
    torch.testing.assert_close(cl.score_cam(gap, x, TARGETS, layer=GAP_LAYER, batch_size=batch_size),
                               reference, atol=BATCH_ATOL, rtol=0)


def test_channel_masks_are_in_0_1_and_a_constant_channel_gives_zero():
    acts = torch.stack([torch.arange(4.0).view(2, 2), torch.full((2, 2), 3.0)]).double()
    masks = cl.cam.channel_masks(acts, (4, 4))
    assert masks.shape == (2, 4, 4)
    assert masks[0].min() == 0 and masks[0].max() == 1
    assert torch.equal(masks[1], torch.zeros(4, 4, dtype=torch.float64))


# ------------------------------------------------------------- in-place activations after the layer
@pytest.mark.parametrize("name", [m for m in METHODS if m != "cam"])
def test_a_layer_followed_by_an_inplace_relu_gives_its_own_output(x, name):
    # Layer "2" (a conv) is followed by ReLU(inplace=True), which overwrites its output tensor.
    # The result must be the same as on the same network with an out-of-place ReLU.
    inplace_model, plain_model = gap_cnn(inplace=True), gap_cnn(inplace=False)
    got = METHODS[name](inplace_model, x, TARGETS, layer="2", relu=False)
    expected = METHODS[name](plain_model, x, TARGETS, layer="2", relu=False)
    assert got.abs().max() > 0
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_pytorch_grad_cam_records_post_relu_values_on_such_a_layer(x):
    # The trap we avoid, pinned so that the comparison above means something: its activations
    # are a view, overwritten by the in-place ReLU; its gradients are those of the conv output.
    inplace_model, plain_model = gap_cnn(inplace=True), gap_cnn(inplace=False)
    on_inplace = pgc(GradCAM, inplace_model, x, TARGETS, "2")
    on_plain = pgc(GradCAM, plain_model, x, TARGETS, "2")
    assert (on_inplace - on_plain).abs().max() > 1e-2
    assert_matches_pgc(cl.grad_cam(inplace_model, x, TARGETS, layer="2"), on_plain)


# ------------------------------------------------------------------------------ call shape
def test_upsample_gives_the_input_size_and_without_it_the_layer_size(gap, x, method):
    _, run = method
    up = run(gap, x, TARGETS, layer=GAP_LAYER)
    small = run(gap, x, TARGETS, layer=GAP_LAYER, upsample=False)
    assert up.shape == (3, 8, 8)
    assert small.shape == (3, 4, 4)
    expected = F.interpolate(small[:, None], size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(up, expected, atol=0, rtol=0)


def test_relu_false_keeps_negative_evidence_and_relu_true_clips_it(gap, x):
    raw = cl.grad_cam(gap, x, TARGETS, layer=GAP_LAYER, upsample=False, relu=False)
    clipped = cl.grad_cam(gap, x, TARGETS, layer=GAP_LAYER, upsample=False)
    assert (raw < 0).any()
    torch.testing.assert_close(clipped, raw.clamp(min=0), atol=0, rtol=0)


def test_layer_by_module_equals_layer_by_name(gap, x, method):
    _, run = method
    torch.testing.assert_close(run(gap, x, TARGETS, layer=gap[3]), run(gap, x, TARGETS, layer=GAP_LAYER),
                               atol=0, rtol=0)


def test_batched_equals_one_by_one(gap, x, method):
    _, run = method
    batched = run(gap, x, TARGETS, layer=GAP_LAYER)
    single = torch.cat([run(gap, x[i : i + 1], t, layer=GAP_LAYER) for i, t in enumerate(TARGETS)])
    assert batched.abs().max() > 0
    torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


def test_batched_equals_one_by_one_on_a_batchnorm_network(make_cnn, x):
    model = make_cnn("batchnorm_dropout")
    for name in GRADIENT_METHODS:
        run = METHODS[name]
        batched = run(model, x, TARGETS, layer="6")
        single = torch.cat([run(model, x[i : i + 1], t, layer="6") for i, t in enumerate(TARGETS)])
        torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


def test_target_none_explains_the_predicted_class(gap, x, method):
    _, run = method
    with torch.no_grad():
        predicted = gap(x).argmax(dim=1).tolist()
    auto = run(gap, x, None, layer=GAP_LAYER, relu=False)
    torch.testing.assert_close(auto, run(gap, x, predicted, layer=GAP_LAYER, relu=False), atol=0, rtol=0)
    other = [(p + 1) % N_CLASSES for p in predicted]
    assert not torch.allclose(auto, run(gap, x, other, layer=GAP_LAYER, relu=False))


# ----------------------------------------------------------------------- nothing is left behind
def test_no_hook_or_state_left_after_a_normal_run(gap, x, method, no_leftovers):
    _, run = method
    check = no_leftovers(gap)
    run(gap, x, TARGETS, layer=GAP_LAYER)
    check()


@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout"])
def test_no_hook_or_state_left_on_the_tiny_cnns(make_cnn, x, kind, no_leftovers):
    model = make_cnn(kind)
    check = no_leftovers(model)
    for name in GRADIENT_METHODS + ("score_cam",):
        METHODS[name](model, x, TARGETS, layer=LAST_ACTIVATION[kind])
    check()


def test_callers_input_is_untouched(gap, x, method):
    _, run = method
    x = x.clone().requires_grad_(True)
    x.grad = torch.full_like(x, 7.0)
    before = x.detach().clone()
    run(gap, x, TARGETS, layer=GAP_LAYER)
    assert torch.equal(x.detach(), before)
    assert torch.equal(x.grad, torch.full_like(x, 7.0))


class FailOnCall(nn.Module):
    """Wraps a model; its forward raises on call number ``fail_on``."""

    def __init__(self, inner: nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"forward failed on call {self.calls}")
        return self.inner(x)


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward failed")


class FailInBackward(nn.Module):
    def forward(self, x):
        return _FailingBackward.apply(x)


@pytest.mark.parametrize("name,fail_on", [(m, 1) for m in METHODS] + [("score_cam", 2), ("score_cam", 4)])
def test_no_hook_or_state_left_after_the_forward_raises(x, no_leftovers, name, fail_on):
    # Score-CAM: call 1 captures the activations, later calls score masked images.
    run = METHODS[name]
    model = FailOnCall(gap_cnn(), fail_on).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match=f"forward failed on call {fail_on}"):
        run(model, x, TARGETS, layer="inner." + GAP_LAYER)
    check()


def test_no_hook_or_state_left_after_the_backward_raises(x, no_leftovers):
    base = gap_cnn()
    model = nn.Sequential(base[:2], FailInBackward(), nn.Sequential(*base[2:])).eval()
    check = no_leftovers(model)
    for name in GRADIENT_METHODS:
        with pytest.raises(RuntimeError, match="backward failed"):
            METHODS[name](model, x, TARGETS, layer="2.1")  # the ReLU after the failing module
    check()


def test_no_hook_or_state_left_after_a_target_out_of_range(gap, x, method, no_leftovers):
    _, run = method
    check = no_leftovers(gap)
    with pytest.raises(ValueError, match=f"out of range: the model has {N_CLASSES} classes"):
        run(gap, x, N_CLASSES, layer=GAP_LAYER)
    check()


def test_model_in_training_mode_warns_and_stays_in_training_mode(make_cnn, x, no_leftovers):
    model = make_cnn("batchnorm_dropout").train()
    check = no_leftovers(model)
    for name in GRADIENT_METHODS + ("score_cam",):
        with pytest.warns(UserWarning, match=r"training mode.*Call model\.eval\(\)"):
            METHODS[name](model, x, TARGETS, layer="6")
    check()  # still training, batch-norm statistics unchanged


def test_model_in_eval_mode_gives_no_warning(gap, x, method):
    _, run = method
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(gap, x, TARGETS, layer=GAP_LAYER)


# ------------------------------------------------------------------------------ clear errors
def test_unknown_layer_name_lists_close_names(gap, x, method):
    _, run = method
    with pytest.raises(ValueError, match=r"no layer named '33'; did you mean: 3"):
        run(gap, x, TARGETS, layer="33")


def test_unknown_layer_name_on_the_shapes_cnn_suggests_the_real_one(shapes):
    model, x = shapes
    with pytest.raises(ValueError, match=r"'features\.layer4'.*features\.layer"):
        cl.grad_cam(model, x, layer="features.layer4")


def test_a_module_of_another_model_is_rejected(gap, x, method):
    _, run = method
    with pytest.raises(ValueError, match="not a sub-module of the model"):
        run(gap, x, TARGETS, layer=gap_cnn()[3])


def test_a_layer_without_a_feature_map_is_rejected(gap, x):
    with pytest.raises(ValueError, match=r"N x K x h x w feature map.*\(3, 5\)"):
        cl.grad_cam(gap, x, TARGETS, layer="6")  # the linear classifier


def test_a_layer_used_twice_is_rejected(x):
    torch.manual_seed(0)
    relu = nn.ReLU()

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.relu = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), relu
            self.fc = nn.Linear(4, N_CLASSES)

        def forward(self, x):
            return self.fc(self.relu(self.c2(self.relu(self.c1(x)))).mean((2, 3)))

    model = Twice().double().eval()
    with pytest.raises(ValueError, match="ran 2 times in one forward pass"):
        cl.grad_cam(model, x, TARGETS, layer="relu")


def test_3d_input_is_rejected_with_a_hint_to_unsqueeze(gap, x, method):
    _, run = method
    with pytest.raises(ValueError, match=r"4 dimensions.*unsqueeze\(0\)"):
        run(gap, x[0], 0, layer=GAP_LAYER)


def test_integer_input_is_rejected_asking_for_floats(gap, x, method):
    _, run = method
    with pytest.raises(TypeError, match=r"floating-point.*\.float\(\)"):
        run(gap, (x * 255).to(torch.uint8), 0, layer=GAP_LAYER)


def test_layer_is_required_by_keyword(gap, x):
    with pytest.raises(TypeError, match="positional arguments"):
        cl.grad_cam(gap, x, TARGETS, GAP_LAYER)
    with pytest.raises(TypeError, match="layer"):
        cl.grad_cam(gap, x, TARGETS)
