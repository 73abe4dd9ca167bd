"""Autograder for exercises/02_gradient_saliency: channel reductions, gradient x input, SmoothGrad.

Function items are compared with course_lib's reference on small untrained float64 models
built here from fixed seeds, so grading is exact, fast and offline. Each check isolates one
idea (the gradient, the averaging, the noise scale, the target), so a lost point says which.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from course_lib.attribution.saliency import reduce_channels as _reduce_channels
from course_lib.attribution.saliency import vanilla_gradient as _vanilla_gradient
from course_lib.attribution.smoothgrad import smoothgrad as _ref_smoothgrad

from .checks import (Fail, Item, assert_close, assert_tensor_like, call, check, choice, number,
                     student_answer, student_function)
from .sandbox import reference

EXERCISE = "02_gradient_saliency"
PRELOAD = ["captum.attr"]  # imported once in the grading server, so its NoiseTunnel can be guarded

ref_reduce = reference(_reduce_channels)
ref_gradient = reference(_vanilla_gradient)


def ref_smoothgrad(model, x, target, n_samples, noise_level, seed):
    """The reference with all noise drawn in one chunk, as the exercise tells students to."""
    return reference(_ref_smoothgrad)(model, x, target, n_samples=n_samples, noise_level=noise_level,
                                  seed=seed, batch_size=None)


# --- seeded test material ---------------------------------------------------------------------


def tiny_cnn(seed: int, classes: int = 4) -> nn.Module:
    """A small untrained float64 CNN in eval mode, its weights drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.Softplus(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes),
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model.eval()


def linear_model(seed: int, classes: int = 4) -> nn.Module:
    """A linear float64 classifier on 3 x 8 x 8 images: its input gradient is the same everywhere."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model.eval()


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


# --- item 1: reduce_channels -----------------------------------------------------------------


def _reduction_check(how: str, meaning: str, hint: str):
    @check(f"{how}: {meaning}")
    def run(ns: Mapping[str, Any]) -> None:
        fn = student_function(ns, "reduce_channels")
        attr = torch.randn((2, 3, 4, 5), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        given = attr.clone()
        got = call(fn, given, how)
        assert_close(got, ref_reduce(attr, how), f"reduce_channels(attr, {how!r})",
                     hint=hint)
        if not torch.equal(given, attr):
            raise Fail("changed the attributions passed in (an in-place abs_?): return a new tensor")

    return run


@check("an unknown `how` raises ValueError")
def _reduce_unknown(ns: Mapping[str, Any]) -> None:
    fn = student_function(ns, "reduce_channels")
    attr = torch.randn((1, 3, 2, 2), dtype=torch.float64)
    try:
        call(fn, attr, "mean_of_squares")
    except ValueError:
        return
    except Fail:
        raise
    except Exception as exc:
        raise Fail(f"reduce_channels(attr, 'mean_of_squares') raised {type(exc).__name__}, "
                   f"expected ValueError")
    raise Fail("reduce_channels(attr, 'mean_of_squares') returned a value: raise ValueError "
               "so a typo in `how` cannot pass silently")


REDUCE_CHANNELS = Item(
    "reduce_channels",
    (
        _reduction_check("max_abs", "largest |value| over channels",
                         "take absolute values, then the maximum over dim=1 (the channels)"),
        _reduction_check("sum_abs", "sum of |values| over channels",
                         "take absolute values, then the sum over dim=1 (the channels)"),
        _reduction_check("signed", "plain sum over channels",
                         "sum over dim=1 (the channels) without absolute values"),
        _reduce_unknown,
    ),
    forbidden=("course_lib.reduce_channels", "course_lib.attribution.reduce_channels",
               "course_lib.attribution.saliency.reduce_channels"),
)


# --- item 2: reductions by hand --------------------------------------------------------------


def _numeric_check(name: str, expected: float, title: str, hint: str, tol: float = 1e-6):
    @check(title)
    def run(ns: Mapping[str, Any]) -> None:
        value = number(student_answer(ns, name), name)
        if abs(value - expected) > tol:
            raise Fail(f"`{name}` = {value:g} is not right: {hint}")

    return run


def _choice_check(name: str, expected: str, options: tuple[str, ...], title: str, hint: str):
    @check(title)
    def run(ns: Mapping[str, Any]) -> None:
        value = student_answer(ns, name)
        given = choice(value).strip("'\"").upper()
        if given not in {o.upper() for o in options}:
            raise Fail(f"`{name}` = {value!r} is not one of {', '.join(map(repr, options))}")
        if given != expected.upper():
            raise Fail(f"`{name}` = {value!r} is not right: {hint}")

    return run


REDUCTIONS_BY_HAND = Item(
    "reductions_by_hand",
    (
        _numeric_check("answer_max_abs", 0.5, "max_abs of (+0.4, -0.5, +0.2)",
                       "take the largest absolute value over the three channels"),
        _numeric_check("answer_sum_abs", 1.1, "sum_abs of (+0.4, -0.5, +0.2)",
                       "add the absolute values of the three channels"),
        _numeric_check("answer_brighter", 0.1, "score change per unit of brightening",
                       "brightening adds the same small step to R, G and B; to first order the "
                       "score changes by the sum of (gradient x step) over the three channels"),
        _choice_check("answer_keeps_sign", "signed", ("max_abs", "sum_abs", "signed"),
                      "which reduction keeps the sign",
                      "two of the reductions take absolute values first"),
    ),
)


# --- item 3: gradient x input at a zero input ------------------------------------------------

GRADIENT_X_INPUT_ZERO = Item(
    "gradient_x_input_zero",
    (
        _numeric_check("answer_zero_pixel", 0.5, "pixel value with zero gradient x input",
                       "gradient x input is zero where the model's input is zero, and the model "
                       "sees (p - 0.5) / 0.5, not the pixel value p"),
        _numeric_check("answer_black_factor", -1.0, "gradient x input of a black pixel",
                       "the model sees a black pixel (p = 0) as (0 - 0.5) / 0.5"),
    ),
)


# --- item 4: SmoothGrad ----------------------------------------------------------------------

NOISE_HINT = ("check sigma = noise_level * (max - min) of each example, and draw the noise "
              "exactly as the instructions say (seeded generator, shape (n_samples, C, H, W), "
              "float32, then .to(inputs))")


def _student_sg(ns):
    return student_function(ns, "smoothgrad")


def _unit(t):
    """``t`` divided by its largest |value|: the batch and target checks ignore the overall
    scale, which the averaging check already grades, so one bug costs one point."""
    if not isinstance(t, torch.Tensor):
        return t  # assert_close reports the wrong type
    return t.detach().double() / t.detach().double().abs().max()


@check("returns a tensor shaped like the input")
def _sg_shape(ns):
    x = images(0, 2)
    got = call(_student_sg(ns), tiny_cnn(0), x.clone(), target=[0, 2], n_samples=4,
               noise_level=0.1, seed=0)
    assert_tensor_like(got, x, "smoothgrad(model, x) for x of shape (2, 3, 8, 8)")


@check("noise_level=0 gives the plain gradient")
def _sg_no_noise(ns):
    model, x = tiny_cnn(1), images(1, 2)
    # One sample: this check is about the gradient alone, not the averaging.
    got = call(_student_sg(ns), model, x.clone(), target=[1, 3], n_samples=1, noise_level=0.0, seed=0)
    assert_close(got, ref_gradient(model, x, [1, 3]), "smoothgrad with noise_level=0",
                 hint="without noise every copy is the clean input, so this is d score[target] / "
                      "d input: check the gradient itself")


@check("averages the gradients of the copies")
def _sg_average(ns):
    model, x = linear_model(2), images(2, 1)
    got = call(_student_sg(ns), model, x.clone(), target=2, n_samples=5, noise_level=0.3, seed=1)
    assert_close(got, ref_gradient(model, x, 2), "smoothgrad of a linear model",
                 hint="a linear model has the same gradient at every copy, so their mean is that "
                      "gradient: sum over the copies and divide by n_samples")


@check("matches the reference on one example")
def _sg_one(ns):
    model, x = tiny_cnn(3), images(3, 1)
    got = call(_student_sg(ns), model, x.clone(), target=1, n_samples=6, noise_level=0.2, seed=7)
    assert_close(got, ref_smoothgrad(model, x, 1, 6, 0.2, 7), "smoothgrad(n_samples=6, "
                 "noise_level=0.2, seed=7)", hint=NOISE_HINT)


@check("a batch: each example's noise scaled by its own range")
def _sg_batch(ns):
    model, x = tiny_cnn(4), images(4, 3, scales=[1.0, 4.0, 0.25])
    got = call(_student_sg(ns), model, x.clone(), target=[0, 1, 2], n_samples=5, noise_level=0.15, seed=3)
    assert_close(_unit(got), _unit(ref_smoothgrad(model, x, [0, 1, 2], 5, 0.15, 3)),
                 "smoothgrad on a batch of 3 examples with ranges 1, 4 and 0.25, up to scale",
                 hint="sigma is computed per example (its own max - min, not the whole batch's), "
                      "and every example gets the same n_samples noise draws")


@check("target=None explains the clean input's predicted class")
def _sg_target(ns):
    # Seed 19 and noise level 0.3: 4 of the 8 noisy copies are predicted as another class.
    model, x = tiny_cnn(19), images(19, 1)
    got = call(_student_sg(ns), model, x.clone(), target=None, n_samples=8, noise_level=0.3, seed=0)
    assert_close(_unit(got), _unit(ref_smoothgrad(model, x, None, 8, 0.3, 0)),
                 "smoothgrad(target=None, noise_level=0.3), up to scale",
                 hint="decide the target once, on the clean input: with strong noise some copies "
                      "are predicted as another class, and SmoothGrad must still explain the "
                      "clean prediction")


@check("leaves the model and the input as they were")
def _sg_clean(ns):
    model, x = tiny_cnn(6), images(6, 2)
    given = x.clone()
    call(_student_sg(ns), model, given, target=0, n_samples=3, noise_level=0.1, seed=0)
    if any(p.grad is not None for p in model.parameters()):
        raise Fail("left gradients in the model's parameters (.grad is set): take input gradients "
                   "with torch.autograd.grad(score, x) instead of score.backward()")
    if not all(p.requires_grad for p in model.parameters()):
        raise Fail("turned off requires_grad on the model's parameters and left it off")
    if model.training:
        raise Fail("left the model in training mode")
    if given.requires_grad or given.grad is not None or not torch.equal(given, x):
        raise Fail("changed the input tensor passed in (its values, requires_grad or .grad): "
                   "work on a copy, e.g. x = inputs.detach().clone()")


SMOOTHGRAD = Item(
    "smoothgrad",
    (_sg_shape, _sg_no_noise, _sg_average, _sg_one, _sg_batch, _sg_target, _sg_clean),
    forbidden=tuple(
        [f"{owner}.{fn}" for owner in ("course_lib", "course_lib.attribution",
                                       "course_lib.attribution.smoothgrad")
         for fn in ("smoothgrad", "smoothgrad_squared", "vargrad", "noise_tunnel")]
        + ["captum.attr.NoiseTunnel.attribute"]
    ),
)


# --- item 5: noise level and sample count ----------------------------------------------------

NOISE_AND_SAMPLES = Item(
    "noise_and_samples",
    (
        _choice_check("answer_noise_level", "B", ("A", "B", "C", "D"), "a larger noise level",
                      "SmoothGrad averages the gradient over a neighbourhood of the input whose "
                      "size is set by the noise level"),
        _choice_check("answer_samples", "C", ("A", "B", "C", "D"), "more samples",
                      "n_samples decides how well the average is estimated, not what is averaged"),
    ),
)

ITEMS = (REDUCE_CHANNELS, REDUCTIONS_BY_HAND, GRADIENT_X_INPUT_ZERO, SMOOTHGRAD, NOISE_AND_SAMPLES)
