"""The answer keys of chapter 04's exercises, recomputed from their definitions and the course's
models, so that a change of either cannot leave a stale key or a stale table behind; and each
plausible bug in the Grad-CAM item loses its own point with its own reason."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib as cl
from course_lib.grading import ch04, public_checks
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


# --- item 1: each plausible bug loses one point, with its own reason ---------------------------


def _right(a, g, relu=True):
    m = (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)
    return m.clamp(min=0) if relu else m


def _summed(a, g, relu=True):
    m = (g.sum(dim=(2, 3), keepdim=True) * a).sum(dim=1)
    return m.clamp(min=0) if relu else m


def _batch_mean(a, g, relu=True):
    m = (g.mean(dim=(0, 2, 3), keepdim=True) * a).sum(dim=1)
    return m.clamp(min=0) if relu else m


def _relu_before_sum(a, g, relu=True):
    p = g.mean(dim=(2, 3), keepdim=True) * a
    return (p.clamp(min=0) if relu else p).sum(dim=1)


def _always_relu(a, g, relu=True):
    return (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1).clamp(min=0)


def _in_place(a, g, relu=True):
    m = a.mul_(g.mean(dim=(2, 3), keepdim=True)).sum(dim=1)
    return m.clamp(min=0) if relu else m


@pytest.mark.parametrize("fn, lost, reason", [
    (_right, None, None),
    (_summed, "weights each channel by the mean of its gradient over the positions", "12 times"),
    (_always_relu, "keeps the negative values when relu=False", "has no negative value"),
    (_relu_before_sum, "applies the ReLU when relu=True (also by default)", "after the sum over channels"),
    (_batch_mean, "gives each example of a batch its own weights", "not over the batch"),
    (_in_place, "leaves the activations and gradients as they were", "in-place"),
])
def test_each_plausible_grad_cam_bug_loses_exactly_its_own_point(fn, lost, reason):
    rows = public_checks("04", "grad_cam_map", {"grad_cam_map": fn}, hidden=True, quiet=True)
    failed = {title: why for title, points, max_points, why in rows if points < max_points}
    assert set(failed) == ({lost} if lost else set()), failed
    if lost:
        assert reason in failed[lost]


def test_grad_cam_probes_have_negative_values_for_the_relu_to_remove():
    for key in ("one", "batch"):
        for example in ch04.reference(key):
            assert (example < 0).any() and (example > 0).any(), key
    a, g = ch04.captured(ch04.DEFAULT_SEED, 1)
    assert (_right(a, g, relu=False) < 0).any()


# --- item 2: a global max-pooling head ---------------------------------------------------------


def _max_pool_net() -> nn.Module:
    """A tiny float64 CNN whose last conv block (layer "3", 14 x 14 on 28-pixel inputs) feeds
    global max pooling and a linear layer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1, stride=2),
                         nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(5, 3)).double().eval()


def test_max_pool_head_keys_are_what_course_lib_computes():
    model, x = _max_pool_net(), torch.rand(2, 3, 28, 28, dtype=torch.float64)
    c = cl.cam.capture(model, x, 1, model[3])
    w, b = model[6].weight.detach()[1], model[6].bias.detach()[1]
    cam_map = torch.einsum("k,nkhw->nhw", w, c.activations)
    grad = cl.grad_cam(model, x, 1, layer="3", upsample=False, relu=False)
    hires = cl.hires_cam(model, x, 1, layer="3", upsample=False, relu=False)
    with torch.no_grad():
        score = model(x)[:, 1]
    assert grad.shape[-2:] == (14, 14)
    torch.testing.assert_close(cam_map, 196 * grad)  # Grad-CAM's weight is still w / (hw)
    assert accepts(ch04.MAX_POOL_HEAD, "answer_gmp_ratio", 196)
    assert not accepts(ch04.MAX_POOL_HEAD, "answer_gmp_ratio", 1)
    # C: HiResCAM sums to the score; A (the mean of CAM's map) and B (its largest value) do not.
    torch.testing.assert_close(hires.sum(dim=(1, 2)), score - b)
    assert ((cam_map.mean(dim=(1, 2)) - (score - b)).abs() > 1e-3).all()
    assert ((cam_map.flatten(1).amax(dim=1) - (score - b)).abs() > 1e-3).all()
    assert accepts(ch04.MAX_POOL_HEAD, "answer_gmp_score", "C")
    # B: HiResCAM is non-zero at no more than K = 5 positions; Grad-CAM almost everywhere.
    assert ((hires != 0).sum(dim=(1, 2)) <= 5).all() and ((grad != 0).sum(dim=(1, 2)) > 150).all()
    assert accepts(ch04.MAX_POOL_HEAD, "answer_gmp_hires", "B")
    with pytest.raises(ValueError, match="global average pooling"):
        cl.cam(model, x, 1, layer="3")  # why the exercise computes CAM's map by hand


# --- item 3: the snippet that keeps its handles -----------------------------------------------


def _clip_negative(module, inputs, out):
    out.register_hook(lambda g: g.clamp(min=0))


def _snippet(model, x, target):
    """The exercise's guided backprop, verbatim."""
    handles = [m.register_forward_hook(_clip_negative)
               for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    x = x.clone().requires_grad_(True)
    score = model(x)[:, target].sum()
    score.backward()
    for h in handles:
        h.remove()
    return x.grad


class _FunctionalReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


def _hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_find_the_leak_keys_hold_after_a_call_that_returns_and_one_that_raises(make_cnn, x):
    net = make_cnn("relu_inplace")
    plain, guided = cl.vanilla_gradient(net, x, 0), cl.guided_backprop(net, x, 0)
    assert (plain - guided).abs().max() > 1e-3  # the two answers can be told apart
    ok = copy.deepcopy(net)
    for p in ok.parameters():
        p.grad = None
    _snippet(ok, x, 0)
    assert _hooks(ok) == 0
    assert all(p.grad is not None for p in ok.parameters() if p.requires_grad)  # line D
    torch.testing.assert_close(cl.vanilla_gradient(ok, x, 0), plain)  # A after a call that returned
    failed = copy.deepcopy(net)
    n_classes = net(x).shape[1]
    with pytest.raises(IndexError):
        _snippet(failed, x, n_classes)
    assert _hooks(failed) == 2
    torch.testing.assert_close(cl.vanilla_gradient(failed, x, 0), guided)  # B after a call that raised
    torch.testing.assert_close(cl.vanilla_gradient(failed, x, 0), guided)  # and at every later call
    torch.manual_seed(0)
    functional = _FunctionalReLU().double().eval()
    xf = x.double()
    torch.testing.assert_close(_snippet(copy.deepcopy(functional), xf, 0), cl.vanilla_gradient(functional, xf, 0))
    assert (cl.guided_backprop(functional, xf, 0) - cl.vanilla_gradient(functional, xf, 0)).abs().max() > 0
    keys = {"answer_after_success": "A", "answer_after_error": "B", "answer_grad_line": "D",
            "answer_functional": "B"}
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


def test_stem_peak_key_the_peak_ignores_the_class_and_the_last_block_ignores_the_tag():
    table = _table_in_the_exercise()
    true_peak, circle_peak = table["features.stem", "true"][3], table["features.stem", "circle"][3]
    assert abs(true_peak - circle_peak) <= 0.1 and min(true_peak, circle_peak) >= 10 * 0.03  # A's first half
    assert table["features.layer3", "true"][1] == 0.0  # A's second half: no true-class mass near the tag
    assert max(table[layer, "true"][3] for layer in ("features.layer2", "features.layer3")) == 0.0  # not C
    assert accepts(ch04.SHORTCUT_LAYERS, "answer_stem_peak", "A")
