"""Every registered chapter: its solution scores full marks, its untouched exercise zero, and
the committed exercise is exactly what the generator makes from the solution.

A chapter author registers the chapter in course_lib/grading/chapters.py and these tests
cover it with no further code.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import jupytext
import pytest

from course_lib.grading import CHAPTERS, chapter_module
from course_lib.grading.runner import TOTAL, grade_folder

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "scripts" / "make_exercises.py")
make_exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exercises)

pytestmark = pytest.mark.parametrize("chapter", sorted(CHAPTERS))


@pytest.mark.timeout(600)
def test_solution_scores_full_marks_and_untouched_exercise_zero(chapter, tmp_path):
    module = chapter_module(chapter)
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(ROOT / "solutions" / f"{module.EXERCISE}.ipynb", subs / "solution.ipynb")
    shutil.copy(ROOT / "exercises" / f"{module.EXERCISE}.ipynb", subs / "exercise.ipynb")
    rows = grade_folder(chapter, subs, tmp_path / "grades.csv", timeout=60)
    got = {(r.student, r.item): r for r in rows}
    for item in module.ITEMS:
        sol = got["solution", item.name]
        assert (sol.points, sol.status, sol.reason) == (item.max_points, "graded", ""), sol
        ex = got["exercise", item.name]
        assert ex.points == 0 and ex.reason, ex
    assert got["solution", TOTAL].points == sum(i.max_points for i in module.ITEMS)


def test_committed_exercise_is_generated_from_the_solution(chapter):
    module = chapter_module(chapter)
    generated = make_exercises.generate(ROOT / "solutions" / f"{module.EXERCISE}.py")
    stale = [p.relative_to(ROOT) for p, text in generated.items()
             if not p.exists() or p.read_text() != text]
    assert not stale, f"out of date, run `make exercises`: {stale}"


def test_every_item_has_a_public_checks_cell_and_solution_markers(chapter):
    module = chapter_module(chapter)
    nb = jupytext.read(ROOT / "solutions" / f"{module.EXERCISE}.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    check_cells = " ".join(c.source for c in code if "public-checks" in c.metadata.get("tags", []))
    for item in module.ITEMS:
        assert f'"{item.name}"' in check_cells, f"no public-checks cell for item {item.name!r}"
    assert any(make_exercises.BEGIN in c.source for c in code)
    assert len({i.name for i in module.ITEMS}) == len(module.ITEMS)
