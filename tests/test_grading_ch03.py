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
    white, black = norm.normalize(torch.ones(1, 3, 1, 1)), norm.normalize(torch.zeros(1, 3, 1, 1))
    assert torch.equal(white - black, torch.full((1, 3, 1, 1), 2.0))
    assert torch.equal(norm.normalize(torch.full((1, 3, 1, 1), 0.5)), torch.zeros(1, 3, 1, 1))


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
