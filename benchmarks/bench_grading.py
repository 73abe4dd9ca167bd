"""How long grading a class takes: 200 honest submissions of chapter 02, on the machine's cores.

The class is the solution handed in four ways (notebook, jupytext script, Jupyter's plain
"Download .py", a folder) and a quarter with an honest mistake (one item partly wrong), so
the checks see both passing and failing work. Prints seconds in total and per submission and
writes benchmarks/results/grading.json (see benchmarks/_results.py).

    python benchmarks/bench_grading.py [n_students] [jobs]
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
from _results import machine, write

from course_lib.grading.chapters import chapter_module
from course_lib.grading.runner import TOTAL, grade_folder

ROOT = Path(__file__).resolve().parents[1]


def make_class(folder: Path, n: int, exercise: str) -> None:
    """``n`` submissions of the chapter's solution in the four formats; every fourth with a mistake."""
    solution = nbformat.read(ROOT / "solutions" / f"{exercise}.ipynb", as_version=4)
    wrong = nbformat.from_dict(solution)
    for cell in wrong.cells:  # an honest slip: a wrong multiple-choice answer
        if cell.cell_type == "code" and 'answer_samples = "C"' in cell.source:
            cell.source = cell.source.replace('answer_samples = "C"', 'answer_samples = "A"')
    from nbconvert import PythonExporter

    for k in range(n):
        nb = wrong if k % 4 == 3 else solution
        name = f"student{k:03d}"
        kind = k % 4
        if kind == 0:
            nbformat.write(nb, folder / f"{name}.ipynb")
        elif kind == 1:
            jupytext.write(nb, folder / f"{name}.py", fmt="py:percent")
        elif kind == 2:
            (folder / f"{name}.py").write_text(PythonExporter().from_notebook_node(nb)[0])
        else:
            (folder / name).mkdir()
            nbformat.write(nb, folder / name / f"{exercise}.ipynb")


def main(n: int = 200, jobs: int | None = None) -> None:
    module = chapter_module("02")
    jobs = jobs or len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        subs = work / "subs"
        subs.mkdir()
        make_class(subs, n, module.EXERCISE)
        start = time.perf_counter()
        rows = grade_folder("02", subs, work / "grades.csv", jobs=jobs)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    totals = [r for r in rows if r.item == TOTAL]
    full = sum(r.points == r.max_points for r in totals)
    items = len(module.ITEMS)
    print(f"graded {len(totals)} submissions of chapter 02 ({items} items each, one process per item) "
          f"with {jobs} jobs on {os.cpu_count()} cores in {seconds:.1f} s: "
          f"{seconds / len(totals):.3f} s per submission, {seconds / (len(totals) * items):.3f} s per item")
    print(f"{full} at full marks, {len(totals) - full} with the planted mistake")
    print("protections: " + "; ".join(rows.protections))
    write("grading", [{"what": f"{len(totals)} submissions of chapter 02, {items} items each, {jobs} jobs",
                       "seconds": round(seconds, 1), "per_submission_s": round(seconds / len(totals), 3),
                       "per_item_s": round(seconds / (len(totals) * items), 3)}],
          title="Grading a class", note="Each item in its own isolated process forked from a "
          "server with torch imported; includes the server's start-up. " + f"Machine: {machine()['cpu']}.")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else None)
