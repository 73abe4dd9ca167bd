"""Public checks: the cell under each exercise item that students run where they work.

``public_checks("02", "smoothgrad")`` collects the item from the notebook's own names, runs
its public checks, and prints what passes and why not. Hidden checks are only named (for
answer variables it says whether the answer has the right form). It goes through the same
encoding and validation as the grader, so what passes here passes there, hidden checks aside.
Inside the grader these cells do nothing.
"""
from __future__ import annotations

import sys

from .chapters import chapter_module
from .checks import Got, run_checks
from .protocol import ProtocolError, roundtrip
from .student import Student, forbidden_guards

IN_GRADER = False  # the grading process sets it: public-checks cells then return at once


def public_checks(chapter: str, item: str, namespace: dict | None = None, *,
                  hidden: bool = False, quiet: bool = False) -> list[tuple[str, float, float, str]] | None:
    """Run the public checks of ``item`` on ``namespace`` (default: the caller's globals) and print them.

    Returns the rows (check, points, max_points, reason); hidden checks count 0 points here.
    ``hidden=True`` runs the hidden checks too, in this process (for exercise authors: it is
    not the isolated grading).
    """
    if IN_GRADER:
        return None
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    module = chapter_module(chapter)
    items = {i.name: i for i in module.ITEMS}
    if item not in items:
        raise ValueError(f"chapter {chapter} has no item {item!r}; items: {', '.join(items)}")
    it = items[item]
    called: list[str] = []
    with forbidden_guards(it.forbidden, called):
        values = it.gather(Student(namespace, call_timeout=None))
    try:
        got = Got(roundtrip(values))
    except ProtocolError as exc:
        raise RuntimeError(f"the item's collect step returned data the grader cannot read: {exc}")
    rows = run_checks(it, got, public=not hidden)
    if not quiet:
        print(report(it, rows, sorted(set(called)), public=not hidden))
    return rows


def report(item, rows, called: list[str], public: bool = True) -> str:
    """The text the public-checks cell prints."""
    shown = [(r, public and c.hidden) for r, c in zip(rows, item.checks)]
    open_rows = [r for r, h in shown if not h]
    hidden_points = sum(r[2] for r, h in shown if h)
    head = f"{item.name}:"
    if open_rows:
        head += f" {sum(r[1] for r in open_rows):g} / {sum(r[2] for r in open_rows):g} points in {'public' if public else 'all'} checks"
    if hidden_points:
        head += f"{',' if open_rows else ''} {hidden_points:g} points in hidden checks (run when your work is graded)"
    lines = [head]
    for (name, points, max_points, reason), hidden in shown:
        if not hidden:
            mark = "PASS" if points >= max_points else "FAIL"
            lines.append(f"  {mark}  {name}" + (f": {reason}" if reason else ""))
        elif reason.startswith("hidden: the format"):
            lines.append(f"  ok    {name} (hidden; your answer has the right form)")
        elif reason.startswith("hidden"):
            lines.append(f"  ?     {name} (hidden)")
        else:
            lines.append(f"  FAIL  {name} (hidden): {reason}")
    if called:
        lines.append(f"  NOTE  calls {', '.join(called)}: this item asks you to write it yourself, "
                     f"and the grader gives 0 points for using it")
    return "\n".join(lines)
