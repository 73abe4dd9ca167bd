"""Autograder for exercises/01_why_interpret: choosing a method, a localisation score, its chance
level, and reasoning about the planted shortcut.

The function item's ``collect`` step (the student's process) calls ``mass_on_mask`` on seeded
maps and masks built here; the checks (trusted process) rebuild them and compare with the
reference below.
"""
from __future__ import annotations

import functools

import torch

from .checks import Fail, Got, Item, StudentError, assert_close, check, choice_answer, number_answer

EXERCISE = "01_why_interpret"

METHODS = ("A", "B", "C", "D", "E")


# --- item 1: which method for which question ----------------------------------------------------

CHOOSE_METHOD = Item(
    "choose_method",
    checks=(
        choice_answer("answer_credit", "C", METHODS, "contributions that add up, one applicant",
                      "which method's values are defined to add up to the score's difference "
                      "from the average (Shapley's efficiency)? A gradient is a sensitivity"),
        choice_answer("answer_markings", "D", METHODS, "a concept across the whole test set",
                      "the question is about the whole test set and a concept that has no fixed "
                      "place in the image; per-image maps would each have to be read by eye"),
        choice_answer("answer_where", "B", METHODS, "a map at 7 x 7 for 10,000 photos",
                      "count the forward passes each candidate needs per photo"),
        choice_answer("answer_sensitive", "A", METHODS, "the most sensitive input value",
                      "a tiny change of one input value: what measures the score's rate of "
                      "change there?"),
    ),
)


# --- item 2: mass_on_mask ------------------------------------------------------------------------


def _maps(seed: int, n: int = 3, size: int = 6, signed: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn((n, size, size), generator=g, dtype=torch.float64)
    return m if signed else m.abs()


def _masks(seed: int, n: int = 3, size: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 100)
    masks = torch.rand((n, size, size), generator=g) < 0.3
    masks[:, 0, 0] = True  # never empty
    return masks


def reference_mass_on_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's total |value| that lies on its mask: N x H x W, N x H x W -> N."""
    m = maps.abs().to(torch.float64)
    total = m.sum(dim=(1, 2))
    on = (m * masks.to(torch.float64)).sum(dim=(1, 2))
    return torch.where(total > 0, on / total.clamp_min(1e-300), torch.zeros_like(total))


def collect_mass_on_mask(student) -> dict:
    """Student's process: mass_on_mask on seeded maps, and what it did to them."""
    out = {}
    maps, masks = _maps(0), _masks(0)
    given = maps.clone()
    out["positive"] = student.call("mass_on_mask", given, masks)
    out["positive:unchanged"] = bool(torch.equal(given, maps))
    signed = _maps(1, signed=True)
    given_signed = signed.clone()
    out["signed"] = student.call("mass_on_mask", given_signed, _masks(1))
    out["signed:unchanged"] = bool(torch.equal(given_signed, signed))
    zero = _maps(2)
    zero[1] = 0.0
    out["zero"] = student.call("mass_on_mask", zero, _masks(2))
    out["mismatch"] = student.call("mass_on_mask", _maps(3, n=2), _masks(3, n=3))
    return out


@functools.lru_cache(maxsize=None)
def _want(key: str) -> torch.Tensor:
    if key == "positive":
        return reference_mass_on_mask(_maps(0), _masks(0))
    if key == "signed":
        return reference_mass_on_mask(_maps(1, signed=True), _masks(1))
    zero = _maps(2)
    zero[1] = 0.0
    return reference_mass_on_mask(zero, _masks(2))


@check("the share of each map's mass on its mask", points=2)
def _mom_positive(got: Got) -> None:
    want = _want("positive")
    what = "mass_on_mask(maps, masks) for 3 non-negative 6 x 6 maps"
    assert_close(got.tensor("positive", like=want, what=what), want, what,
                 hint="per example: the sum of the map over the mask's pixels divided by the sum "
                      "over all pixels; the result has one number per example (shape N)")
    if not got.flag("positive:unchanged"):
        raise Fail("changed the maps passed in: work on a copy")


@check("signed maps count |value|")
def _mom_signed(got: Got) -> None:
    want = _want("signed")
    what = "mass_on_mask on signed maps"
    assert_close(got.tensor("signed", like=want, what=what), want, what,
                 hint="a negative value is evidence too: take absolute values before summing, or "
                      "positive and negative parts cancel and the share can leave [0, 1]")
    if not got.flag("signed:unchanged"):
        raise Fail("changed the maps passed in (an in-place abs_?): return a new tensor")


@check("an all-zero map scores 0, not NaN", hidden=True)
def _mom_zero(got: Got) -> None:
    want = _want("zero")
    what = "mass_on_mask where the second map is all zeros"
    given = got.tensor("zero", like=want, what=what)
    # Only the all-zero row: a wrong formula for the others is the first check's business.
    if abs(float(given[1])) > 1e-9:
        raise Fail(f"{what} gave {float(given[1]):g} for the all-zero map: a map that is zero "
                   "everywhere puts no mass on the object, so return 0 for it")


@check("maps and masks of different shapes raise ValueError", hidden=True)
def _mom_mismatch(got: Got) -> None:
    v = got.raw("mismatch")
    if isinstance(v, StudentError):
        if v.raised("ValueError"):
            return
        if v.kind == "raised":
            raise Fail(f"mass_on_mask(2 maps, 3 masks) raised {v.exc_type}, expected ValueError")
        raise Fail(v.message)
    raise Fail("mass_on_mask(2 maps, 3 masks) returned a value: raise ValueError when the shapes "
               "differ, so a misaligned batch cannot give a silent score")


MASS_ON_MASK = Item(
    "mass_on_mask",
    checks=(_mom_positive, _mom_signed, _mom_zero, _mom_mismatch),
    collect=collect_mass_on_mask,
)


# --- item 3: the chance level of the score -------------------------------------------------------


# The mean share of the image covered by the object in make_shapes(500, seed=0), to 4 decimals;
# tests/test_grading_chapters.py recomputes it from the dataset.
MEAN_MASK_AREA = 0.1666


CHANCE_LEVEL = Item(
    "chance_level",
    checks=(
        choice_answer("answer_chance", "B", ("A", "B", "C", "D"), "a map independent of the image",
                      "a map that ignores the image spreads its mass evenly over the pixels on "
                      "average, so its expected share on the mask is the share of pixels the mask "
                      "covers"),
        number_answer("answer_random_score", MEAN_MASK_AREA, "the measured score of random maps",
                      "score one uniform random map per image of make_shapes(500, seed=0) with "
                      "mass_on_mask and average the 500 scores", tol=0.005),
    ),
)


# --- item 4: reasoning about the shortcut --------------------------------------------------------

SHORTCUT = Item(
    "shortcut",
    checks=(
        number_answer("answer_called_circle", 138, "tagged non-circles called circle",
                      "read the row 'tagged other classes called circle' of the shortcut model "
                      "and apply it to 200 images", tol=2.0),
        choice_answer("answer_balanced_tag", "C", ("A", "B", "C", "D"), "a tag on half of every class",
                      "ask what seeing the tag tells the model about the class when every class "
                      "carries it equally often"),
        choice_answer("answer_reveals", "B", ("A", "B", "C", "D"), "which test reveals the shortcut",
                      "a test can only reveal a shortcut if it breaks the association between "
                      "the tag and the class"),
    ),
)

ITEMS = (CHOOSE_METHOD, MASS_ON_MASK, CHANCE_LEVEL, SHORTCUT)
