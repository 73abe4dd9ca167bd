"""Autograder for exercises/05_occlusion_and_shapley: occlusion's overlap averaging, the cost of
perturbation methods, reading an error-versus-cost table, and Shapley values against
leave-one-out on a game with redundancy.

The function item's ``collect`` step (the student's process) calls ``occlusion_map`` on small
untrained float64 models and images built here from fixed seeds; its checks (the trusted
process) rebuild them and compare with course_lib's ``occlusion``. Each check isolates one
idea (the drop, the averaging of overlapping windows, the last window at the border, the
fill), so a lost point says which.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from course_lib.perturbation.occlusion import occlusion as _occlusion

from .checks import Fail, Got, Item, assert_close, check, choice_answer, number_answer
from . import material
from .material import linear_model

EXERCISE = "05_occlusion_and_shapley"
PRELOAD = ["captum.attr"]  # imported once in the grading server, so its Occlusion can be guarded


# --- seeded test material ---------------------------------------------------------------------


def tiny_cnn(seed: int, classes: int = 4) -> nn.Module:
    """The shared tiny CNN, pooled to 2 x 2 before its linear layer."""
    return material.tiny_cnn(seed, classes, pool=2)


def image(seed: int) -> torch.Tensor:
    """One random float64 image, 1 x 3 x 8 x 8."""
    return torch.rand((1, 3, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- item 1: occlusion_map --------------------------------------------------------------------

# Each probe: (model, image, target, window, stride, fill), rebuilt from seeds on both sides.
PROBES = {
    "shape": (lambda: tiny_cnn(0), lambda: image(0), 1, 3, 3, 0.0),
    "tiles": (lambda: linear_model(1), lambda: image(1), 2, 4, 4, 0.0),  # 2 x 2 tiles, no overlap
    "overlap": (lambda: tiny_cnn(2), lambda: image(2), 0, 4, 2, 0.0),  # windows at 0, 2, 4: no border cut
    "border": (lambda: linear_model(3), lambda: image(3), 3, 3, 3, 0.0),  # windows at 0, 3, 6: the last is cut
    "fill": (lambda: tiny_cnn(4), lambda: image(4), 2, 4, 4, 0.7),  # tiles again: only the fill differs
}


def collect_occlusion_map(student) -> dict:
    """Student's process: occlusion_map on each probe, and what it left behind."""
    out = {}
    for key, (model, x, target, window, stride, fill) in PROBES.items():
        out[key] = student.call("occlusion_map", model(), x(), target, window, stride, fill)
    model, x = tiny_cnn(5), image(5)
    given = x.clone()
    out["clean"] = student.call("occlusion_map", model, given, 1, 4, 2, 0.0)
    out["clean:param_grads"] = any(p.grad is not None for p in model.parameters())
    out["clean:training"] = bool(model.training)
    out["clean:input_unchanged"] = bool(not given.requires_grad and given.grad is None and torch.equal(given, x))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's occlusion on probe ``key``, as an H x W map."""
    model, x, target, window, stride, fill = PROBES[key]
    return _occlusion(model(), x(), target, window=window, stride=stride, fill=fill)[0, 0]


def _compare(got: Got, key: str, what: str, hint: str) -> None:
    want = reference(key)
    assert_close(got.tensor(key, like=want, what=what), want, what, hint=hint)


@check("returns an H x W map")
def _om_shape(got: Got) -> None:
    got.tensor("shape", shape=(8, 8), what="occlusion_map(model, image of shape (1, 3, 8, 8), ...)")


@check("non-overlapping windows: each pixel gets its window's score drop")
def _om_tiles(got: Got) -> None:
    _compare(got, "tiles", "occlusion_map with window 4, stride 4 (four tiles)",
             "each pixel's value is f(image) - f(image with its tile set to the fill), for the target's "
             "logit: positive when hiding the tile lowers the score")


@check("overlapping windows: the mean drop over the windows covering a pixel", points=2)
def _om_overlap(got: Got) -> None:
    _compare(got, "overlap", "occlusion_map with window 4, stride 2 (overlapping windows)",
             "a pixel covered by several windows gets the mean of their drops: add each window's drop "
             "to its pixels, count the windows covering each pixel, and divide (not the max, not the "
             "last window's drop)")


@check("the last window hangs over the border and is cut, as Captum places it")
def _om_border(got: Got) -> None:
    _compare(got, "border", "occlusion_map with window 3, stride 3 on 8 pixels",
             "windows start at 0, stride, 2 * stride, ... until the image is covered: along 8 pixels "
             "with window 3 and stride 3 they start at 0, 3 and 6, and the last one covers only 6 and 7")


@check("the fill value replaces the window", hidden=True)
def _om_fill(got: Got) -> None:
    _compare(got, "fill", "occlusion_map with fill 0.7",
             "set every channel of the window's pixels to `fill`, not to 0")


@check("leaves the image and the model as they were", hidden=True)
def _om_clean(got: Got) -> None:
    got.ok("clean")
    if got.flag("clean:param_grads"):
        raise Fail("left .grad on the model's parameters: occlusion needs no gradients, use torch.no_grad()")
    if got.flag("clean:training"):
        raise Fail("left the model in training mode")
    if not got.flag("clean:input_unchanged"):
        raise Fail("changed the image passed in: occlude a copy, e.g. image.clone()")


OCCLUSION_MAP = Item(
    "occlusion_map",
    checks=(_om_shape, _om_tiles, _om_overlap, _om_border, _om_fill, _om_clean),
    collect=collect_occlusion_map,
    forbidden=(
        "course_lib.occlusion", "course_lib.perturbation.occlusion",
        "course_lib.perturbation.occlusion.occlusion", "captum.attr.Occlusion.attribute",
    ),
)


# --- item 2: the cost in forward passes -------------------------------------------------------

FORWARD_PASSES = Item(
    "forward_passes",
    checks=(
        number_answer("answer_windows_16_8", 729, "occlusion, 224 px, window 16, stride 8",
                      "count the window positions along one side, (224 - 16) / 8 + 1, and multiply "
                      "the two sides", tol=0.5),
        number_answer("answer_windows_50_25", 64, "occlusion, 224 px, window 50, stride 25",
                      "(224 - 50) / 25 is not a whole number: the windows go on until the image is "
                      "covered, so round up before adding 1; the last window is cut by the border",
                      tol=0.5),
        number_answer("answer_exact_10", 1024, "exact Shapley values, 10 segments",
                      "every subset of the segments is a coalition that must be scored", tol=0.5),
        number_answer("answer_permutation_10_50", 452, "permutation sampling, 10 segments, 50 orders",
                      "along one order the coalitions grow from empty to full; which of them are the "
                      "same for every order, and need scoring only once?", tol=0.5),
    ),
)


# --- item 3: reading an error-versus-cost table -----------------------------------------------

ESTIMATORS = ("A", "B", "C", "D")

READ_ERRORS = Item(
    "read_errors",
    checks=(
        choice_answer("answer_within_5_percent", "B", ESTIMATORS, "which estimators are within 5% at 256 calls",
                      "read the 256-calls row and compare each mean error, with its standard error, "
                      "with 0.05"),
        number_answer("answer_shrink_factor", 2.0, "error shrink factor from 512 to 2,048 calls",
                      "a Monte Carlo error falls like 1 / sqrt(calls); four times the calls", tol=0.25),
        choice_answer("answer_lime_floor", "B", ESTIMATORS, "why LIME's error levels off",
                      "more samples shrink the random part of an error, not the difference between "
                      "what an estimator converges to and the Shapley values"),
    ),
)


# --- item 4: Shapley values against leave-one-out ---------------------------------------------

SHAPLEY_BY_HAND = Item(
    "shapley_by_hand",
    checks=(
        number_answer("answer_phi_b", 7 / 6, "the Shapley value of segment B",
                      "average B's marginal contribution over the 6 orders of A, B, C (or use the "
                      "weights |S|! (M - |S| - 1)! / M!)", tol=0.01),
        number_answer("answer_phi_c", 1 / 6, "the Shapley value of segment C",
                      "C adds something in one context only: find it and weigh it", tol=0.01),
        number_answer("answer_leave_out_c", 0.0, "the score drop when C alone is hidden",
                      "hide C from the full image: compare v(A, B, C) with v(A, B)", tol=0.01),
    ),
)

ITEMS = (OCCLUSION_MAP, FORWARD_PASSES, READ_ERRORS, SHAPLEY_BY_HAND)
