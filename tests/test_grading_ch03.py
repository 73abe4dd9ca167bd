"""Chapter 03's answer keys recomputed from the course's code and data, so a change of a model,
the dataset or course_lib cannot leave a stale key behind; and the function item's checks
fail the two plausible wrong rules (Captum's trapezoid weights, the midpoint rule)."""
from __future__ import annotations

import pytest
import torch

import course_lib as cl
from course_lib.grading import ch03, public_checks

pytestmark = pytest.mark.usefixtures("deterministic")

STEPS = (2, 4, 8, 16, 32, 64)


def _relative_gaps(method: str) -> dict[int, float]:
    shapes = cl.load_model("shapes_cnn")
    image = shapes.preprocess(cl.load_dataset("shapes", n=6, seed=900_000).batch.images[5:6])
    with torch.no_grad():
        predicted = shapes.model(image).argmax(dim=1)
    base = cl.pixel_baseline("black", image, cl.Normalization(0.5, 0.5))
    with torch.no_grad():
        change = float(shapes.model(image)[0, predicted] - shapes.model(base)[0, predicted])
    out = {}
    for n in STEPS:
        _, d = cl.integrated_gradients(shapes.model, image, predicted, baseline=base, n_steps=n,
                                       method=method, return_delta=True)
        out[n] = abs(float(d)) / abs(change)
    return out


def _key(item, name):
    return next(c for c in item.checks if name in c.answers)


def test_choose_n_steps_keys_hold_with_a_margin():
    gl, right = _relative_gaps("gausslegendre"), _relative_gaps("riemann_right")
    smallest = min(n for n in STEPS if gl[n] < 0.01)
    assert smallest == 32
    assert gl[16] > 0.012 and gl[32] < 0.005  # far from the 1 percent line on both sides
    assert all(g > 0.012 for g in right.values())  # the right Riemann sum never gets there: "A"
    ns = {"answer_n_steps": smallest, "answer_faster_rule": "A"}
    rows = public_checks("03", "choose_n_steps", ns, hidden=True, quiet=True)
    assert all(points == max_points for _title, points, max_points, _why in rows)


def test_shapley_and_ig_keys_are_what_course_lib_computes():
    point = torch.tensor([1.0, 2.0, 4.0])
    worth = torch.where(cl.all_coalitions(3), point, torch.zeros(3)).amax(dim=1)
    phi = cl.shapley_from_values(worth).tolist()
    assert phi == pytest.approx([1 / 3, 5 / 6, 17 / 6])

    class Min(torch.nn.Module):
        def forward(self, v):
            return v.amin(dim=1, keepdim=True)

    pair = torch.tensor([[1.0, 3.0]])
    ig = cl.integrated_gradients(Min().eval(), pair, 0, n_steps=64)[0].tolist()
    assert ig == pytest.approx([1.0, 0.0])
    worth2 = Min()(torch.where(cl.all_coalitions(2), pair, torch.zeros(1, 2)))[:, 0]
    assert cl.shapley_from_values(worth2).tolist() == pytest.approx([0.5, 0.5])


def test_baseline_keys_follow_from_the_normalisation():
    norm = cl.Normalization(0.5, 0.5)
    light, black = norm.normalize(torch.full((1, 3, 1, 1), 0.8)), norm.normalize(torch.zeros(1, 3, 1, 1))
    torch.testing.assert_close(light - black, torch.full((1, 3, 1, 1), 1.6))
    assert torch.equal(norm.normalize(torch.full((1, 3, 1, 1), 0.5)), torch.zeros(1, 3, 1, 1))
    answers = {"answer_black_pixel": 0.0, "answer_light_factor": 1.6, "answer_zero_tensor": "B"}
    rows = public_checks("03", "baseline_blind_spot", answers, hidden=True, quiet=True)
    assert all(points == max_points for _title, points, max_points, _why in rows)


def test_imagenet_zero_keys_are_what_the_imagenet_normalisation_gives():
    imagenet = cl.Normalization(cl.IMAGENET_MEAN, ch03.IMAGENET_STD)
    zero_in_pixels = imagenet.pixels(torch.zeros(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(zero_in_pixels, torch.tensor(cl.IMAGENET_MEAN, dtype=zero_in_pixels.dtype))  # "C"
    black_red = float(imagenet.normalize(torch.zeros(1, 3, 1, 1))[0, 0, 0, 0])
    answers = {"answer_zero_colour": "C", "answer_black_red": black_red}
    rows = public_checks("03", "zero_under_imagenet", answers, hidden=True, quiet=True)
    assert all(points == max_points for _title, points, max_points, _why in rows)


@pytest.mark.parametrize("item, answers, lost, reason", [
    # The chapter's own model: zero is mid-grey there, not under ImageNet's statistics.
    ("zero_under_imagenet", {"answer_zero_colour": "B", "answer_black_red": -2.1179}, "answer_zero_colour",
     "solve (p - m_c) / s_c = 0"),
    # Black read in pixel units (0) or with chapter 03's normalisation (-1).
    ("zero_under_imagenet", {"answer_zero_colour": "C", "answer_black_red": -1.0}, "answer_black_red",
     "neither 0 nor -1"),
    # The factor in pixel units (0.8 - 0) instead of the model's units.
    ("baseline_blind_spot", {"answer_black_pixel": 0.0, "answer_light_factor": 0.8, "answer_zero_tensor": "B"},
     "answer_light_factor", "not p"),
    # The zero tensor read as black.
    ("baseline_blind_spot", {"answer_black_pixel": 0.0, "answer_light_factor": 1.6, "answer_zero_tensor": "A"},
     "answer_zero_tensor", "which pixel value p"),
    # Shapley values split equally (symmetry misread), or IG taken for the Shapley value.
    ("shapley_by_hand", {"answer_phi_1": 4 / 3, "answer_phi_2": 4 / 3, "answer_phi_3": 4 / 3}, "answer_phi_1",
     "comes first"),
    ("ig_vs_shapley", {"answer_ig_x1": 1.0, "answer_ig_x2": 0.0, "answer_shapley_x1": 1.0, "answer_shapley_x2": 0.0,
                       "answer_why": "D"}, "answer_shapley_x1", "v({x1})"),
])
def test_plausible_wrong_answers_lose_their_points_with_a_useful_reason(item, answers, lost, reason):
    rows = public_checks("03", item, answers, hidden=True, quiet=True)
    check = _key(next(i for i in ch03.ITEMS if i.name == item), lost)
    failed = {title: why for title, points, max_points, why in rows if points < max_points}
    assert check.name in failed and reason in failed[check.name]


def _trapezoid_like(weights_of, points_of):
    def ig(model, inputs, target, baseline, n_steps):
        x, b = inputs.detach(), baseline.detach()
        total = torch.zeros_like(x)
        for a, w in zip(points_of(n_steps), weights_of(n_steps)):
            total += w * cl.vanilla_gradient(model, b + a * (x - b), target)
        return total * (x - b)

    return ig


def _captum_weights(n):
    w = [1.0 / n] * n
    w[0] /= 2
    w[-1] /= 2
    return w


@pytest.mark.parametrize("wrong", ["captum_trapezoid_weights", "midpoint_rule"])
def test_ig_trapezoid_checks_fail_plausible_wrong_rules(wrong):
    if wrong == "captum_trapezoid_weights":
        fn = _trapezoid_like(_captum_weights, lambda n: [k / (n - 1) for k in range(n)])
    else:
        fn = _trapezoid_like(lambda n: [1.0 / n] * n, lambda n: [(k + 0.5) / n for k in range(n)])
    rows = public_checks("03", "ig_trapezoid", {"ig_trapezoid": fn}, hidden=True, quiet=True)
    failed = {title for title, points, max_points, _why in rows if points < max_points}
    assert "the trapezoid's points and weights on a network" in failed
    assert "two points: the mean of the gradients at the baseline and at the input" in failed
    assert ch03.IG_TRAPEZOID.name == "ig_trapezoid"
