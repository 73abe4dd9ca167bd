"""The building blocks of an exercise's autograder: items, checks, and helpers to write them.

An *item* is one gradable exercise (a function to write, a question to answer). It is a list
of *checks*, each worth some points; a check passes unless it raises. ``Fail("message")`` is
the usual way to fail: the message becomes the reason the student reads in the grades CSV,
so it should say what was expected and, where it helps, what to look at.

Checks receive the student's namespace (the names their cells defined) and fetch what they
need with ``student_function`` and ``student_answer``, which fail with a clear reason when
the name is missing, still ``None`` or still a stub.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch


class Fail(Exception):
    """A check's verdict: the message says what is wrong (it is shown to the student)."""


@dataclass(frozen=True)
class Check:
    """One gradable property: ``run(namespace)`` passes unless it raises."""

    name: str
    points: float
    run: Callable[[Mapping[str, Any]], None]


@dataclass(frozen=True)
class Item:
    """One exercise item: its checks and the course_lib functions it must not call."""

    name: str
    checks: tuple[Check, ...]
    forbidden: tuple[str, ...] = field(default=())

    @property
    def max_points(self) -> float:
        return sum(c.points for c in self.checks)


def check(name: str, points: float = 1) -> Callable[[Callable], Check]:
    """Decorator: turn ``fn(namespace)`` into a :class:`Check` called ``name``."""

    def deco(fn: Callable[[Mapping[str, Any]], None]) -> Check:
        return Check(name, points, fn)

    return deco


# --- fetching what the student wrote ---------------------------------------------------------


def student_function(ns: Mapping[str, Any], name: str) -> Callable:
    """The student's function ``name``, or Fail with a reason a student understands."""
    if name not in ns:
        raise Fail(f"`{name}` is not defined (did its cell fail to load?)")
    fn = ns[name]
    if not callable(fn):
        raise Fail(f"`{name}` should be a function, got {type(fn).__name__}")
    return fn


def call(fn: Callable, *args, **kwargs):
    """Call the student's ``fn``; a stub that still raises NotImplementedError fails clearly."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise Fail(f"not implemented yet: `{getattr(fn, '__name__', fn)}` raises NotImplementedError")


def student_answer(ns: Mapping[str, Any], name: str) -> Any:
    """The student's answer variable ``name``, or Fail when it is missing or still None."""
    if name not in ns:
        raise Fail(f"`{name}` is not defined (did its cell fail to load?)")
    if ns[name] is None:
        raise Fail(f"not answered: `{name}` is still None")
    return ns[name]


def choice(value: Any) -> str:
    """Normalise a multiple-choice answer: 'b', ' (B) ', 'B.' all become 'B'."""
    return str(value).strip().strip("().:").strip().upper()


def number(value: Any, name: str) -> float:
    """A numeric answer as a float (ints, floats, NumPy or 0-d tensors, numeric strings)."""
    try:
        if isinstance(value, torch.Tensor):
            value = value.item()
        out = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise Fail(f"`{name}` should be a number, got {value!r}")
    if math.isnan(out):
        raise Fail(f"`{name}` is NaN")
    return out


# --- comparing tensors -----------------------------------------------------------------------


def assert_tensor_like(got: Any, like: torch.Tensor, what: str) -> torch.Tensor:
    """Fail unless ``got`` is a tensor with the shape of ``like``; returns it detached, float64."""
    if not isinstance(got, torch.Tensor):
        raise Fail(f"{what} returned {type(got).__name__}, expected a torch.Tensor")
    if tuple(got.shape) != tuple(like.shape):
        raise Fail(f"{what} returned shape {tuple(got.shape)}, expected {tuple(like.shape)}")
    return got.detach().to(torch.float64)


def assert_close(got: Any, want: torch.Tensor, what: str, hint: str = "",
                 rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """Fail unless ``got`` equals ``want`` to a tight float64 tolerance; the reason quantifies it."""
    g = assert_tensor_like(got, want, what)
    w = want.detach().to(torch.float64)
    if not torch.isfinite(g).all():
        raise Fail(f"{what} contains NaN or inf")
    err = (g - w).abs().max().item()
    scale = w.abs().max().item()
    if err > atol + rtol * scale:
        raise Fail(f"{what} differs from the reference by up to {err:.3g} "
                   f"(values are up to {scale:.3g}){'. ' + hint[:1].upper() + hint[1:] if hint else ''}")
