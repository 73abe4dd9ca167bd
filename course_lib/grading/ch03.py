"""Autograder for exercises/03_integrated_gradients: Integrated Gradients with the trapezoid rule,
what a baseline makes invisible, what the zero baseline is under the ImageNet normalisation,
Shapley values by hand, choosing the number of steps from the completeness gap, and Integrated
Gradients against Shapley values on an interaction.

The function item's ``collect`` step (the student's process) calls ``ig_trapezoid`` on small
untrained float64 models and inputs built here from fixed seeds; its checks (the trusted
process) rebuild them and compare with course_lib's ``integrated_gradients`` with
``method="riemann_trapezoid"``. Each check isolates one idea (completeness on a linear model,
the rule's points and weights, the two ends, a batch), so a lost point says which.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from course_lib.attribution.integrated_gradients import integrated_gradients as _integrated_gradients

from .checks import Fail, Got, Item, assert_close, check, choice_answer, number_answer
from . import material
from .material import linear_model

EXERCISE = "03_integrated_gradients"
PRELOAD = ["captum.attr"]  # imported once in the grading server, so its IntegratedGradients can be guarded


# --- seeded test material ---------------------------------------------------------------------


def tiny_cnn(seed: int, classes: int = 4) -> nn.Module:
    """The shared tiny CNN, pooled to 2 x 2 before its linear layer."""
    return material.tiny_cnn(seed, classes, pool=2)


def images(seed: int, n: int, scale: float = 1.0) -> torch.Tensor:
    """``n`` random float64 3 x 8 x 8 inputs in [-scale, scale]."""
    g = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand((n, 3, 8, 8), generator=g, dtype=torch.float64) - 1)


# --- item 1: ig_trapezoid ---------------------------------------------------------------------

# Each probe: (model, inputs, targets, baseline, n_steps), rebuilt from seeds on both sides.
PROBES = {
    "shape": (lambda: tiny_cnn(0), lambda: images(0, 2), [0, 2], lambda: torch.zeros(2, 3, 8, 8, dtype=torch.float64), 4),
    "linear": (lambda: linear_model(1), lambda: images(1, 1), [2], lambda: images(11, 1, 0.5), 3),
    "cnn": (lambda: tiny_cnn(2), lambda: images(2, 1, 2.0), [1], lambda: images(12, 1, 0.3), 5),
    "ends": (lambda: tiny_cnn(3), lambda: images(3, 1, 2.0), [3], lambda: images(13, 1, 0.3), 2),
    "batch": (lambda: tiny_cnn(4), lambda: images(4, 3, 2.0), [0, 1, 2], lambda: images(14, 3, 0.3), 6),
}


def collect_ig_trapezoid(student) -> dict:
    """Student's process: ig_trapezoid on each probe, and what it left behind."""
    out = {}
    for key, (model, x, target, baseline, n_steps) in PROBES.items():
        out[key] = student.call("ig_trapezoid", model(), x(), target, baseline(), n_steps)
    model, x, b = tiny_cnn(5), images(5, 2), images(15, 2, 0.3)
    given, given_b = x.clone(), b.clone()
    out["clean"] = student.call("ig_trapezoid", model, given, [1, 0], given_b, 3)
    out.update(material.model_flags(model))
    out["clean:inputs_unchanged"] = bool(not given.requires_grad and given.grad is None
                                         and torch.equal(given, x) and torch.equal(given_b, b))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's IG with the trapezoid rule on probe ``key``."""
    model, x, target, baseline, n_steps = PROBES[key]
    return _integrated_gradients(model(), x(), target, baseline=baseline(), n_steps=n_steps,
                                 method="riemann_trapezoid", batch_size=None)


def _compare(got: Got, key: str, what: str, hint: str) -> None:
    want = reference(key)
    assert_close(got.tensor(key, like=want, what=what), want, what, hint=hint)


@check("returns a tensor shaped like the inputs")
def _ig_shape(got: Got) -> None:
    got.tensor("shape", shape=(2, 3, 8, 8), what="ig_trapezoid(model, x) for x of shape (2, 3, 8, 8)")


@check("complete on a linear model: (x - b) * w", points=2)
def _ig_linear(got: Got) -> None:
    _compare(got, "linear", "ig_trapezoid of a linear model with 3 points",
             "a linear model has the same gradient w everywhere, so IG must be (x - b) * w: the "
             "weights of your rule must add up to 1 (1 / (n_steps - 1) each, the two ends halved), "
             "and the result is multiplied by (inputs - baseline)")


@check("the trapezoid's points and weights on a network", points=2)
def _ig_cnn(got: Got) -> None:
    _compare(got, "cnn", "ig_trapezoid of a small CNN with 5 points",
             "the points are alpha_k = k / (n_steps - 1) for k = 0 .. n_steps - 1, both ends included, "
             "on the path b + alpha (x - b); the gradient is of the target's logit")


@check("two points: the mean of the gradients at the baseline and at the input")
def _ig_ends(got: Got) -> None:
    _compare(got, "ends", "ig_trapezoid with n_steps=2",
             "with two points the rule uses only the two ends, each with weight 1/2")


@check("a batch: each example with its own target and baseline", hidden=True)
def _ig_batch(got: Got) -> None:
    _compare(got, "batch", "ig_trapezoid on a batch of 3 examples",
             "example i explains target[i] against baseline[i]: compute the gradient of each "
             "example's own target score")


@check("leaves the model and the inputs as they were", hidden=True)
def _ig_clean(got: Got) -> None:
    got.ok("clean")
    material.check_model_left_alone(got, "left .grad on the model's parameters: take input gradients "
                                         "with torch.autograd.grad (or cl.vanilla_gradient), not score.backward()")
    if not got.flag("clean:inputs_unchanged"):
        raise Fail("changed the inputs or the baseline passed in (values, requires_grad or .grad): "
                   "work on copies")


IG_TRAPEZOID = Item(
    "ig_trapezoid",
    checks=(_ig_shape, _ig_linear, _ig_cnn, _ig_ends, _ig_batch, _ig_clean),
    collect=collect_ig_trapezoid,
    forbidden=tuple(
        [f"{owner}.integrated_gradients" for owner in
         ("course_lib", "course_lib.attribution", "course_lib.attribution.integrated_gradients")]
        + ["course_lib.average_over_baselines", "course_lib.attribution.average_over_baselines",
           "course_lib.gradient_shap", "course_lib.attribution.gradient_shap",
           "captum.attr.IntegratedGradients.attribute"]
    ),
)


# --- item 2: what a baseline makes invisible ------------------------------------------------

BASELINE_BLIND_SPOT = Item(
    "baseline_blind_spot",
    checks=(
        number_answer("answer_black_pixel", 0.0, "a black pixel against the black baseline",
                      "every attribution of this family is (x_i - b_i) times something: what is "
                      "x_i - b_i for a black pixel and a black baseline?", tol=1e-6),
        number_answer("answer_light_factor", 1.6, "x - b of a light grey (0.8) channel against black, in model units",
                      "the model sees (p - 0.5) / 0.5, not p: compute it for p = 0.8 and for p = 0, and "
                      "subtract", tol=1e-6),
        choice_answer("answer_zero_tensor", "B", ("A", "B", "C", "D"),
                      "which pixels torch.zeros_like(x) cannot credit",
                      "the all-zero tensor is an image too: which pixel value p does the model's "
                      "normalisation (p - 0.5) / 0.5 send to 0?"),
    ),
)


# --- item 3: the zero baseline under the ImageNet normalisation ------------------------------

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

ZERO_UNDER_IMAGENET = Item(
    "zero_under_imagenet",
    checks=(
        choice_answer("answer_zero_colour", "C", ("A", "B", "C", "D"),
                      "which image torch.zeros_like(x) is under the ImageNet normalisation",
                      "solve (p - m_c) / s_c = 0 for the pixel value p of each channel: mid-grey is "
                      "zero only when the mean is 0.5"),
        number_answer("answer_black_red", (0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
                      "the red channel of black, in the model's input units",
                      "put p = 0 into (p - m) / s with the red channel's m = 0.485 and s = 0.229; "
                      "it is neither 0 nor -1", tol=0.01),
    ),
)


# --- item 4: Shapley values by hand -----------------------------------------------------------

SHAPLEY_BY_HAND = Item(
    "shapley_by_hand",
    checks=(
        number_answer("answer_phi_1", 1 / 3, "the Shapley value of x1 for max(x1, x2, x3)",
                      "x1 raises the max only when it comes first: in which orders of the three "
                      "players does that happen, and by how much?", tol=0.01),
        number_answer("answer_phi_2", 5 / 6, "the Shapley value of x2",
                      "x2 raises the max when it comes first (by 2) or second after x1 (by 1); "
                      "weigh each case by the share of the 6 orders in which it happens", tol=0.01),
        number_answer("answer_phi_3", 17 / 6, "the Shapley value of x3",
                      "the three values add up to max(1, 2, 4) - max(0, 0, 0) (efficiency)", tol=0.01),
    ),
)


# --- item 5: choosing n_steps from the completeness gap -------------------------------------

CHOOSE_N_STEPS = Item(
    "choose_n_steps",
    checks=(
        number_answer("answer_n_steps", 32, "smallest Gauss-Legendre n_steps with a gap below 1 percent",
                      "run integrated_gradients with return_delta=True for each n_steps in the list and "
                      "divide |delta| by |f(x) - f(b)|; the answer is one of 2, 4, 8, 16, 32, 64", tol=0.5),
        choice_answer("answer_faster_rule", "A", ("A", "B", "C"), "which rule needs fewer steps here",
                      "compare the two rules' gaps at the same n_steps, from 16 steps on"),
    ),
)


# --- item 6: Integrated Gradients against Shapley values on an interaction -------------------

IG_VS_SHAPLEY = Item(
    "ig_vs_shapley",
    checks=(
        number_answer("answer_ig_x1", 1.0, "IG of x1 for min(x1, x2)",
                      "on the path (alpha, 3 alpha) the min is x1 for every alpha > 0: its gradient "
                      "is (1, 0) all the way", tol=1e-6),
        number_answer("answer_ig_x2", 0.0, "IG of x2 for min(x1, x2)",
                      "on the path (alpha, 3 alpha), does x2 ever decide the min?", tol=1e-6),
        number_answer("answer_shapley_x1", 0.5, "the Shapley value of x1 for min(x1, x2)",
                      "list v of the four coalitions: v({x1}) = min(1, 0), v({x2}) = min(0, 3)", tol=1e-6),
        number_answer("answer_shapley_x2", 0.5, "the Shapley value of x2 for min(x1, x2)",
                      "the two players are symmetric in this game: v({x1}) = v({x2})", tol=1e-6),
        choice_answer("answer_why", "B", ("A", "B", "C", "D"), "why the two splits differ",
                      "both splits are complete and both are exact here; ask which inputs each method "
                      "ever evaluates"),
    ),
)

ITEMS = (IG_TRAPEZOID, BASELINE_BLIND_SPOT, ZERO_UNDER_IMAGENET, SHAPLEY_BY_HAND, CHOOSE_N_STEPS, IG_VS_SHAPLEY)
