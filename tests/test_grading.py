"""The autograder: solutions score full marks, stubs zero, and a bad submission costs one item.

One batch of made-up students is graded once, through the command's entry point, with a
short time limit; the tests then read its CSV. One test runs the real command line.
The students are the solution with one thing broken each, so every row's expected score is
known: full marks except where the break is.
"""
from __future__ import annotations

import ast
import contextlib
import csv
import io
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks

from course_lib.grading.__main__ import main as grading_main
from course_lib.grading import COLUMNS, TOTAL, find_submissions, read_cells
from course_lib.grading.ch02 import ITEMS

ROOT = Path(__file__).resolve().parents[1]
EXERCISE = ROOT / "exercises" / "02_gradient_saliency.py"
SOLUTION = ROOT / "solutions" / "02_gradient_saliency.py"
FULL = {item.name: item.max_points for item in ITEMS}
TIMEOUT = 5  # seconds per item: short, so the hanging student costs little


# --- making students ----------------------------------------------------------------------


def defined_names(source: str) -> set[str]:
    """Top-level functions and variables a cell defines."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def student(replace: dict[str, str] | None = None, insert: dict[str, str] | None = None):
    """The solution notebook with the answer cell defining each key of ``replace`` swapped for
    its value, and ``insert`` cells placed before the answer cell defining each key."""
    nb = jupytext.read(SOLUTION)
    cells = []
    for cell in nb.cells:
        names = defined_names(cell.source) if cell.cell_type == "code" else set()
        for name, source in (insert or {}).items():
            if name in names:
                cells.append(nbformat.v4.new_code_cell(source))
        for name, source in (replace or {}).items():
            if name in names:
                cell = nbformat.v4.new_code_cell(source, metadata=cell.metadata)
        cells.append(cell)
    nb.cells = cells
    return nb


RAISES = '''
def reduce_channels(attributions, how="max_abs"):
    return 1 / 0
'''
HANGS = '''
def smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0):
    while True:
        pass
'''
FLOODS = '''
def reduce_channels(attributions, how="max_abs"):
    while True:
        print("still reducing...")
'''
EXITS = '''
def reduce_channels(attributions, how="max_abs"):
    import os
    os._exit(1)  # takes the whole process down, with no result
'''
CHEATS = '''
def smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0):
    return cl.smoothgrad(model, inputs, target, n_samples=n_samples, noise_level=noise_level,
                         seed=seed, batch_size=None)
'''
# Partly right: sum_abs wrong, one wrong number, a wrong letter, and a SmoothGrad that takes
# the target of each noisy copy and leaves .grad on the model: 3 + 3 + 2 + 5 + 1 = 14 points.
PARTIAL = {
    "reduce_channels": '''
def reduce_channels(attributions, how="max_abs"):
    if how == "signed":
        return attributions.sum(dim=1)
    if how in ("max_abs", "sum_abs"):
        return attributions.abs().amax(dim=1)
    raise ValueError(how)
''',
    "answer_max_abs": '''
answer_max_abs = 0.5
answer_sum_abs = 1.1
answer_brighter = 1.1
answer_keeps_sign = "Signed"
''',
    "smoothgrad": '''
def smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0):
    x = inputs.detach()
    flat = x.flatten(1)
    sigma = noise_level * (flat.amax(dim=1) - flat.amin(dim=1))
    noise = torch.randn((n_samples, *x.shape[1:]), generator=torch.Generator().manual_seed(seed)).to(x)
    total = torch.zeros_like(x)
    for i in range(n_samples):
        noisy = (x + sigma.view(-1, 1, 1, 1) * noise[i]).requires_grad_(True)
        out = model(noisy)
        t = out.argmax(dim=1) if target is None else torch.as_tensor(target).long().flatten().expand(len(x))
        out.gather(1, t.view(-1, 1)).sum().backward()
        total += noisy.grad
    return total / n_samples
''',
    "answer_noise_level": '''
answer_noise_level = "b"
answer_samples = "A"
''',
}
PARTIAL_POINTS = {"reduce_channels": 3, "reductions_by_hand": 3, "gradient_x_input_zero": 2,
                  "smoothgrad": 5, "noise_and_samples": 1}

# Broken at load: a syntax error, a cell that raises and a cell that never ends, each before
# an answer cell. The definitions after them still load: full marks.
LOAD_TROUBLE = {
    "reduce_channels": "def oops(:\n    pass",
    "answer_max_abs": "undefined_name + 1",
    "answer_zero_pixel": "while True:\n    pass",
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole batch once with the real command; returns (rows, seconds, stdout)."""
    subs = tmp_path_factory.mktemp("submissions")
    nbformat.write(jupytext.read(SOLUTION), subs / "solution.ipynb")
    (subs / "stub.py").write_text(EXERCISE.read_text())
    jupytext.write(student({"reduce_channels": RAISES}), subs / "raises.py", fmt="py:percent")
    nbformat.write(student({"smoothgrad": HANGS}), subs / "hangs.ipynb")
    nbformat.write(student({"reduce_channels": FLOODS}), subs / "floods.ipynb")
    nbformat.write(student({"smoothgrad": CHEATS}), subs / "cheats.ipynb")
    nbformat.write(student({"reduce_channels": EXITS}), subs / "exits.ipynb")
    nbformat.write(student(PARTIAL), subs / "partial.ipynb")
    nbformat.write(student(insert=LOAD_TROUBLE), subs / "load_trouble.ipynb")
    (subs / "in_folder").mkdir()  # a student who hands in a folder
    jupytext.write(jupytext.read(SOLUTION), subs / "in_folder" / "02_gradient_saliency.py",
                   fmt="py:percent")
    (subs / "in_folder" / "notes.txt").write_text("not a submission")
    (subs / "empty_folder").mkdir()
    (subs / "broken.ipynb").write_text("{ not json")
    out = subs.parent / "grades.csv"
    start = time.monotonic()
    # The command's own entry point, called in this process: the grading processes fork from
    # a fresh server either way, and we save a second import of torch.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = grading_main(["02", str(subs), "--out", str(out), "--timeout", str(TIMEOUT),
                             "--output-limit", "10000"])
    seconds = time.monotonic() - start
    assert code == 0
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    return rows, seconds, printed.getvalue()


def by_student(rows, name):
    return {r["item"]: r for r in rows if r["student"] == name}


def points(rows, name):
    return {item: float(r["points"]) for item, r in by_student(rows, name).items() if item != TOTAL}


# --- the batch ----------------------------------------------------------------------------


def test_batch_makes_one_csv_with_a_row_per_student_and_item_and_a_total(graded):
    rows, seconds, stdout = graded
    students = ["broken", "cheats", "empty_folder", "exits", "floods", "hangs", "in_folder", "load_trouble",
                "partial", "raises", "solution", "stub"]
    assert sorted({r["student"] for r in rows}) == students
    assert len(rows) == len(students) * (len(ITEMS) + 1)
    for name in students:
        got = by_student(rows, name)
        assert list(got) == [i.name for i in ITEMS] + [TOTAL]
        assert float(got[TOTAL]["points"]) == sum(points(rows, name).values())
        assert float(got[TOTAL]["max_points"]) == sum(FULL.values()) == 19
    assert f"graded {len(students)} submission(s)" in stdout
    print(f"batch of {len(students)} graded in {seconds:.1f} s")


def test_solution_scores_full_marks_in_both_formats(graded):
    rows, *_ = graded
    for name in ("solution", "in_folder"):
        assert points(rows, name) == FULL, by_student(rows, name)
        assert all(r["reason"] == "" for r in by_student(rows, name).values())


def test_untouched_stub_scores_zero_with_a_reason(graded):
    rows, *_ = graded
    assert set(points(rows, "stub").values()) == {0}
    stub = by_student(rows, "stub")
    assert "NotImplementedError" in stub["smoothgrad"]["reason"]
    assert "still None" in stub["noise_and_samples"]["reason"]


def test_raising_function_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "raises")
    assert points(rows, "raises") == {**FULL, "reduce_channels": 0}
    assert "ZeroDivisionError" in got["reduce_channels"]["reason"]
    assert "code cell" in got["reduce_channels"]["reason"]  # says where in the notebook


def test_endless_loop_is_killed_and_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "hangs")
    assert points(rows, "hangs") == {**FULL, "smoothgrad": 0}
    assert got["smoothgrad"]["status"] == "timeout"
    assert f"within {TIMEOUT} s" in got["smoothgrad"]["reason"]


def test_output_flood_is_stopped_and_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "floods")
    assert points(rows, "floods") == {**FULL, "reduce_channels": 0}
    assert got["reduce_channels"]["status"] == "output_flood"
    assert "10000 characters" in got["reduce_channels"]["reason"]


def test_calling_course_lib_smoothgrad_scores_zero(graded):
    rows, *_ = graded
    got = by_student(rows, "cheats")
    assert points(rows, "cheats") == {**FULL, "smoothgrad": 0}
    assert got["smoothgrad"]["status"] == "forbidden"
    assert "course_lib.smoothgrad" in got["smoothgrad"]["reason"]


def test_partly_right_submission_gets_partial_credit_and_a_reason_per_lost_point(graded):
    rows, *_ = graded
    got = by_student(rows, "partial")
    assert points(rows, "partial") == PARTIAL_POINTS
    assert got["reduce_channels"]["reason"].startswith("sum_abs")
    assert "answer_brighter" in got["reductions_by_hand"]["reason"]
    reason = got["smoothgrad"]["reason"]
    assert "target=None" in reason and "torch.autograd.grad" in reason
    assert reason.count(" | ") == 1  # two lost points, two reasons
    assert "answer_samples" in got["noise_and_samples"]["reason"]


def test_process_that_dies_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "exits")
    assert points(rows, "exits") == {**FULL, "reduce_channels": 0}
    assert got["reduce_channels"]["status"] == "crashed"
    assert "exit code 1" in got["reduce_channels"]["reason"]


def test_cells_that_fail_to_load_do_not_hide_the_others(graded):
    rows, *_ = graded
    assert points(rows, "load_trouble") == FULL
    # The grader still hears about them, on the TOTAL row.
    note = by_student(rows, "load_trouble")[TOTAL]["reason"]
    assert "SyntaxError" in note and "NameError" in note and "did not finish" in note, note


def test_missing_or_unreadable_submissions_score_zero_with_a_reason(graded):
    rows, *_ = graded
    for name, words in (("empty_folder", "no .ipynb or .py"), ("broken", "could not read")):
        for item, r in by_student(rows, name).items():
            if item != TOTAL:
                assert (r["points"], r["status"]) == ("0", "no_submission")
                assert words in r["reason"]


def test_the_command_line_grades_a_folder(tmp_path):
    """The documented command, in a fresh process: the solution in a student's folder."""
    (tmp_path / "subs" / "dana").mkdir(parents=True)
    nbformat.write(jupytext.read(SOLUTION), tmp_path / "subs" / "dana" / "02_gradient_saliency.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", "02", "subs", "--out", "grades.csv"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "dana" in run.stdout and "19 / 19" in run.stdout
    with open(tmp_path / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["item"], r["points"]) for r in rows][-1] == (TOTAL, "19")


def test_unknown_chapter_is_a_clear_error(tmp_path, capsys):
    assert grading_main(["99", str(tmp_path)]) == 2
    assert "chapters with exercises: 02" in capsys.readouterr().err


# --- finding and reading submissions (no grading) -----------------------------------------


def test_ipynb_wins_over_py_and_hidden_files_are_ignored(tmp_path):
    for name in ("alice.ipynb", "alice.py", "bob.py", ".hidden.py", "notes.md"):
        (tmp_path / name).write_text("")
    (tmp_path / "carol" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "carol" / ".ipynb_checkpoints" / "02_x-checkpoint.ipynb").write_text("")
    (tmp_path / "carol" / "02_gradient_saliency.ipynb").write_text("")
    (tmp_path / "carol" / "scratch.py").write_text("")
    subs = {s.student: s.path.name for s in find_submissions(tmp_path, "02_gradient_saliency")}
    assert subs == {"alice": "alice.ipynb", "bob": "bob.py", "carol": "02_gradient_saliency.ipynb"}


def test_skip_grading_cells_and_magics_are_not_run(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\n!pip install foo"),
        nbformat.v4.new_code_cell("slow()", metadata={"tags": ["skip-grading"]}),
        nbformat.v4.new_code_cell("y = x + 1"),
    ])
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert read_cells(tmp_path / "a.ipynb") == [
        ("code cell 1", "# %matplotlib inline\nx = 1\n# !pip install foo"),
        ("code cell 3", "y = x + 1"),
    ]


# --- the exercise and solution files ------------------------------------------------------


@pytest.mark.parametrize("source", [EXERCISE, SOLUTION], ids=["exercise", "solution"])
def test_py_and_ipynb_pair_agree_and_have_no_outputs(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    compare_notebooks(jupytext.read(source), nb, fmt="py:percent", compare_outputs=False)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_exercise_and_solution_differ_only_in_answer_cells():
    ex, sol = jupytext.read(EXERCISE), jupytext.read(SOLUTION)
    assert len(ex.cells) == len(sol.cells)
    answers = 0
    for e, s in zip(ex.cells, sol.cells):
        assert e.cell_type == s.cell_type and e.metadata == s.metadata
        if "answer" not in e.metadata.get("tags", []):
            assert e.source == s.source
            continue
        answers += 1
        assert defined_names(e.source) == defined_names(s.source)
        assert "raise NotImplementedError" in e.source or "= None" in e.source
        assert "NotImplementedError" not in s.source and "= None" not in s.source
        assert "# YOUR ANSWER" in e.source and "# YOUR ANSWER" in s.source
    assert answers == 5


def test_every_item_has_an_answer_cell_and_nothing_downloads():
    sol = jupytext.read(SOLUTION)
    code = [c.source for c in sol.cells if c.cell_type == "code"]
    defined = set().union(*(defined_names(c) for c in code))
    assert {"reduce_channels", "smoothgrad", "answer_max_abs", "answer_zero_pixel",
            "answer_noise_level"} <= defined
    imported = set()
    for src in code:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
    assert imported <= {"sys", "subprocess", "torch", "course_lib", "matplotlib"}
