"""The student-side half of an item: the ``collect`` step's view of the student's namespace.

Everything here runs in the student's process (or, for public checks, in the student's own
notebook), next to the student's code, so nothing here is trusted: it only turns the
student's functions and answers into plain data for the trusted checks. A call that raises,
hangs, floods or is still a stub becomes an error record (``StudentError`` once decoded), so
one failing call costs only the checks that use it.
"""
from __future__ import annotations

import builtins
import contextlib
import functools
import importlib
import signal
import threading
import traceback
from typing import Any, Callable, Iterator

from .checks import excerpt


class OutputFlood(BaseException):
    """Raised when a submission prints more than the limit (``except Exception`` cannot hide it)."""


class CallTimeout(BaseException):
    """Raised by the alarm when one cell or call runs too long."""


class ForbiddenCall(BaseException):
    """Raised when a submission calls a function the exercise asks students to write."""


class Error(dict):
    """An error record in the collected data: {'__error__': {kind, message, exc_type, bases}}."""

    def __init__(self, kind: str, message: str, exc: BaseException | None = None) -> None:
        record = {"kind": kind, "message": excerpt(message, 300)}
        if exc is not None:
            record["exc_type"] = _safe_type_name(exc)
            record["bases"] = [k.__name__ for k in type(exc).__mro__
                               if getattr(builtins, k.__name__, None) is k]
        super().__init__(__error__=record)


def _safe_type_name(exc: BaseException) -> str:
    try:
        return str(type(exc).__name__)[:80]
    except Exception:
        return "Exception"


def describe(exc: BaseException, limit: int = 200) -> str:
    """'ValueError: bad shape (code cell 7, line 3)': the error and where in the submission it arose.

    A message that cannot be printed (a broken ``__str__``) is reported as such: it is the
    student's error, not the grader's.
    """
    try:
        raw = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        message = " ".join(str(raw).split())
    except BaseException:
        message = "<the exception's message could not be printed>"
    text = excerpt(_safe_type_name(exc) + (f": {message}" if message else ""), limit)
    try:
        if isinstance(exc, SyntaxError) and str(exc.filename or "").startswith("<code cell"):
            return f"{text} ({exc.filename[1:-1]}, line {exc.lineno})"
        where = [f for f in traceback.extract_tb(exc.__traceback__)
                 if str(f.filename).startswith("<code cell")]
    except BaseException:
        where = []
    if where:
        return f"{text} ({where[-1].filename[1:-1]}, line {where[-1].lineno})"
    return text


# --- time limits for cells and calls ---------------------------------------------------------

_in_student = False  # the alarm only interrupts student code (or what it calls), never ours


def _on_alarm(signum, frame):
    if _in_student and frame is not None and frame.f_code.co_filename not in _OUR_FILES:
        raise CallTimeout()


_OUR_FILES = {__file__}


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise CallTimeout in the code run inside if it takes longer than ``seconds``.

    The alarm fires again every 0.1 s, so code that catches the first CallTimeout (a bare
    ``except`` in a loop) gets another until one gets through. Only in the main thread.
    """
    global _in_student
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if usable:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    _in_student = True
    try:
        yield
    finally:
        _in_student = False
        if usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


# --- forbidden functions -----------------------------------------------------------------------


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


@contextlib.contextmanager
def forbidden_guards(dotted_names, called: list[str]) -> Iterator[None]:
    """Replace each named function by a guard that records the call in ``called`` and raises
    ForbiddenCall; the originals are put back afterwards. Unimportable names are skipped."""
    patched = []

    for dotted in dotted_names:
        try:
            owner, attr = _resolve_owner(dotted)
            original = getattr(owner, attr)
        except (ImportError, AttributeError):
            continue  # an optional library missing cannot be called either

        def guarded(*args, _dotted=dotted, **kwargs):
            called.append(_dotted)
            raise ForbiddenCall(f"{_dotted} is off limits in this item: write it yourself")

        functools.update_wrapper(guarded, original)
        del guarded.__wrapped__  # no direct way back to the original from the guard
        setattr(owner, attr, guarded)
        patched.append((owner, attr, original))
    try:
        yield
    finally:
        for owner, attr, original in reversed(patched):
            setattr(owner, attr, original)


# --- the student's namespace ---------------------------------------------------------------


class Student:
    """The student's names, for an item's ``collect`` step.

    ``call(name, *args)`` calls the student's function ``name`` and returns its result, or an
    error record when it is missing, a stub, raises, hangs or prints too much; ``answer(name)``
    returns an answer variable, or an error record when it is missing or still None. Put
    what they return in collect's dict as they are: the grader turns them into plain data.
    """

    def __init__(self, namespace: dict, call_timeout: float | None = 10.0) -> None:
        self.namespace = namespace
        self.call_timeout = call_timeout

    def function(self, name: str) -> Callable | Error:
        """The student's function ``name``, or an error record."""
        if name not in self.namespace:
            return Error("missing", f"`{name}` is not defined (did its cell fail to load?)")
        fn = self.namespace[name]
        if not callable(fn):
            return Error("not_callable", f"`{name}` should be a function, got {_safe_type_name_of(fn)}")
        return fn

    def call(self, name: str, *args, **kwargs) -> Any:
        """``name(*args, **kwargs)`` in the student's namespace, or an error record."""
        fn = self.function(name)
        if isinstance(fn, Error):
            return fn
        try:
            with time_limit(self.call_timeout):
                return fn(*args, **kwargs)
        except NotImplementedError:
            return Error("not_implemented", f"not implemented yet: `{name}` raises NotImplementedError")
        except CallTimeout:
            return Error("timeout", f"`{name}` did not finish within {self.call_timeout:g} s "
                                    f"(an endless loop?)")
        except OutputFlood as exc:
            return Error("output_flood", f"`{name}` {exc}")
        except ForbiddenCall as exc:
            return Error("forbidden", str(exc))
        except BaseException as exc:  # SystemExit included: it is the student's error
            return Error("raised", f"`{name}` raised {describe(exc)}", exc)

    def answer(self, name: str) -> Any:
        """The answer variable ``name``, or an error record when it is missing or still None."""
        if name not in self.namespace:
            return Error("missing", f"`{name}` is not defined (did its cell fail to load?)")
        value = self.namespace[name]
        if value is None:
            return Error("not_answered", f"not answered: `{name}` is still None")
        return value

    def answers(self, *names: str) -> dict:
        """{name: answer(name)} for each name."""
        return {name: self.answer(name) for name in names}


def _safe_type_name_of(value: Any) -> str:
    try:
        return str(type(value).__name__)[:80]
    except Exception:
        return "object"
