"""A minimal chapter, the pattern to copy; the grader's own tests grade submissions of it.

Grade it like a chapter by its module name: ``python -m course_lib.grading
course_lib.grading.example SUBMISSIONS``. ``SOLUTION`` is its solution notebook (jupytext
percent text); ``scripts/make_exercises.py``'s rules turn it into the exercise.
"""
from __future__ import annotations

import functools

import torch

from .checks import Fail, Got, Item, StudentError, assert_close, check, choice_answer, number_answer

EXERCISE = "00_example"


def seeded(seed: int) -> torch.Tensor:
    """A 2 x 3 float64 tensor drawn from ``seed``: the student's process and the checks build
    the same one."""
    return torch.randn((2, 3), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- item 1: a function -------------------------------------------------------------------


def collect_scale(student) -> dict:
    """Student's process: call their ``scale`` on seeded inputs; report what it did to them."""
    x = seeded(0)
    given = x.clone()
    return {
        "times3": student.call("scale", given, 3.0),
        "input": given,  # the input after the call: the check compares it with seeded(0)
        "times_half": student.call("scale", seeded(1), 0.5),
        "negative": student.call("scale", seeded(2), -1.0),
    }


@functools.lru_cache(maxsize=None)
def _want(seed: int, factor: float) -> torch.Tensor:
    return seeded(seed) * factor


@check("multiplies by the factor", points=2)
def _scale_values(got: Got) -> None:
    for key, seed, factor in (("times3", 0, 3.0), ("times_half", 1, 0.5)):
        want = _want(seed, factor)
        what = f"scale(x, {factor})"
        assert_close(got.tensor(key, like=want, what=what), want, what,
                     hint="multiply every entry by the factor")


@check("leaves x as it was", hidden=True)
def _scale_clean(got: Got) -> None:
    got.ok("times3")  # a stub or a crash leaves x alone too: no point for that
    if not torch.equal(got.tensor("input", like=seeded(0), what="x after the call"), seeded(0)):
        raise Fail("changed x in place: return a new tensor")


@check("a negative factor raises ValueError", hidden=True)
def _scale_negative(got: Got) -> None:
    v = got.raw("negative")
    if isinstance(v, StudentError) and v.raised("ValueError"):
        return
    if isinstance(v, StudentError) and v.kind == "raised":
        raise Fail(f"scale(x, -1.0) raised {v.exc_type}, expected ValueError")
    if isinstance(v, StudentError):
        raise Fail(v.message)
    raise Fail("scale(x, -1.0) returned a value: raise ValueError for a negative factor")


SCALE = Item("scale", checks=(_scale_values, _scale_clean, _scale_negative), collect=collect_scale,
             forbidden=("course_lib.reduce_channels",))


# --- item 2: questions ------------------------------------------------------------------------

QUESTIONS = Item(
    "questions",
    checks=(
        number_answer("answer_half", 0.5, "half of one", "divide 1 by 2"),
        choice_answer("answer_letter", "B", ("A", "B", "C"), "the second letter",
                      "A comes first"),
    ),
)

ITEMS = (SCALE, QUESTIONS)

SOLUTION = '''\
# %% [markdown]
# # Example exercises

# %%
import torch

from course_lib.grading import public_checks

# %% tags=["answer"]
def scale(x, factor):
    """x times factor, as a new tensor; ValueError for a negative factor."""
    # YOUR ANSWER
    ### BEGIN SOLUTION
    if factor < 0:
        raise ValueError("factor must be >= 0")
    return x * factor
    ### END SOLUTION


# %% tags=["public-checks"]
public_checks("course_lib.grading.example", "scale")

# %% tags=["skip-grading"]
print(scale(torch.ones(2), 2.0))

# %% tags=["answer"]
# YOUR ANSWER
### BEGIN SOLUTION
answer_half = 0.5
answer_letter = "B"
### END SOLUTION

# %% tags=["public-checks"]
public_checks("course_lib.grading.example", "questions")
'''
