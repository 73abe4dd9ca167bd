"""Autograder for exercises/02_gradient_saliency: what a reduction keeps, the local bias of gradient
x input, a SmoothGrad bug, SmoothGrad written from gradients, choosing the noise level.

Each function item has a ``collect`` step, run in the student's process, that calls the
student's function on small untrained float64 models and inputs built here from fixed seeds
and returns what it gave; its checks, run in the grader's trusted process, rebuild the same
models and compare with course_lib's reference. Grading is exact, fast and offline. Each
check isolates one idea (the gradient, the averaging, the noise scale, the target), so a
lost point says which.
"""
from __future__ import annotations

import functools

import torch

from course_lib.attribution.saliency import vanilla_gradient as _vanilla_gradient
from course_lib.attribution.smoothgrad import smoothgrad as _smoothgrad

from .checks import (Check, Fail, Got, Item, assert_close, check, choice_answer, number_answer,
                     unit_scale)
from .material import check_model_left_alone, linear_model, model_flags, tiny_cnn

EXERCISE = "02_gradient_saliency"
PRELOAD = ["captum.attr"]  # imported once in the grading server, so its NoiseTunnel can be guarded


# --- seeded test material ---------------------------------------------------------------------


def images(seed: int, n: int, scales=None) -> torch.Tensor:
    """``n`` random float64 3 x 8 x 8 images; example i is scaled by scales[i] (different ranges).

    3 x 8 x 8 = 192 values, a multiple of 16: torch then draws the same normals whether the
    noise comes in one (n_samples, C, H, W) call, as the exercise says, or one copy at a time,
    as the reference does, so both ways of writing it score.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 3, 8, 8), generator=g, dtype=torch.float64)
    if scales is not None:
        x = x * torch.tensor(scales, dtype=torch.float64).view(n, 1, 1, 1) - 0.5
    return x


# --- item 1: predict what a reduction keeps ---------------------------------------------------

PREDICT_REDUCTION = Item(
    "predict_reduction",
    checks=(
        choice_answer("answer_ranks_p_first", "B", ("A", "B", "C", "D"),
                      "which reductions rank pixel P above pixel Q",
                      "work out each reduction for both pixels: two take absolute values before "
                      "combining the channels, one does not"),
        number_answer("answer_kept_p", 1 / 9, "share of P's magnitude kept by the signed sum",
                      "|R + G + B| divided by |R| + |G| + |B| for pixel P", tol=2e-3),
        number_answer("answer_brighten_q", 0.45, "score change per unit of brightening Q",
                      "brightening adds the same step to R, G and B: to first order the score "
                      "changes by the sum of the three channel gradients times the step", tol=1e-3),
    ),
)


# --- item 2: the local bias -------------------------------------------------------------------


def _check_complete_point(got: Got) -> None:
    x1 = got.number("answer_complete_x1")
    # f(x1, 0) = 2 relu(x1 - 1) + 0.5: for x1 <= 1 the unit is off, the gradient is 0 and
    # f(x) - f(0) = 0.5 - 0.5 = 0; for x1 > 1, gxi = 2 x1 but f(x) - f(0) = 2 x1 - 2.
    if x1 > 1 + 1e-9:
        raise Fail(f"`answer_complete_x1` = {x1:g}: at x = ({x1:g}, 0) the sum of gradient x input "
                   f"is {2 * x1:g} but f(x) - f(0) is {2 * x1 - 2:g}. Look for a point in the same "
                   "linear region as the origin")


_complete_point = Check("a point where gradient x input is complete", 1, _check_complete_point,
                        hidden=True, answers=("answer_complete_x1",),
                        preview=lambda got: got.number("answer_complete_x1"))

LOCAL_BIAS = Item(
    "local_bias",
    checks=(
        number_answer("answer_gxi_sum", 4.0, "sum of gradient x input at (3, 1)",
                      "at x = (3, 1) the unit is on, so the gradient is (2, -2); multiply by x "
                      "and add", tol=1e-6),
        number_answer("answer_change", 2.0, "f(x) - f(0) at (3, 1)",
                      "evaluate f at (3, 1) and at (0, 0); relu(z) = max(z, 0)", tol=1e-6),
        choice_answer("answer_why", "B", ("A", "B", "C", "D"), "why the two differ",
                      "write f near x as gradient . x + a constant, and compare that constant with "
                      "f(0)"),
        _complete_point,
    ),
)


# --- item 3: find the bug ---------------------------------------------------------------------

FIND_THE_BUG = Item(
    "find_the_bug",
    checks=(
        choice_answer("answer_bug_one_image", "C", ("A", "B", "C", "D", "E"),
                      "the line that changes the question for one image",
                      "SmoothGrad explains one class for every noisy copy; which line decides the "
                      "class, and on what input?"),
        choice_answer("answer_effect", "A", ("A", "B", "C", "D"), "what that bug does at high noise",
                      "at high noise many copies are predicted as other classes: whose gradient "
                      "is then averaged?"),
        choice_answer("answer_bug_batch", "A", ("A", "B", "C", "D", "E"),
                      "the line that is wrong only for a batch",
                      "the paper's noise level is relative to the range of *each* image"),
    ),
)


# --- item 4: SmoothGrad ----------------------------------------------------------------------

# Each probe: (model, inputs, keyword arguments). Models and inputs are rebuilt from seeds on
# both sides, so the student's process and the checks see the same numbers.
TARGET_SEED = 18  # linear model whose clean class loses 4 of the 8 noisy copies (pinned by a test)
PROBES = {
    "shape": (lambda: tiny_cnn(0), lambda: images(0, 2),
              dict(target=[0, 2], n_samples=4, noise_level=0.1, seed=0)),
    "no_noise": (lambda: tiny_cnn(1), lambda: images(1, 2),
                 dict(target=[1, 3], n_samples=1, noise_level=0.0, seed=0)),
    "average": (lambda: linear_model(2), lambda: images(2, 1),
                dict(target=2, n_samples=5, noise_level=0.3, seed=1)),
    "one": (lambda: tiny_cnn(3), lambda: images(3, 1),
            dict(target=1, n_samples=6, noise_level=0.2, seed=7)),
    "batch": (lambda: tiny_cnn(4), lambda: images(4, 3, scales=[1.0, 4.0, 0.25]),
              dict(target=[0, 1, 2], n_samples=5, noise_level=0.15, seed=3)),
    "target": (lambda: linear_model(TARGET_SEED), lambda: images(TARGET_SEED, 1),
               dict(target=None, n_samples=8, noise_level=0.5, seed=0)),
}


def collect_smoothgrad(student) -> dict:
    """Student's process: the student's smoothgrad on each probe, and what it left behind."""
    out = {key: student.call("smoothgrad", model(), x(), **kwargs)
           for key, (model, x, kwargs) in PROBES.items()}
    model, x = tiny_cnn(6), images(6, 2)
    given = x.clone()
    out["clean"] = student.call("smoothgrad", model, given, target=0, n_samples=3, noise_level=0.1, seed=0)
    out.update(model_flags(model))
    out["clean:input_unchanged"] = bool(not given.requires_grad and given.grad is None
                                        and torch.equal(given, x))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's SmoothGrad on probe ``key``, all noise drawn in one chunk."""
    model, x, kwargs = PROBES[key]
    return _smoothgrad(model(), x(), batch_size=None, **kwargs)


@functools.lru_cache(maxsize=None)
def reference_gradient(key: str) -> torch.Tensor:
    """Trusted process: the plain input gradient on probe ``key``."""
    model, x, kwargs = PROBES[key]
    return _vanilla_gradient(model(), x(), kwargs["target"])


NOISE_HINT = ("check sigma = noise_level * (max - min) of each example, and draw the noise "
              "exactly as the instructions say (seeded generator, shape (n_samples, C, H, W), "
              "float32, then .to(inputs))")


@check("returns a tensor shaped like the input")
def _sg_shape(got: Got) -> None:
    got.tensor("shape", shape=(2, 3, 8, 8), what="smoothgrad(model, x) for x of shape (2, 3, 8, 8)")


@check("noise_level=0 gives the plain gradient")
def _sg_no_noise(got: Got) -> None:
    # One sample and up to scale: this check is about the gradient alone, not the averaging.
    want = reference_gradient("no_noise")
    what = "smoothgrad with noise_level=0, up to scale"
    assert_close(unit_scale(got.tensor("no_noise", like=want, what=what)), unit_scale(want), what,
                 hint="without noise every copy is the clean input, so this is d score[target] / "
                      "d input: check the gradient itself")


@check("averages the gradients of the copies")
def _sg_average(got: Got) -> None:
    want = reference_gradient("average")
    assert_close(got.tensor("average", like=want, what="smoothgrad of a linear model"), want,
                 "smoothgrad of a linear model",
                 hint="a linear model has the same gradient at every copy, so their mean is that "
                      "gradient: sum over the copies and divide by n_samples")


# The other checks compare up to an overall scale, which the averaging check grades: one bug,
# one lost point.

@functools.lru_cache(maxsize=None)
def reference_mean_abs(key: str) -> torch.Tensor:
    """Trusted process: the mean of |gradient| over the same noisy copies (Captum's default)."""
    model_fn, x_fn, kwargs = PROBES[key]
    model, x = model_fn(), x_fn()
    flat = x.flatten(1)
    sigma = kwargs["noise_level"] * (flat.amax(dim=1) - flat.amin(dim=1))
    noise = torch.randn((kwargs["n_samples"], *x.shape[1:]),
                        generator=torch.Generator().manual_seed(kwargs["seed"])).to(x)
    grads = [_vanilla_gradient(model, x + sigma.view(-1, 1, 1, 1) * e, kwargs["target"]).abs()
             for e in noise]
    return torch.stack(grads).mean(dim=0)


def _close_up_to_scale(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((unit_scale(a) - unit_scale(b)).abs().max() <= 1e-6)


@check("the copies are noisy: on a nonlinear model the map is not the plain gradient")
def _sg_noisy(got: Got) -> None:
    want = reference("one")
    given = got.tensor("one", like=want, what="smoothgrad(n_samples=6, noise_level=0.2, seed=7)")
    if _close_up_to_scale(given, reference_gradient("one")):
        raise Fail("with noise_level=0.2 your map equals the plain gradient of the clean input: "
                   "each copy must be the input plus noise, and the model must see that copy")


@check("noise: each copy is x + noise_level * (max - min) * noise[i]", hidden=True)
def _sg_one(got: Got) -> None:
    want = reference("one")
    what = "smoothgrad(n_samples=6, noise_level=0.2, seed=7), up to scale"
    given = got.tensor("one", like=want, what=what)
    if _close_up_to_scale(given, reference_mean_abs("one")):
        raise Fail("your map is the mean of |gradient| over the copies (what Captum's Saliency "
                   "gives by default): SmoothGrad averages the signed gradients")
    assert_close(unit_scale(given), unit_scale(want), what, hint=NOISE_HINT)


@check("a batch: each example's noise scaled by its own range", hidden=True)
def _sg_batch(got: Got) -> None:
    want = reference("batch")
    what = "smoothgrad on a batch of 3 examples with ranges 1, 4 and 0.25, up to scale"
    assert_close(unit_scale(got.tensor("batch", like=want, what=what)), unit_scale(want), what,
                 hint="sigma is computed per example (its own max - min, not the whole batch's), "
                      "and every example gets the same n_samples noise draws")


@check("target=None explains the clean input's predicted class", hidden=True)
def _sg_target(got: Got) -> None:
    # A linear model: whatever the noise, the right answer is the clean class's weights, so a
    # noise bug cannot fail this check. With noise_level 0.5 several copies are predicted as
    # another class.
    want = reference("target")
    what = "smoothgrad(target=None, noise_level=0.5) of a linear model, up to scale"
    assert_close(unit_scale(got.tensor("target", like=want, what=what)), unit_scale(want), what,
                 hint="decide the target once, on the clean input: with strong noise some copies "
                      "are predicted as another class, and SmoothGrad must still explain the "
                      "clean prediction")


@check("leaves the model and the input as they were", hidden=True)
def _sg_clean(got: Got) -> None:
    got.ok("clean")
    check_model_left_alone(got, "left gradients in the model's parameters (.grad is set): take input "
                                "gradients with torch.autograd.grad(score, x) instead of score.backward()")
    if not got.flag("clean:input_unchanged"):
        raise Fail("changed the input tensor passed in (its values, requires_grad or .grad): "
                   "work on a copy, e.g. x = inputs.detach().clone()")


SMOOTHGRAD = Item(
    "smoothgrad",
    checks=(_sg_shape, _sg_no_noise, _sg_average, _sg_noisy, _sg_one, _sg_batch, _sg_target,
            _sg_clean),
    collect=collect_smoothgrad,
    forbidden=tuple(
        [f"{owner}.{fn}" for owner in ("course_lib", "course_lib.attribution",
                                       "course_lib.attribution.smoothgrad")
         for fn in ("smoothgrad", "smoothgrad_squared", "vargrad", "noise_tunnel")]
        + ["captum.attr.NoiseTunnel.attribute"]
    ),
)


# --- item 5: choose the noise level ----------------------------------------------------------


def _check_noise(got: Got) -> None:
    level = got.number("answer_noise")
    # 0.1 (2 % of copies misclassified, the most mass on the object) and 0.05 (none) are both
    # defensible; 0.2 scores higher but a third of its copies are other classes to the model.
    if not any(abs(level - ok) < 1e-9 for ok in (0.05, 0.1)):
        raise Fail(f"`answer_noise` = {level:g} is not a good choice: look for the most mass on the "
                   "object among the levels at which the noisy copies are still the same image "
                   "to the model")


_noise_choice = Check("the noise level for this model's evidence", 1, _check_noise, hidden=True,
                      preview=lambda got: got.number("answer_noise"), answers=("answer_noise",))

CHOOSE_NOISE = Item(
    "choose_noise",
    checks=(
        _noise_choice,
        choice_answer("answer_fix", "B", ("A", "B", "C", "D"), "a SmoothGrad map noisier than vanilla",
                      "the speckle of a signed average is Monte Carlo error, which shrinks like "
                      "1 / sqrt(n); magnitudes cannot cancel"),
    ),
)

ITEMS = (PREDICT_REDUCTION, LOCAL_BIAS, FIND_THE_BUG, SMOOTHGRAD, CHOOSE_NOISE)
