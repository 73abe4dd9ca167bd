"""What runs inside one item's grading process: load the student's cells, then run the checks.

The parent (``runner``) starts one such process per student and item and kills it when it
runs out of time, so an endless loop costs one item, not the batch. Inside, we guard what a
process cannot guard from outside:

- output: ``sys.stdout``/``sys.stderr`` count characters and raise ``OutputFlood`` past a limit
  (file descriptors 1 and 2 go to /dev/null, so output written below Python goes nowhere);
- loading: each cell runs under an alarm; a cell that raises, hangs or floods is recorded and
  the next cell still runs, so one broken cell does not hide the definitions after it;
- forbidden functions: the course_lib functions an exercise asks students to write themselves
  are replaced by guards that raise ``ForbiddenCall`` and remember the call; the checks reach
  the real ones through :func:`reference`.

This is isolation for honest mistakes, not a security sandbox: run untrusted code in a container.
"""
from __future__ import annotations

import builtins
import functools
import importlib
import io
import os
import random
import signal
import sys
import traceback
from typing import Any, Callable

from .checks import Item


class OutputFlood(BaseException):
    """Raised when a submission prints more than the limit (a BaseException: ``except Exception`` cannot hide it)."""


class CellTimeout(BaseException):
    """Raised by the alarm when one cell runs too long while the submission loads."""


class ForbiddenCall(BaseException):
    """Raised when a submission calls a function the exercise asks students to write."""


# --- forbidden functions and the reference door ---------------------------------------------

_reference_depth = 0  # > 0 while a check runs a reference implementation
FORBIDDEN_CALLS: list[str] = []  # dotted names the submission called, in order


def reference(fn: Callable) -> Callable:
    """Wrap a reference implementation so it may use guarded functions internally."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        global _reference_depth
        _reference_depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _reference_depth -= 1

    return run


def _guard(original: Callable, dotted: str) -> Callable:
    @functools.wraps(original)
    def guarded(*args, **kwargs):
        if _reference_depth:
            return original(*args, **kwargs)
        FORBIDDEN_CALLS.append(dotted)
        raise ForbiddenCall(f"{dotted} is off limits in this exercise: write it yourself")

    return guarded


def _resolve_owner(dotted: str) -> tuple[Any, str]:
    """'course_lib.attribution.smoothgrad.smoothgrad' -> (the module object, 'smoothgrad')."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:  # e.g. a class: captum.attr.NoiseTunnel.attribute
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ImportError(f"cannot import any module of {dotted!r}")


def forbid(dotted_names: list[str]) -> None:
    """Replace each named function by a guard; names that cannot be imported are skipped."""
    for dotted in dotted_names:
        try:
            owner, attr = _resolve_owner(dotted)
            setattr(owner, attr, _guard(getattr(owner, attr), dotted))
        except (ImportError, AttributeError):
            continue  # an optional library (captum) missing cannot be called either


# --- bounded output ---------------------------------------------------------------------------


class BoundedOutput(io.TextIOBase):
    """A text stream that keeps nothing and raises OutputFlood once ``limit`` characters are exceeded."""

    def __init__(self, limit: int, on_flood: Callable[[], None]) -> None:
        self.limit, self.count, self.flooded, self._on_flood = limit, 0, False, on_flood

    encoding = "utf-8"  # some libraries read it before writing

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.count += len(text)
        if self.count > self.limit:
            if not self.flooded:
                self.flooded = True
                self._on_flood()
            raise OutputFlood(f"printed more than {self.limit} characters")
        return len(text)


# --- loading the submission -------------------------------------------------------------------

_in_cell = False


def _on_alarm(signum, frame):
    # Only interrupt the submission (or what it calls), never this module's own bookkeeping:
    # an alarm that lands between the end of a cell and the timer's reset is ignored.
    if _in_cell and frame is not None and frame.f_code.co_filename != __file__:
        raise CellTimeout()


def describe(exc: BaseException, limit: int = 200) -> str:
    """'ValueError: bad shape (code cell 7, line 3)': the error and where in the submission it arose."""
    # A SyntaxError's str() repeats the file and line, which we add below in a friendlier form.
    raw = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    message = " ".join(str(raw).split())
    text = type(exc).__name__ + (f": {message}" if message else "")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    where = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<code cell")]
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith("<code cell"):
        return f"{text} ({exc.filename[1:-1]}, line {exc.lineno})"
    if where:
        return f"{text} ({where[-1].filename[1:-1]}, line {where[-1].lineno})"
    return text


def load_cells(ns: dict, cells: list[tuple[str, str]], skip: set[str], cell_timeout: float,
               output: BoundedOutput, send: Callable) -> None:
    """Execute the cells in ``ns`` one by one, reporting each start and each problem to ``send``.

    Problems are sent as they happen, so the parent knows which cell hung even if it has to
    kill this process.
    """
    global _in_cell
    signal.signal(signal.SIGALRM, _on_alarm)
    for label, source in cells:
        if label in skip:
            send(("problem", (label, "skipped", "it hung or ended the process in an earlier attempt")))
            continue
        try:
            code = compile(source, f"<{label}>", "exec")
        except SyntaxError as exc:
            send(("problem", (label, "error", describe(exc))))
            continue
        send(("cell", label))
        output.count = 0  # each cell may print up to the limit
        caught = None
        try:
            _in_cell = True
            # The alarm fires after cell_timeout, then every 0.1 s: a cell that catches the
            # first CellTimeout (a bare except in a loop) gets another until it lets one through.
            signal.setitimer(signal.ITIMER_REAL, cell_timeout, 0.1)
            exec(code, ns)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included: keep loading
            caught = exc
        finally:
            _in_cell = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(caught, CellTimeout):
            send(("problem", (label, "timeout", f"did not finish in {cell_timeout:g} s")))
        elif isinstance(caught, OutputFlood):
            send(("problem", (label, "output_flood", str(caught))))
        elif caught is not None:
            send(("problem", (label, "error", describe(caught))))


# --- the process ----------------------------------------------------------------------------


def run_checks(item: Item, ns: dict, send: Callable) -> dict:
    """Interim: collect and judge in this process (the trusted split comes with the new runner)."""
    from .checks import Got, run_checks as judge
    from .protocol import roundtrip
    from .student import Student, forbidden_guards

    called: list[str] = []
    with forbidden_guards(item.forbidden, called):
        values = item.gather(Student(ns))
    results = judge(item, Got(roundtrip(values)))
    if called:
        return {"status": "forbidden",
                "reason": f"calls {', '.join(sorted(set(called)))}, which this item asks you to write yourself"}
    return {"status": "graded", "checks": results}


def grade_item(conn, chapter_module: str, item_name: str, cells: list[tuple[str, str]],
               skip: list[str], limits: dict) -> None:
    """Entry point of the grading process for one (student, item); reports through ``conn``."""

    def send(message) -> None:
        try:
            conn.send(message)
        except (BrokenPipeError, OSError):
            os._exit(3)  # the parent is gone: nobody is listening

    try:
        os.setpgid(0, 0)  # own process group: the parent can kill whatever the student started
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        output = BoundedOutput(limits["output_limit"], lambda: send(("flood", None)))
        sys.stdout = sys.stderr = output
        sys.stdin = io.StringIO("")
        os.chdir(limits["workdir"])
        os.environ["MPLBACKEND"] = "Agg"

        import numpy as np
        import torch

        # One thread: several items run side by side on small machines, and checks are tiny.
        torch.set_num_threads(1)
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)

        chapter = importlib.import_module(chapter_module)
        items = {i.name: i for i in chapter.ITEMS}
        item = items[item_name]

        ns: dict = {"__name__": "__submission__", "__builtins__": builtins}
        load_cells(ns, cells, set(skip), limits["cell_timeout"], output, send)
        send(("loaded", None))

        output.count = 0
        FORBIDDEN_CALLS.clear()
        send(("result", run_checks(item, ns, send)))
    except BaseException as exc:  # our own failure: report it rather than die silently
        send(("result", {"status": "grader_error", "reason": f"grader error: {describe(exc)}"}))
    finally:
        os._exit(0)  # skip atexit handlers and threads the submission may have left behind
