"""The trusted half of an item: checks that judge what the student's process sent back.

A check is a function ``run(got)`` that passes unless it raises; ``Fail("message")`` is the
usual way to fail, and the message is the reason the student reads. ``got`` (a :class:`Got`)
holds only plain data decoded by the grader (numbers, strings, lists, dicts, arrays, and
:class:`StudentError` records for calls that raised), never an object the student built. Its
accessors validate type, dtype, shape and finiteness and raise ``Fail`` with a reason a
student understands, so a check never touches unvalidated data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch


class Fail(Exception):
    """A check's verdict: the message says what is wrong (it is shown to the student)."""


# --- what comes back from the student's process ----------------------------------------------


@dataclass(frozen=True)
class Array:
    """An array the student's process returned: ``kind`` is 'tensor' or 'ndarray'."""

    kind: str
    data: np.ndarray


@dataclass(frozen=True)
class StudentError:
    """A call or answer that did not give a value: ``kind`` is one of missing, not_callable,
    not_implemented, not_answered, raised, timeout, output_flood, forbidden, unsupported."""

    kind: str
    message: str
    exc_type: str = ""  # for kind 'raised': the exception's class name
    bases: tuple[str, ...] = ()  # its built-in base classes, e.g. ('ValueError', 'Exception')

    def raised(self, name: str) -> bool:
        """True if the call raised an exception of built-in class ``name`` (or a subclass)."""
        return self.kind == "raised" and (self.exc_type == name or name in self.bases)


def type_name(value: Any) -> str:
    """How a decoded value is named in reasons: 'torch.Tensor', 'int', 'list', ..."""
    if isinstance(value, Array):
        return "torch.Tensor" if value.kind == "tensor" else "numpy.ndarray"
    if isinstance(value, dict) and set(value) == {"__type__"}:
        return str(value["__type__"])
    return type(value).__name__


class Got:
    """One item's collected values (trusted process): validated accessors by key."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def raw(self, key: str) -> Any:
        """The decoded value (plain data, Array or StudentError), unvalidated."""
        if key not in self.values:
            raise Fail(f"nothing was collected for {key!r} (the item's collect step did not run)")
        return self.values[key]

    def value(self, key: str) -> Any:
        """The value; Fail with the student's error when the call or answer gave none."""
        v = self.raw(key)
        if isinstance(v, StudentError):
            raise Fail(v.message)
        return v

    def ok(self, key: str) -> None:
        """Fail unless the call stored under ``key`` returned (whatever it returned)."""
        self.value(key)

    def tensor(self, key: str, shape: Iterable[int] | None = None, what: str | None = None,
               like: torch.Tensor | None = None, allow_numpy: bool = False) -> torch.Tensor:
        """A float64 torch tensor, after checking it was a tensor of the right shape, all finite."""
        what = what or key
        v = self.value(key)
        if not isinstance(v, Array) or (v.kind != "tensor" and not allow_numpy):
            raise Fail(f"{what} returned {type_name(v)}, expected a torch.Tensor")
        want = tuple(like.shape) if like is not None else (tuple(shape) if shape is not None else None)
        if want is not None and tuple(v.data.shape) != want:
            raise Fail(f"{what} returned shape {tuple(v.data.shape)}, expected {want}")
        if v.data.dtype == np.bool_:
            raise Fail(f"{what} returned a boolean tensor, expected numbers")
        t = torch.from_numpy(np.array(v.data, dtype=np.float64))
        if not torch.isfinite(t).all():
            raise Fail(f"{what} contains NaN or inf")
        return t

    def number(self, key: str, what: str | None = None) -> float:
        """A finite real number (ints, floats, one-element arrays, numeric strings)."""
        what = what or f"`{key}`"
        v = self.value(key)
        if isinstance(v, Array) and v.data.size == 1 and v.data.dtype != np.bool_:
            v = float(v.data.reshape(()))
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise Fail(f"{what} should be a number, got the text {excerpt(v, 40)!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Fail(f"{what} should be a number, got {type_name(v)}")
        out = float(v)
        if not math.isfinite(out):
            raise Fail(f"{what} is {out}, expected a finite number")
        return out

    def text(self, key: str, what: str | None = None) -> str:
        """A string."""
        v = self.value(key)
        if not isinstance(v, str):
            raise Fail(f"{what or f'`{key}`'} should be text, got {type_name(v)}")
        return v

    def choice(self, key: str, options: Iterable[str], what: str | None = None) -> str:
        """One of ``options`` (case-insensitive; ' (b) ', 'B.' and "'b'" all read as 'B')."""
        what = what or f"`{key}`"
        v = self.value(key)
        if not isinstance(v, str):
            raise Fail(f"{what} should be one of {', '.join(map(repr, options))}, got {type_name(v)}")
        given = normalise_choice(v)
        for option in options:
            if normalise_choice(option) == given:
                return option
        raise Fail(f"{what} = {excerpt(v, 40)!r} is not one of {', '.join(map(repr, options))}")

    def flag(self, key: str, what: str | None = None) -> bool:
        """A bool."""
        v = self.value(key)
        if not isinstance(v, bool):
            raise Fail(f"{what or f'`{key}`'} should be True or False, got {type_name(v)}")
        return v

    def raised(self, key: str, exception: str, what: str | None = None) -> None:
        """Fail unless the call stored under ``key`` raised the built-in ``exception``."""
        what = what or key
        v = self.raw(key)
        if isinstance(v, StudentError):
            if v.raised(exception):
                return
            if v.kind == "raised":
                raise Fail(f"{what} raised {v.exc_type}, expected {exception}")
            raise Fail(v.message)
        raise Fail(f"{what} returned a value, expected it to raise {exception}")


def normalise_choice(value: str) -> str:
    """'b', ' (B) ', 'B.', "'b'" -> 'B'."""
    return str(value).strip().strip("'\"").strip().strip("().:").strip().upper()


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (student text in reasons is bounded)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- items and checks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One gradable property. ``run(got)`` passes unless it raises (trusted process).

    ``hidden`` checks run only when the instructor grades; the public-checks cell shows the
    student ``preview(got)`` for them instead, when there is one (e.g. "your answer is one of
    A-D"). ``answers``: the answer variables the check reads, for items without a collect step.
    """

    name: str
    points: float
    run: Callable[[Got], None]
    hidden: bool = False
    preview: Callable[[Got], None] | None = None
    answers: tuple[str, ...] = ()


def check(name: str, points: float = 1, hidden: bool = False) -> Callable[[Callable], Check]:
    """Decorator: turn ``fn(got)`` into a :class:`Check` called ``name``."""

    def deco(fn: Callable[[Got], None]) -> Check:
        return Check(name, points, fn, hidden=hidden)

    return deco


@dataclass(frozen=True)
class Item:
    """One exercise item: how to collect the student's results, and the checks that judge them.

    ``collect(student) -> dict`` runs in the student's process (see ``student.Student``) and
    returns plain data: numbers, strings, bools, None, lists, dicts, tensors and arrays, and
    the error records ``student.call``/``student.answer`` give. Without ``collect``, the item
    collects the answer variables its checks name (``number_answer``, ``choice_answer``).
    ``forbidden``: dotted names of library functions the item asks students to write.
    """

    name: str
    checks: tuple[Check, ...]
    collect: Callable[[Any], dict] | None = None
    forbidden: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [c.name for c in self.checks]
        if len(set(names)) != len(names):
            raise ValueError(f"item {self.name!r}: two checks share a name")
        if any(not (c.points > 0) for c in self.checks):
            raise ValueError(f"item {self.name!r}: every check needs positive points")

    @property
    def max_points(self) -> float:
        return float(sum(c.points for c in self.checks))

    def gather(self, student) -> dict:
        """Run the collect step (in the student's process)."""
        if self.collect is not None:
            return self.collect(student)
        names = sorted({a for c in self.checks for a in c.answers})
        return {name: student.answer(name) for name in names}


def run_checks(item: Item, got: Got, public: bool = False) -> list[tuple[str, float, float, str]]:
    """Run ``item``'s checks on ``got``: (name, points, max_points, reason) each, points capped.

    ``public``: the student's own run; hidden checks give their preview (or nothing) and count
    no points, so (name, 0, max, 'hidden: ...') rows say what is left to the grader.
    """
    results = []
    for c in item.checks:
        fn = c.run
        if public and c.hidden:
            if c.preview is None:
                results.append((c.name, 0.0, float(c.points), "hidden: checked when your work is graded"))
                continue
            fn = c.preview
        try:
            fn(got)
            points, reason = float(c.points), ""
        except Fail as exc:
            points, reason = 0.0, excerpt(str(exc), 400)
        except Exception as exc:  # a check bug must not crash the batch: report it, no points
            points, reason = 0.0, f"grader error in this check: {type(exc).__name__}: {excerpt(str(exc), 150)}"
        if public and c.hidden:
            reason = ("hidden: the format is fine; whether it is right is checked when your work "
                      "is graded") if not reason else reason
            points = 0.0
        results.append((c.name, min(max(points, 0.0), float(c.points)), float(c.points), reason))
    return results


# --- ready-made checks for answer variables --------------------------------------------------


def number_answer(name: str, expected: float, title: str, hint: str, tol: float = 1e-6,
                  points: float = 1, hidden: bool = True) -> Check:
    """A check that the answer variable ``name`` is ``expected`` (within ``tol``).

    Hidden by default: the public-checks cell then only says whether it is a number, so a
    student cannot find the answer by trying values.
    """

    def run(got: Got) -> None:
        value = got.number(name)
        if abs(value - expected) > tol:
            raise Fail(f"`{name}` = {value:g} is not right: {hint}")

    def preview(got: Got) -> None:
        got.number(name)

    return Check(title, points, run, hidden=hidden, preview=preview, answers=(name,))


def choice_answer(name: str, expected: str, options: tuple[str, ...], title: str, hint: str,
                  points: float = 1, hidden: bool = True) -> Check:
    """A check that the answer variable ``name`` is the option ``expected`` (case-insensitive).

    Hidden by default: the public-checks cell only says whether it is one of ``options``.
    """
    if expected not in options:
        raise ValueError(f"{expected!r} is not one of the options {options}")

    def run(got: Got) -> None:
        given = got.choice(name, options)
        if given != expected:
            raise Fail(f"`{name}` = {given!r} is not right: {hint}")

    def preview(got: Got) -> None:
        got.choice(name, options)

    return Check(title, points, run, hidden=hidden, preview=preview, answers=(name,))


# --- comparing tensors -----------------------------------------------------------------------


def assert_close(got: torch.Tensor, want: torch.Tensor, what: str, hint: str = "",
                 rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """Fail unless ``got`` equals ``want`` to a tight float64 tolerance; the reason quantifies it.

    ``got`` comes from ``Got.tensor`` (validated float64); shapes must match.
    """
    w = want.detach().to(torch.float64)
    if tuple(got.shape) != tuple(w.shape):
        raise Fail(f"{what} returned shape {tuple(got.shape)}, expected {tuple(w.shape)}")
    err = (got - w).abs().max().item() if w.numel() else 0.0
    scale = w.abs().max().item() if w.numel() else 0.0
    if err > atol + rtol * scale:
        raise Fail(f"{what} differs from the reference by up to {err:.3g} "
                   f"(values are up to {scale:.3g}){'. ' + hint[:1].upper() + hint[1:] if hint else ''}")


def unit_scale(t: torch.Tensor) -> torch.Tensor:
    """``t`` divided by its largest |value| (for comparisons up to an overall scale)."""
    peak = t.abs().max()
    return t / peak if peak > 0 else t
