"""Autograder for exercises/05_occlusion_and_shapley: occlusion's overlap averaging, the cost of
perturbation methods, reading an error-versus-cost table, Shapley values against leave-one-out
on a game with redundancy, and telling three buggy occlusions apart by their outputs.

The function item's ``collect`` step (the student's process) calls ``occlusion_map`` on small
untrained float64 models and images built here from fixed seeds; its checks (the trusted
process) rebuild them and compare with course_lib's ``occlusion``. Each check isolates one
idea (the drop, the averaging of overlapping windows, the last window at the border, the
fill), so a lost point says which: the checks that build on the drop of a single window
(overlap, border, fill) say "fix that check first" when it fails, instead of diagnosing a
fault they cannot see, and a failing check names the common mistake it recognises (the sum
or the maximum of the drops, the last window's drop, the uncovered border, the reversed sign,
the fill ignored).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from course_lib.perturbation.occlusion import occlusion as _occlusion

from .checks import Array, Fail, Got, Item, assert_close, check, choice_answer, number_answer
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
    out.update(material.model_flags(model))
    out["clean:input_unchanged"] = bool(not given.requires_grad and given.grad is None and torch.equal(given, x))
    return out


@functools.lru_cache(maxsize=None)
def reference(key: str) -> torch.Tensor:
    """Trusted process: course_lib's occlusion on probe ``key``, as an H x W map."""
    model, x, target, window, stride, fill = PROBES[key]
    return _occlusion(model(), x(), target, window=window, stride=stride, fill=fill)[0, 0]


@functools.lru_cache(maxsize=None)
def variant(key: str, combine: str = "mean", count: str = "ceil", fill: float | None = None) -> torch.Tensor:
    """Trusted process: probe ``key`` computed with a common mistake, to name it in a reason.

    ``combine``: how the drops of the windows covering a pixel are combined ("mean", "sum",
    "max", "last": the last window's drop overwrites); ``count``: "floor" places
    floor((L - window) / stride) + 1 windows per side and leaves uncovered pixels at 0,
    "shifted" moves the last window inside the image (start L - window) instead of cutting it;
    ``fill`` overrides the probe's fill.
    """
    make_model, make_x, target, window, stride, probe_fill = PROBES[key]
    model, x = make_model(), make_x()
    fill = probe_fill if fill is None else fill
    _, _, h, w = x.shape
    rounding = math.ceil if count == "ceil" else math.floor

    def starts(size: int) -> list[int]:
        out = [i * stride for i in range(rounding((size - window) / stride) + 1)]
        return out[:-1] + [size - window] if count == "shifted" else out

    total, count_map = torch.zeros(h, w, dtype=torch.float64), torch.zeros(h, w, dtype=torch.float64)
    largest = torch.full((h, w), -math.inf, dtype=torch.float64)
    last = torch.zeros(h, w, dtype=torch.float64)
    with torch.no_grad():
        clean = model(x)[0, target]
        for r in starts(h):
            for c in starts(w):
                hidden = x.clone()
                hidden[:, :, r : r + window, c : c + window] = fill
                drop = clean - model(hidden)[0, target]
                total[r : r + window, c : c + window] += drop
                count_map[r : r + window, c : c + window] += 1
                largest[r : r + window, c : c + window] = largest[r : r + window, c : c + window].clamp(min=drop)
                last[r : r + window, c : c + window] = drop
    covered = count_map > 0
    out = {"mean": total / count_map.clamp(min=1), "sum": total, "max": largest, "last": last}[combine]
    return torch.where(covered, out, torch.zeros_like(out))


def _close(got: Got, key: str, want: torch.Tensor) -> bool:
    """Whether the student's map for probe ``key`` equals ``want`` (False if it is unreadable)."""
    try:
        t = got.tensor(key, like=want)
    except Fail:
        return False
    return bool(torch.allclose(t, want, rtol=1e-6, atol=1e-9))


def _compare(got: Got, key: str, what: str, hint: str, mistakes: tuple[tuple[torch.Tensor, str], ...] = ()) -> None:
    """Fail unless probe ``key`` matches course_lib; a recognised mistake gives its own hint."""
    want = reference(key)
    t = got.tensor(key, like=want, what=what)
    if torch.allclose(t, want, rtol=1e-6, atol=1e-9):
        return
    for wrong, reason in mistakes:
        if torch.allclose(t, wrong, rtol=1e-6, atol=1e-9):
            hint = reason
            break
    assert_close(t, want, what, hint=hint)


TILES = "non-overlapping windows: each pixel gets its window's score drop"


def _needs_tiles(got: Got) -> None:
    """Checks that build on a single window's drop wait until the tiles check passes."""
    if not _close(got, "tiles", reference("tiles")):
        raise Fail(f"fix the check '{TILES}' first: while the drop of a single window is wrong, "
                   "this check cannot tell what else is")


@check("returns an H x W map")
def _om_shape(got: Got) -> None:
    got.tensor("shape", shape=(8, 8), what="occlusion_map(model, image of shape (1, 3, 8, 8), ...)")


@check(TILES)
def _om_tiles(got: Got) -> None:
    _compare(got, "tiles", "occlusion_map with window 4, stride 4 (four tiles)",
             "each pixel's value is f(image) - f(image with its tile set to the fill), for the target's "
             "logit; every pixel of the 8 x 8 image lies in exactly one of the four 4 x 4 tiles",
             mistakes=((-reference("tiles"), "the sign is reversed: the value is the drop f(image) - "
                        "f(image with the tile hidden), positive when hiding the tile lowers the score"),))


@check("overlapping windows: a pixel's value combines its windows as the chapter's does", points=2)
def _om_overlap(got: Got) -> None:
    _needs_tiles(got)
    _compare(got, "overlap", "occlusion_map with window 4, stride 2 (overlapping windows)",
             "a pixel covered by several windows must combine their drops as the chapter's map does",
             mistakes=(
                 (variant("overlap", "sum"), "you add up the drops of the windows covering a pixel, so a "
                  "pixel's value grows with the number of windows over it; the chapter's map does not"),
                 (variant("overlap", "max"), "you keep the largest drop among the windows covering a "
                  "pixel: one window decides, and a pixel gets credit it shares with its neighbours"),
                 (variant("overlap", "last"), "each pixel keeps the drop of the last window that covered "
                  "it: the windows before are overwritten, not combined"),
             ))


@check("the border: windows placed as the chapter's (and Captum's) are")
def _om_border(got: Got) -> None:
    _needs_tiles(got)
    what = "occlusion_map with window 3, stride 3 on 8 pixels"
    raw = got.raw("border")
    if isinstance(raw, Array) and raw.data.dtype.kind in "fc" and not np.isfinite(raw.data).all():
        raise Fail(f"{what} contains NaN or inf: some pixels are covered by no window (0 / 0); "
                   "the windows must go on until every pixel is covered")
    _compare(got, "border", what,
             "place the windows as course_lib and Captum do: from 0 in steps of the stride, until the "
             "image is covered",
             mistakes=((variant("border", count="floor"), "the last row and column get no window: with "
                        "window 3 and stride 3 on 8 pixels, windows starting at 0 and 3 leave pixels 6 "
                        "and 7 uncovered; one more window is needed, cut by the border"),
                       (variant("border", count="shifted"), "your last window starts at 5, moved inside "
                        "the image; the chapter's windows start at multiples of the stride (0, 3, 6) and "
                        "the last one is cut by the border")))


@check("the fill value replaces the window", hidden=True)
def _om_fill(got: Got) -> None:
    _needs_tiles(got)
    _compare(got, "fill", "occlusion_map with fill 0.7",
             "set every channel of the window's pixels to `fill`",
             mistakes=((variant("fill", fill=0.0), "the window was set to 0, not to `fill`"),))


@check("leaves the image and the model as they were", hidden=True)
def _om_clean(got: Got) -> None:
    got.ok("clean")
    material.check_model_left_alone(got, "left .grad on the model's parameters: occlusion needs no "
                                         "gradients, use torch.no_grad()", requires_grad=False)
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
        choice_answer("answer_within_5_percent", "B", ESTIMATORS, "which estimators are within 5% on average at 256 calls",
                      "read the 256-calls row and compare each mean error, with its standard error, "
                      "with 0.05"),
        choice_answer("answer_single_run", "B", ESTIMATORS, "what one run at 256 calls supports",
                      "the mean is over 60 runs; the bracketed 90th percentile says how far one run in "
                      "ten strays"),
        number_answer("answer_shrink_factor", 2.0, "error shrink factor from 2,048 to 8,192 calls",
                      "a Monte Carlo error falls like 1 / sqrt(calls); four times the calls", tol=0.25),
        choice_answer("answer_lime_floor", "C", ESTIMATORS, "why LIME's error levels off",
                      "a fixed penalty weighs less and less against squared errors that grow with the "
                      "samples; what is left when the samples are many, or when every coalition is used?"),
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

# --- item 5: which bug made which map ---------------------------------------------------------

# A one-row image of 8 pixels, all 1, and a two-class model whose class-0 logit is
# ROW_BIAS + ROW_WEIGHTS . pixels (class 1's logit is 0); occlusion with window 3, stride 2,
# fill 0 along the row. The exercise prints the five maps below (tests/test_exercise_answers.py
# recomputes them): each output letter names how it was made.
ROW_WEIGHTS = (0.0, 0.0, 1.0, 3.0, 3.0, 1.0, 0.0, 2.0)
ROW_BIAS = -4.0
ROW_OUTPUTS = {
    "P": "floor",  # floor((8 - 3) / 2) + 1 = 3 windows: pixel 7 uncovered, left at 0
    "Q": "shifted",  # the last window moved inside the image (starts 0, 2, 4, 5), not cut
    "R": "correct",  # course_lib's occlusion
    "S": "probability",  # the drop of the softmax probability of class 0, not of its logit
    "T": "max",  # the largest drop over the windows covering a pixel
}
OUTPUT_LETTERS = tuple(ROW_OUTPUTS)


def _letter(kind: str) -> str:
    return next(letter for letter, k in ROW_OUTPUTS.items() if k == kind)


FIND_THE_BUG = Item(
    "find_the_bug",
    checks=(
        choice_answer("answer_bug_max", _letter("max"), OUTPUT_LETTERS, "the maximum over overlapping windows",
                      "where two windows overlap, a maximum takes the larger drop: compare pixel 2, "
                      "covered by windows with drops 1 and 7"),
        choice_answer("answer_bug_floor", _letter("floor"), OUTPUT_LETTERS, "floor division for the window count",
                      "count the windows floor division places along 8 pixels with window 3 and stride 2, "
                      "and see which pixels none of them covers"),
        choice_answer("answer_bug_probability", _letter("probability"), OUTPUT_LETTERS,
                      "the probability instead of the logit",
                      "the logit of the full row is 6, so its probability is already near 1; what does a "
                      "drop of the logit by 1 do to that probability, and a drop by 7?"),
        choice_answer("answer_correct_output", _letter("correct"), OUTPUT_LETTERS, "the chapter's occlusion",
                      "the chapter places windows from 0 in steps of the stride until the row is covered, "
                      "and cuts the last one at the border; it does not move it inside"),
    ),
)

ITEMS = (OCCLUSION_MAP, FORWARD_PASSES, READ_ERRORS, SHAPLEY_BY_HAND, FIND_THE_BUG)
