"""Grade a folder of submissions into a CSV: find each student's file, run each item apart.

Every (student, item) pair runs in its own process (see ``sandbox``), forked from a server
process that has imported torch and course_lib once, so a process costs milliseconds rather
than the seconds a fresh ``import torch`` takes. The server never runs autograd itself:
children forked from a process that has can no longer use it.
"""
from __future__ import annotations

import csv
import importlib
import multiprocessing as mp
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from .chapters import CHAPTERS, chapter_module  # noqa: F401
from .sandbox import grade_item

SUFFIXES = (".ipynb", ".py")
SKIP_TAGS = ("skip-grading", "public-checks")  # slow "try it" demos and check cells are not run
COLUMNS = ("student", "item", "points", "max_points", "status", "reason")
TOTAL = "TOTAL"


@dataclass
class Row:
    """One line of the grades CSV."""

    student: str
    item: str
    points: float
    max_points: float
    status: str
    reason: str = ""


@dataclass
class Submission:
    """A student and their exercise file (``path`` is None when none was found: see ``problem``)."""

    student: str
    path: Path | None
    problem: str = ""


# --- finding and reading submissions ---------------------------------------------------------


def _visible(path: Path) -> bool:
    return not any(part.startswith(".") for part in path.parts)


def _pick(files: list[Path], exercise: str) -> tuple[Path | None, str]:
    """The exercise file among ``files``: named after the exercise if possible, .ipynb before .py."""
    if not files:
        return None, "no .ipynb or .py file found"
    named = [f for f in files if f.stem.startswith(exercise[:2])]
    pool = named or files
    for suffix in SUFFIXES:
        same = sorted(f for f in pool if f.suffix == suffix)
        if len(same) == 1:
            return same[0], ""
        if len(same) > 1:
            return None, f"several candidate files: {', '.join(f.name for f in same)}"
    return None, "no .ipynb or .py file found"


def find_submissions(folder: Path, exercise: str) -> list[Submission]:
    """One Submission per student, sorted by name.

    A file ``alice.ipynb`` or ``alice.py`` directly in ``folder`` is alice's submission (the
    .ipynb wins when both exist, as in a jupytext pair); a sub-folder ``alice/`` holds alice's
    files, and the one named like the exercise (``02_...``) is graded. Hidden files are ignored.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions folder {folder} does not exist")
    found: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = [f for f in entry.rglob("*") if f.is_file() and f.suffix in SUFFIXES
                     and _visible(f.relative_to(entry))]
            path, problem = _pick(files, exercise)
            found[entry.name] = Submission(entry.name, path, f"{entry.name}/: {problem}" if problem else "")
        elif entry.suffix in SUFFIXES:
            if entry.stem in found and found[entry.stem].path is not None:
                continue  # alice.ipynb came first in sorted order and wins over alice.py
            found[entry.stem] = Submission(entry.stem, entry)
    return [found[k] for k in sorted(found)]


def read_cells(path: Path) -> list[tuple[str, str]]:
    """The code cells to run, as (label, source); IPython magics and shell lines are commented out."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
    else:
        nb = jupytext.read(path, fmt="py:percent")
    cells, k = [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        k += 1
        if set(SKIP_TAGS) & set(cell.get("metadata", {}).get("tags", [])):
            continue
        lines = [("# " + line) if line.lstrip().startswith(("%", "!")) else line
                 for line in cell.source.splitlines()]
        cells.append((f"code cell {k}", "\n".join(lines)))
    return cells


# --- running one item -------------------------------------------------------------------------


def _context(preload: list[str]):
    """A forkserver: children fork from a clean server with torch imported (fast, autograd-safe)."""
    if "forkserver" not in mp.get_all_start_methods() or not hasattr(signal, "setitimer"):
        raise RuntimeError("grading needs a POSIX system (Linux, macOS, Colab): it forks a process "
                           "per item and stops runaway cells with an alarm signal")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    return ctx


def _kill(proc) -> None:
    """Kill the item's process and everything it started (it leads its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()
    proc.join()


def run_item(ctx, module_name: str, item, cells, skip: set[str], limits: dict,
             timeout: float) -> tuple[dict, list]:
    """Grade one item in its own process; returns (outcome, load problems)."""
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=grade_item, args=(sender, module_name, item.name, cells, sorted(skip), limits))
    proc.start()
    sender.close()
    # Loading the cells and running the checks each get ``timeout`` seconds (plus start-up).
    deadline = time.monotonic() + timeout + 5
    phase, current, flooded, problems, outcome = "load", None, False, [], None
    cell = None  # the cell being loaded
    try:
        while outcome is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(proc)
                if flooded:
                    outcome = {"status": "output_flood",
                               "reason": f"printed more than {limits['output_limit']} characters "
                                         f"and did not stop within {timeout:g} s"}
                elif phase == "load":
                    # Remember the stuck cell (an alarm cannot stop every loop): later items skip it.
                    if cell is not None:
                        problems.append((cell, "timeout", "was still running when loading was stopped"))
                    outcome = {"status": "timeout", "phase": "load",
                               "reason": f"loading the submission took more than {timeout + 5:g} s"}
                else:
                    where = f" in check '{current}'" if current else ""
                    outcome = {"status": "timeout",
                               "reason": f"did not finish within {timeout:g} s{where} (an endless loop?)"}
                break
            if not receiver.poll(min(remaining, 1.0)):
                continue
            try:
                kind, payload = receiver.recv()
            except (EOFError, OSError):
                proc.join(1)
                if phase == "load" and cell is not None:
                    problems.append((cell, "crashed", f"ended the process (exit code {proc.exitcode})"))
                outcome = {"status": "crashed", "phase": phase,
                           "reason": f"the grading process died (exit code {proc.exitcode}) "
                                     f"{'while loading' if phase == 'load' else 'in check ' + repr(current)}"}
                break
            if kind == "cell":
                cell = payload
            elif kind == "problem":
                problems.append(payload)
            elif kind == "loaded":
                phase = "checks"
                deadline = time.monotonic() + timeout
            elif kind == "check":
                current = payload
            elif kind == "flood":
                flooded = True
            elif kind == "result":
                outcome = payload
    finally:
        receiver.close()
        if proc.is_alive():
            _kill(proc)
        else:
            proc.join()
    return outcome, problems


# --- one student, a batch -------------------------------------------------------------------


def _fmt(points: float) -> str:
    return f"{points:g}"


def _load_summary(problems: list) -> str:
    """'while loading: code cell 4 error: NameError: ...; ...', or '' when every cell loaded."""
    shown = [f"{label} {status}: {detail}" for label, status, detail in problems if status != "skipped"]
    return f"while loading: {'; '.join(shown)}" if shown else ""


def _load_note(problems: list) -> str:
    summary = _load_summary(problems)
    return f" [{summary}]" if summary else ""


def item_row(student: str, item, outcome: dict, problems: list) -> Row:
    """Turn one item's outcome into a CSV row: points, status, and a reason per lost point."""
    status = outcome.get("status", "grader_error")
    if status != "graded":
        return Row(student, item.name, 0, item.max_points, status,
                   outcome.get("reason", "") + _load_note(problems))
    checks = outcome["checks"]
    points = sum(p for _, p, _, _ in checks)
    lost = [(name, reason) for name, p, m, reason in checks if p < m]
    reasons = {reason for _, reason in lost}
    if lost and len(lost) == len(checks) and len(reasons) == 1:
        text = f"all checks: {reasons.pop()}"  # e.g. an untouched stub: say it once
    else:
        text = " | ".join(f"{name}: {reason}" for name, reason in lost)
    if lost:
        text += _load_note(problems)
    return Row(student, item.name, points, item.max_points, status, text)


def grade_student(ctx, module, sub: Submission, limits: dict, timeout: float) -> list[Row]:
    """All item rows of one student, then their TOTAL row."""
    items = module.ITEMS
    rows: list[Row] = []
    cells, load_problems = None, {}
    problem = sub.problem
    if sub.path is not None:
        try:
            cells = read_cells(sub.path)
        except Exception as exc:  # invalid JSON, unreadable file
            problem = f"could not read {sub.path.name}: {type(exc).__name__}: {exc}"
    if cells is None:
        rows = [Row(sub.student, i.name, 0, i.max_points, "no_submission", problem) for i in items]
    else:
        skip: set[str] = set()
        for k, item in enumerate(items):
            while True:
                outcome, problems = run_item(ctx, module.__name__, item, cells, skip, limits, timeout)
                if k == 0:  # every item loads the same cells: report the first item's view
                    for problem in problems:
                        if problem[1] != "skipped":
                            load_problems.setdefault(problem[0], problem)
                # A cell that hung or killed the process once will again: skip it from now on,
                # and if it stopped the loading, grade this item again without it.
                stuck = {label for label, status, _ in problems if status in ("timeout", "crashed")}
                new, skip = stuck - skip, skip | stuck
                if not (new and outcome.get("phase") == "load"):
                    break
            rows.append(item_row(sub.student, item, outcome, problems))
    total = sum(r.points for r in rows)
    # The TOTAL row tells the grader about cells that failed to load, even at full marks.
    note = _load_summary(list(load_problems.values()))
    rows.append(Row(sub.student, TOTAL, total, sum(i.max_points for i in items), "", note))
    return rows


def grade_folder(chapter: str, folder: str | Path, out: str | Path | None = None, *,
                 timeout: float = 30.0, output_limit: int = 100_000,
                 progress=None) -> list[Row]:
    """Grade every submission in ``folder`` for ``chapter``; write the CSV to ``out`` if given.

    ``timeout``: seconds each item may take to load the submission, and again to run its
    checks (one cell may take at most half of it); ``output_limit``: characters a submission
    may print per cell and per item before it is stopped.
    """
    module = chapter_module(chapter)
    subs = find_submissions(Path(folder), module.EXERCISE)
    # "__main__": a script that calls grade_folder is imported once by the server, not per item.
    ctx = _context(["__main__", "course_lib.grading.sandbox", module.__name__,
                    *getattr(module, "PRELOAD", [])])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="grading-") as workdir:
        limits = {"output_limit": output_limit, "cell_timeout": timeout / 2, "workdir": workdir}
        for sub in subs:
            student_rows = grade_student(ctx, module, sub, limits, timeout)
            rows.extend(student_rows)
            if progress:
                progress(student_rows)
    if out is not None:
        write_csv(rows, out)
    return rows


def write_csv(rows: list[Row], out: str | Path) -> None:
    """Write the rows with the header ``COLUMNS``."""
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([r.student, r.item, _fmt(r.points), _fmt(r.max_points), r.status, r.reason])
