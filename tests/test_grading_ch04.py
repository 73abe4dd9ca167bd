"""The answer keys of chapter 04's exercises, recomputed from their definitions and the course's
models, so that a change of either cannot leave a stale key or a stale table behind."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib as cl
from course_lib.cam import GradCAMPlusPlus
from course_lib.grading import ch04
from course_lib.grading.checks import Got

pytestmark = pytest.mark.usefixtures("deterministic")

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / f"{ch04.EXERCISE}.py"


def accepts(item, name, value) -> bool:
    """Whether the grader's check of answer ``name`` passes ``value``."""
    check = next(c for c in item.checks if name in c.answers)
    try:
        check.run(Got({name: value}))
    except Exception:
        return False
    return True


def _gap_net() -> nn.Module:
    """A tiny float64 CNN whose last conv block (layer "3", 14 x 14 on 28-pixel inputs) feeds
    global average pooling and a linear layer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1, stride=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)).double().eval()


def test_cam_over_grad_cam_is_196_on_a_14_x_14_block_before_global_average_pooling():
    model, x = _gap_net(), torch.rand(2, 3, 28, 28, dtype=torch.float64)
    c = cl.cam(model, x, 1, layer="3", upsample=False, relu=False)
    g = cl.grad_cam(model, x, 1, layer="3", upsample=False, relu=False)
    assert c.shape[-2:] == (14, 14)
    torch.testing.assert_close(c, 196 * g)
    assert accepts(ch04.GAP_ALGEBRA, "answer_cam_ratio", 196)
    assert not accepts(ch04.GAP_ALGEBRA, "answer_cam_ratio", 14)


def test_grad_cam_plus_plus_weight_on_a_gap_block_is_relu_w_over_two_plus_w_times_mean_activation():
    model, x = _gap_net(), torch.rand(1, 3, 28, 28, dtype=torch.float64)
    captured = cl.cam.capture(model, x, 2, model[3])
    w = model[6].weight.detach()[2]
    expected = w.clamp(min=0) / (2 + w * captured.activations.mean(dim=(2, 3))[0])
    torch.testing.assert_close(GradCAMPlusPlus().channel_weights(captured)[0], expected)
    # The keys: Grad-CAM's weight w / (hw), Grad-CAM++'s relu(w) / (2 + w x mean activation).
    assert accepts(ch04.GAP_ALGEBRA, "answer_gradcam_weight", 0.49 / 196)
    assert accepts(ch04.GAP_ALGEBRA, "answer_gcpp_weight", 0.49 / (2 + 0.49 * 5))
    assert not accepts(ch04.GAP_ALGEBRA, "answer_gcpp_weight", 0.49 / 2)  # alpha = 1/2 forgets s


def _clip_negative(module, inputs, out):
    out.register_hook(lambda g: g.clamp(min=0))


def _snippet(model, x, target):
    """The exercise's leaky guided backprop, verbatim."""
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.register_forward_hook(_clip_negative)
    x = x.clone().requires_grad_(True)
    model(x)[:, target].sum().backward()
    return x.grad


def test_find_the_leak_keys_hold_on_relu_and_relu6_networks(make_cnn, x):
    relu_net = make_cnn("relu_inplace")
    leaky = copy.deepcopy(relu_net)
    for p in leaky.parameters():
        p.grad = None
    _snippet(leaky, x, 0)
    assert sum(len(m._forward_hooks) for m in leaky.modules()) == 2  # line B's hooks stay
    assert all(p.grad is not None for p in leaky.parameters() if p.requires_grad)  # line D
    torch.testing.assert_close(cl.vanilla_gradient(leaky, x, 0), cl.guided_backprop(relu_net, x, 0))  # B
    relu6_net = make_cnn("relu6")
    torch.testing.assert_close(_snippet(copy.deepcopy(relu6_net), x, 0), cl.vanilla_gradient(relu6_net, x, 0))
    assert not isinstance(nn.ReLU6(), nn.ReLU)
    keys = {"answer_leak_line": "B", "answer_later_gradient": "B", "answer_grad_line": "D", "answer_relu6": "B"}
    assert all(accepts(ch04.FIND_THE_LEAK, name, value) for name, value in keys.items())


def _table_in_the_exercise() -> dict[tuple[str, str], list[float]]:
    text = SOLUTION.read_text()
    rows = re.findall(r"^# \| (features\.\w+) \| (true|circle) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$",
                      text, flags=re.M)
    return {(layer, target): [float(v) for v in values] for layer, target, *values in rows}


def test_shortcut_table_in_the_exercise_is_what_the_model_gives():
    table = _table_in_the_exercise()
    assert len(table) == 8
    shortcut = cl.load_model("shapes_cnn_shortcut")
    circle = shortcut.labels.index("circle")
    tagged = cl.load_dataset("shapes", n=200, seed=900_000, shortcut_class=circle, shortcut_rate=0.0,
                             tag_other_rate=1.0).batch
    tagged = tagged[tagged.labels != circle]
    assert len(tagged) == 166
    x, y = shortcut.preprocess(tagged.images), tagged.labels
    near_tag = F.max_pool2d(shortcut.info["tag_mask"][None, None].double(), 9, stride=1, padding=4)[0, 0] > 0
    assert round(float(near_tag.double().mean()), 2) == 0.03
    with torch.no_grad():
        assert round(float((shortcut.model(x).argmax(dim=1) == circle).double().mean()), 2) == 0.69
    for (layer, name), values in table.items():
        target = y if name == "true" else torch.full_like(y, circle)
        m = cl.grad_cam(shortcut.model, x, target, layer=layer).double()
        total = m.sum(dim=(1, 2)).clamp(min=1e-30)
        peak = m.flatten(1).argmax(dim=1)
        measured = [
            float(((m * tagged.masks).sum(dim=(1, 2)) / total).mean()),
            float(((m * near_tag).sum(dim=(1, 2)) / total).mean()),
            float(tagged.masks.flatten(1)[torch.arange(len(peak)), peak].double().mean()),
            float(near_tag.flatten()[peak].double().mean()),
        ]
        # Shares to the two printed decimals; peaks within two images of 166 (0.012): an argmax
        # on a flat stretch of an upsampled map can move with the CPU's rounding.
        tolerance = [0.006, 0.006, 0.013, 0.013]
        assert all(abs(a - b) <= t for a, b, t in zip(measured, values, tolerance)), (layer, name, measured, values)


def test_shortcut_keys_follow_from_the_table():
    table = _table_in_the_exercise()
    layers = ["features.stem", "features.layer1", "features.layer2", "features.layer3"]
    best = max(layers, key=lambda layer: table[layer, "true"][2])  # peak on object, true class
    assert accepts(ch04.SHORTCUT_LAYERS, "answer_object_layer", "ABCD"[layers.index(best)])
    on_object, near, peak_object, _ = table["features.layer3", "circle"]
    # Option B's claims: never on the object, five times the tag region's 0.03, nothing for the true class.
    assert peak_object == 0.0 and near >= 5 * 0.03 and table["features.layer3", "true"][1] == 0.0
    assert accepts(ch04.SHORTCUT_LAYERS, "answer_shortcut_evidence", "B")
