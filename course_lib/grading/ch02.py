"""Autograder for exercises/02_gradient_saliency: channel reductions, gradient x input, SmoothGrad.

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
from torch import nn

from course_lib.attribution.saliency import reduce_channels as _reduce_channels
from course_lib.attribution.saliency import vanilla_gradient as _vanilla_gradient
from course_lib.attribution.smoothgrad import smoothgrad as _smoothgrad

from .checks import (Fail, Got, Item, StudentError, assert_close, check, choice_answer,
                     number_answer, unit_scale)

EXERCISE = "02_gradient_saliency"
PRELOAD = ["captum.attr"]  # imported once in the grading server, so its NoiseTunnel can be guarded


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

HOWS = ("max_abs", "sum_abs", "signed")


def _attributions() -> torch.Tensor:
    return torch.randn((2, 3, 4, 5), generator=torch.Generator().manual_seed(2), dtype=torch.float64)


def collect_reduce_channels(student) -> dict:
    """Student's process: each reduction of seeded attributions, and whether the input survived."""
    attr = _attributions()
    out = {}
    for how in HOWS:
        given = attr.clone()
        out[how] = student.call("reduce_channels", given, how)
        out[f"{how}:input_unchanged"] = bool(torch.equal(given, attr))
    small = torch.randn((1, 3, 2, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out["unknown"] = student.call("reduce_channels", small, "mean_of_squares")
    return out


@functools.lru_cache(maxsize=None)
def _ref_reduce(how: str) -> torch.Tensor:
    return _reduce_channels(_attributions(), how)


def _reduction_check(how: str, meaning: str, hint: str):
    @check(f"{how}: {meaning}")
    def run(got: Got) -> None:
        want = _ref_reduce(how)
        what = f"reduce_channels(attr, {how!r})"
        assert_close(got.tensor(how, like=want, what=what), want, what, hint=hint)
        if not got.flag(f"{how}:input_unchanged"):
            raise Fail("changed the attributions passed in (an in-place abs_?): return a new tensor")

    return run


@check("an unknown `how` raises ValueError", hidden=True)
def _reduce_unknown(got: Got) -> None:
    what = "reduce_channels(attr, 'mean_of_squares')"
    v = got.raw("unknown")
    if isinstance(v, StudentError):
        if v.raised("ValueError"):
            return
        if v.kind == "raised":
            raise Fail(f"{what} raised {v.exc_type}, expected ValueError")
        raise Fail(v.message)
    raise Fail(f"{what} returned a value: raise ValueError so a typo in `how` cannot pass silently")


REDUCE_CHANNELS = Item(
    "reduce_channels",
    checks=(
        _reduction_check("max_abs", "largest |value| over channels",
                         "take absolute values, then the maximum over dim=1 (the channels)"),
        _reduction_check("sum_abs", "sum of |values| over channels",
                         "take absolute values, then the sum over dim=1 (the channels)"),
        _reduction_check("signed", "plain sum over channels",
                         "sum over dim=1 (the channels) without absolute values"),
        _reduce_unknown,
    ),
    collect=collect_reduce_channels,
    forbidden=("course_lib.reduce_channels", "course_lib.attribution.reduce_channels",
               "course_lib.attribution.saliency.reduce_channels"),
)


# --- item 2: reductions by hand --------------------------------------------------------------

REDUCTIONS_BY_HAND = Item(
    "reductions_by_hand",
    checks=(
        number_answer("answer_max_abs", 0.5, "max_abs of (+0.4, -0.5, +0.2)",
                      "take the largest absolute value over the three channels"),
        number_answer("answer_sum_abs", 1.1, "sum_abs of (+0.4, -0.5, +0.2)",
                      "add the absolute values of the three channels"),
        number_answer("answer_brighter", 0.1, "score change per unit of brightening",
                      "brightening adds the same small step to R, G and B; to first order the "
                      "score changes by the sum of (gradient x step) over the three channels"),
        choice_answer("answer_keeps_sign", "signed", ("max_abs", "sum_abs", "signed"),
                      "which reduction keeps the sign",
                      "two of the reductions take absolute values first"),
    ),
)


# --- item 3: gradient x input at a zero input ------------------------------------------------

GRADIENT_X_INPUT_ZERO = Item(
    "gradient_x_input_zero",
    checks=(
        number_answer("answer_zero_pixel", 0.5, "pixel value with zero gradient x input",
                      "gradient x input is zero where the model's input is zero, and the model "
                      "sees (p - 0.5) / 0.5, not the pixel value p"),
        number_answer("answer_black_factor", -1.0, "gradient x input of a black pixel",
                      "the model sees a black pixel (p = 0) as (0 - 0.5) / 0.5"),
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
    out["clean:param_grads"] = any(p.grad is not None for p in model.parameters())
    out["clean:requires_grad"] = all(p.requires_grad for p in model.parameters())
    out["clean:training"] = bool(model.training)
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

@check("noise: each copy is x + noise_level * (max - min) * noise[i]", hidden=True)
def _sg_one(got: Got) -> None:
    want = reference("one")
    what = "smoothgrad(n_samples=6, noise_level=0.2, seed=7), up to scale"
    assert_close(unit_scale(got.tensor("one", like=want, what=what)), unit_scale(want), what,
                 hint=NOISE_HINT)


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
    if got.flag("clean:param_grads"):
        raise Fail("left gradients in the model's parameters (.grad is set): take input gradients "
                   "with torch.autograd.grad(score, x) instead of score.backward()")
    if not got.flag("clean:requires_grad"):
        raise Fail("turned off requires_grad on the model's parameters and left it off")
    if got.flag("clean:training"):
        raise Fail("left the model in training mode")
    if not got.flag("clean:input_unchanged"):
        raise Fail("changed the input tensor passed in (its values, requires_grad or .grad): "
                   "work on a copy, e.g. x = inputs.detach().clone()")


SMOOTHGRAD = Item(
    "smoothgrad",
    checks=(_sg_shape, _sg_no_noise, _sg_average, _sg_one, _sg_batch, _sg_target, _sg_clean),
    collect=collect_smoothgrad,
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
    checks=(
        choice_answer("answer_noise_level", "B", ("A", "B", "C", "D"), "a larger noise level",
                      "SmoothGrad averages the gradient over a neighbourhood of the input whose "
                      "size is set by the noise level"),
        choice_answer("answer_samples", "C", ("A", "B", "C", "D"), "more samples",
                      "n_samples decides how well the average is estimated, not what is averaged"),
    ),
)

ITEMS = (REDUCE_CHANNELS, REDUCTIONS_BY_HAND, GRADIENT_X_INPUT_ZERO, SMOOTHGRAD, NOISE_AND_SAMPLES)
