"""The grader serves honest students: full marks for right work, partial credit per check, a
reason for each lost point, and a broken submission costs one item, not the batch.

The runner is tested on the small example chapter (course_lib.grading.example), so these
tests do not change when a chapter's exercises are rewritten; tests/test_grading_chapters.py
covers every registered chapter, tests/test_grading_hostile.py the attacks. One batch of
made-up students is graded once with short limits; each is the example's solution with one
thing broken, so every expected score is known.
"""
from __future__ import annotations

import ast
import contextlib
import csv
import importlib.util
import io
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest
import torch

from course_lib.grading import Fail, Got, Item, check, example, public_checks
from course_lib.grading.__main__ import main as grading_main
from course_lib.grading.checks import run_checks
from course_lib.grading.student import Error
from course_lib.grading.protocol import FrameReader, ProtocolError, decode_value, message, roundtrip
from course_lib.grading.runner import (COLUMNS, TOTAL, _statements, find_submissions, read_cells,
                                       safe_cell)

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "02_gradient_saliency.py"  # a real solution file (hidden from students)
CHAPTER = "course_lib.grading.example"
FULL = {item.name: item.max_points for item in example.ITEMS}
pytestmark = pytest.mark.timeout(600)  # the batch is graded once, in the first test that needs it
TIMEOUT = 4  # seconds per item: short, so the hanging student costs little

_spec = importlib.util.spec_from_file_location("make_exercises", ROOT / "scripts" / "make_exercises.py")
make_exercises = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_exercises)


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


def student(replace: dict[str, str] | None = None, insert: dict[str, str] | None = None,
            source: str = example.SOLUTION):
    """The example's solution with the cell defining each key of ``replace`` swapped for its
    value, and ``insert`` cells placed before the cell defining each key."""
    nb = jupytext.reads(source, fmt="py:percent")
    cells = []
    for cell in nb.cells:
        names = defined_names(cell.source) if cell.cell_type == "code" else set()
        for name, src in (insert or {}).items():
            if name in names:
                cells.append(nbformat.v4.new_code_cell(src))
        for name, src in (replace or {}).items():
            if name in names:
                cell = nbformat.v4.new_code_cell(src, metadata=cell.metadata)
        cells.append(cell)
    nb.cells = cells
    return nb


def exercise():
    return make_exercises.exercise_from(jupytext.reads(example.SOLUTION, fmt="py:percent"))


RIGHT = '''
def scale(x, factor):
    if factor < 0:
        raise ValueError(factor)
    return x * factor
'''
STUDENTS = {
    "raises": {"scale": "def scale(x, factor):\n    return 1 / 0\n"},
    "hangs": {"scale": "def scale(x, factor):\n    while True:\n        pass\n"},
    "floods": {"scale": "def scale(x, factor):\n    while True:\n        print('still scaling...')\n"},
    "exits": {"scale": "def scale(x, factor):\n    import os\n    os._exit(1)\n"},
    "cheats": {"scale": "def scale(x, factor):\n    import course_lib\n"
                        "    return course_lib.reduce_channels(x[:, None], 'signed') * factor\n"},
    # in place (loses 'leaves x'), no ValueError (loses that check), one wrong answer
    "partial": {"scale": "def scale(x, factor):\n    x.mul_(factor)\n    return x.clone()\n",
                "answer_half": "answer_half = 0.5\nanswer_letter = 'a'\n"},
}
PARTIAL_POINTS = {"scale": 2, "questions": 1}
# Broken at load: a syntax error, a raising cell and an endless cell, each before an answer
# cell. The definitions after them still load: full marks.
LOAD_TROUBLE = {"scale": "def oops(:\n    pass", "answer_half": "undefined_name + 1\nwhile True:\n    pass"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the whole batch once with the command's entry point; (rows, seconds, stdout, folder)."""
    subs = tmp_path_factory.mktemp("submissions")
    nbformat.write(student(), subs / "solution.ipynb")
    nbformat.write(exercise(), subs / "stub.ipynb")
    for name, swaps in STUDENTS.items():
        nbformat.write(student(swaps), subs / f"{name}.ipynb")
    jupytext.write(student({"scale": "def scale(x, factor):\n    return 1 / 0\n"}), subs / "raises_py.py",
                   fmt="py:percent")
    nbformat.write(student(insert=LOAD_TROUBLE), subs / "load_trouble.ipynb")
    (subs / "in_folder").mkdir()  # a student who hands in a folder
    jupytext.write(student(), subs / "in_folder" / "00_example.py", fmt="py:percent")
    (subs / "in_folder" / "notes.txt").write_text("not a submission")
    (subs / "empty_folder").mkdir()
    (subs / "broken.ipynb").write_text("{ not json")
    nbformat.write(student(), subs / "both.ipynb")  # both formats: the .ipynb is graded
    (subs / "both.py").write_text("this is not python")
    # Plain scripts: Jupyter's "Download .py" (In[] markers) and one without markers.
    plain = jupytext.writes(student(), fmt="py:light").replace("# +\n", "# In[ ]:\n").replace("# -\n", "")
    (subs / "plain_jupyter.py").write_text("#!/usr/bin/env python\n# coding: utf-8\n" + plain)
    (subs / "plain_colab.py").write_text('"""Automatically generated by Colab."""\n'
                                         + RIGHT + "\nanswer_half = 0.5\nanswer_letter = 'B'\n"
                                         "!pip install something\n")
    out = subs.parent / "grades.csv"
    start = time.monotonic()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = grading_main([CHAPTER, str(subs), "--out", str(out), "--timeout", str(TIMEOUT),
                             "--output-limit", "10000"])
    seconds = time.monotonic() - start
    assert code == 0
    with open(out, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == COLUMNS
        rows = list(reader)
    return rows, seconds, printed.getvalue(), subs


def by_student(rows, name):
    return {r["item"]: r for r in rows if r["student"] == name}


def points(rows, name):
    return {item: float(r["points"]) for item, r in by_student(rows, name).items() if item != TOTAL}


# --- the batch ----------------------------------------------------------------------------


def test_batch_makes_one_csv_with_a_row_per_student_and_item_and_a_total(graded):
    rows, seconds, stdout, _ = graded
    students = sorted({r["student"] for r in rows})
    assert len(students) == 16
    assert len(rows) == len(students) * (len(example.ITEMS) + 1)
    for name in students:
        got = by_student(rows, name)
        assert list(got) == [i.name for i in example.ITEMS] + [TOTAL]
        assert float(got[TOTAL]["points"]) == sum(points(rows, name).values())
        assert float(got[TOTAL]["max_points"]) == sum(FULL.values()) == 6
    assert f"graded {len(students)} submission(s)" in stdout
    assert "protections active:" in stdout
    print(f"batch of {len(students)} graded in {seconds:.1f} s")


def test_solution_scores_full_marks_in_every_format(graded):
    rows, *_ = graded
    for name in ("solution", "in_folder", "plain_jupyter", "plain_colab", "both"):
        assert points(rows, name) == FULL, by_student(rows, name)
        assert all(r["reason"] == "" for item, r in by_student(rows, name).items() if item != TOTAL)


def test_plain_scripts_skip_the_demo_and_check_cells_and_report_no_load_problems(graded):
    rows, *_ = graded
    assert by_student(rows, "plain_jupyter")[TOTAL]["reason"] == ""


def test_both_formats_handed_in_says_which_was_graded(graded):
    rows, *_ = graded
    assert by_student(rows, "both")[TOTAL]["reason"] == "graded both.ipynb; ignored both.py"


def test_untouched_exercise_scores_zero_with_a_reason(graded):
    rows, *_ = graded
    assert set(points(rows, "stub").values()) == {0}
    stub = by_student(rows, "stub")
    assert "NotImplementedError" in stub["scale"]["reason"]
    assert "still None" in stub["questions"]["reason"]


def test_raising_function_loses_only_what_it_breaks_and_says_where(graded):
    rows, *_ = graded
    for name in ("raises", "raises_py"):
        got = by_student(rows, name)
        assert points(rows, name) == {**FULL, "scale": 0}
        assert "ZeroDivisionError" in got["scale"]["reason"]
        assert "code cell" in got["scale"]["reason"]  # says where in the notebook


def test_endless_loop_is_stopped_and_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "hangs")
    assert points(rows, "hangs") == {**FULL, "scale": 0}
    assert got["scale"]["status"] == "timeout"


def test_output_flood_is_stopped_and_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "floods")
    assert points(rows, "floods") == {**FULL, "scale": 0}
    assert got["scale"]["status"] == "output_flood"
    assert "10000 characters" in got["scale"]["reason"]


def test_calling_the_library_function_the_item_asks_for_scores_zero(graded):
    rows, *_ = graded
    got = by_student(rows, "cheats")
    assert points(rows, "cheats") == {**FULL, "scale": 0}
    assert got["scale"]["status"] == "forbidden"
    assert "course_lib.reduce_channels" in got["scale"]["reason"]


def test_partly_right_submission_gets_partial_credit_and_a_reason_per_lost_point(graded):
    rows, *_ = graded
    got = by_student(rows, "partial")
    assert points(rows, "partial") == PARTIAL_POINTS
    reason = got["scale"]["reason"]
    assert "in place" in reason and "ValueError" in reason and reason.count(" | ") == 1
    assert "answer_letter" in got["questions"]["reason"]


def test_process_that_dies_loses_only_its_item(graded):
    rows, *_ = graded
    got = by_student(rows, "exits")
    assert points(rows, "exits") == {**FULL, "scale": 0}
    assert got["scale"]["status"] == "crashed"
    assert "exit code 1" in got["scale"]["reason"]


def test_cells_that_fail_to_load_do_not_hide_the_others(graded):
    rows, *_ = graded
    assert points(rows, "load_trouble") == FULL
    note = by_student(rows, "load_trouble")[TOTAL]["reason"]  # the grader still hears about them
    assert "SyntaxError" in note and "NameError" in note, note


def test_missing_or_unreadable_submissions_score_zero_with_a_reason(graded):
    rows, *_ = graded
    for name, words in (("empty_folder", "no .ipynb or .py"), ("broken", "could not read")):
        for item, r in by_student(rows, name).items():
            if item != TOTAL:
                assert (r["points"], r["status"]) == ("0", "no_submission")
                assert words in r["reason"]


def test_every_student_gets_a_feedback_file_with_items_points_and_reasons(graded):
    rows, _, _, subs = graded
    folder = subs.parent / "grades_feedback"
    names = sorted(p.stem for p in folder.iterdir())
    assert names == sorted({r["student"] for r in rows})
    text = (folder / "partial.txt").read_text()
    assert "Total: 3 / 6" in text and "scale: 2 / 4" in text and "in place" in text


@pytest.mark.slow
def test_the_command_line_grades_a_folder(tmp_path):
    """The documented command, in a fresh process."""
    (tmp_path / "subs" / "dana").mkdir(parents=True)
    nbformat.write(student(), tmp_path / "subs" / "dana" / "00_example.ipynb")
    run = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", CHAPTER, "subs", "--out", "grades.csv"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert "dana" in run.stdout and "6 / 6" in run.stdout
    with open(tmp_path / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["item"], r["points"]) for r in rows][-1] == (TOTAL, "6")
    assert (tmp_path / "grades_feedback" / "dana.txt").exists()


def test_unknown_chapter_is_a_clear_error(tmp_path, capsys):
    assert grading_main(["99", str(tmp_path)]) == 2
    assert "chapters with exercises:" in capsys.readouterr().err


# --- public checks, where students work ---------------------------------------------------------


def _namespace(nb) -> dict:
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and not {"skip-grading"} & set(cell.metadata.get("tags", [])):
            exec(cell.source, ns)
    return ns


def test_public_checks_print_what_passes_and_hide_the_hidden_ones(capsys):
    ns = _namespace(student({"answer_half": "answer_half = 0.25\nanswer_letter = 'B'\n"}))
    capsys.readouterr()
    rows = public_checks(CHAPTER, "scale", ns)
    text = capsys.readouterr().out
    assert "PASS  multiplies by the factor" in text
    assert "(hidden)" in text and "2 points in hidden checks" in text
    assert [r[1] for r in rows] == [2, 0, 0]  # hidden checks earn nothing here
    public_checks(CHAPTER, "questions", ns)
    text = capsys.readouterr().out
    assert "ok    half of one (hidden; your answer has the right form)" in text  # 0.25: wrong, not told


def test_public_checks_show_the_students_errors(capsys):
    ns = _namespace(exercise())
    capsys.readouterr()
    public_checks(CHAPTER, "scale", ns)
    assert "FAIL  multiplies by the factor: not implemented yet" in capsys.readouterr().out
    public_checks(CHAPTER, "questions", ns)
    assert "not answered: `answer_half` is still None" in capsys.readouterr().out


# --- the checks' side ---------------------------------------------------------------------


def test_a_broken_check_costs_its_points_with_a_reason_and_names_are_unique():
    @check("boom")
    def boom(got):
        raise KeyError("x")

    @check("fine", points=2)
    def fine(got):
        pass

    item = Item("it", checks=(boom, fine))
    assert run_checks(item, Got({})) == [("boom", 0.0, 1.0, "grader error in this check: KeyError: 'x'"),
                                         ("fine", 2.0, 2.0, "")]
    with pytest.raises(ValueError):
        Item("bad", checks=(boom, boom))  # two checks, one name


def test_got_validates_type_shape_and_finiteness():
    got = Got(roundtrip({"t": torch.ones(2, 3), "n": np.ones((2, 3)), "nan": torch.tensor([float("nan")]),
                         "s": " (b) ", "num": "0.5", "flag": True, "err": Error("raised", "`f` raised X")}))
    assert got.tensor("t", shape=(2, 3)).dtype == torch.float64
    for key, kwargs, words in (("t", {"shape": (3, 2)}, "shape (2, 3), expected (3, 2)"),
                               ("n", {}, "numpy.ndarray, expected a torch.Tensor"),
                               ("nan", {}, "NaN or inf"), ("err", {}, "`f` raised X")):
        with pytest.raises(Fail, match=words.replace("(", r"\(").replace(")", r"\)")):
            got.tensor(key, **kwargs)
    assert got.choice("s", ("A", "B")) == "B" and got.number("num") == 0.5 and got.flag("flag")
    with pytest.raises(Fail, match="should be a number, got bool"):
        got.number("flag")


# --- the wire format ----------------------------------------------------------------------


def _decode(header: dict, blobs=()):
    [(h, b)] = FrameReader(1 << 20).feed(message(header, list(blobs)))
    return decode_value(h["values"], b)


def test_arrays_cross_as_raw_bytes_with_dtype_and_shape():
    a = np.arange(6, dtype="<f8").reshape(2, 3)
    got = _decode({"values": {"__array__": 0, "kind": "tensor", "dtype": "<f8", "shape": [2, 3]}}, [a.tobytes()])
    assert got.kind == "tensor" and np.array_equal(got.data, a)


@pytest.mark.parametrize("values, blobs, words", [
    ({"__array__": 0, "kind": "tensor", "dtype": "|O", "shape": [1]}, [b"x" * 8], "dtype"),
    ({"__array__": 0, "kind": "tensor", "dtype": "<f8", "shape": [3]}, [b"x" * 8], "do not match"),
    ([{"__array__": 0, "kind": "tensor", "dtype": "|u1", "shape": [1]}] * 2, [b"x"], "blob index"),
    ({"__error__": {"kind": "pwned", "message": "x"}}, [], "error record"),
    ({"__float__": "1e999"}, [], "float"),
], ids=["object-dtype", "size-mismatch", "blob-reused", "bad-error-kind", "bad-float"])
def test_malformed_values_are_refused(values, blobs, words):
    with pytest.raises(ProtocolError, match=words):
        _decode({"values": values}, blobs)


def test_the_reader_refuses_oversized_and_deeply_nested_messages():
    with pytest.raises(ProtocolError, match="header of"):
        FrameReader(1 << 30).feed(b"GRD1" + struct.pack(">I", 0xFFFFFFF0))
    with pytest.raises(ProtocolError, match="more than"):
        FrameReader(100).feed(b"x" * 101)
    deep = json.dumps({"values": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}).encode()
    with pytest.raises(ProtocolError, match="nested"):
        decode_value(json.loads(deep)["values"], [])
    with pytest.raises(ProtocolError, match="malformed"):
        FrameReader(1 << 20).feed(b"GRD1" + struct.pack(">I", 5) + b"[[[[[")


# --- finding and reading submissions (no grading) -----------------------------------------


def test_ipynb_wins_over_py_and_hidden_files_and_links_are_ignored(tmp_path):
    for name in ("alice.ipynb", "alice.py", "bob.py", ".hidden.py", "notes.md"):
        (tmp_path / name).write_text("")
    (tmp_path / "eve.py").symlink_to(SOLUTION)
    (tmp_path / "mallory").mkdir()
    (tmp_path / "mallory" / "linked").symlink_to(SOLUTION.parent, target_is_directory=True)
    (tmp_path / "carol" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "carol" / ".ipynb_checkpoints" / "02_x-checkpoint.ipynb").write_text("")
    (tmp_path / "carol" / "02_gradient_saliency.ipynb").write_text("")
    (tmp_path / "carol" / "scratch.py").write_text("")
    subs = {s.student: (s.path.name if s.path else None, s.note)
            for s in find_submissions(tmp_path, "02_gradient_saliency")}
    mallory = next(s for s in find_submissions(tmp_path, "02_gradient_saliency") if s.student == "mallory")
    assert mallory.path is None and "no .ipynb or .py" in mallory.problem
    del subs["mallory"]
    assert subs == {"alice": ("alice.ipynb", "graded alice.ipynb; ignored alice.py"), "bob": ("bob.py", ""),
                    "carol": ("02_gradient_saliency.ipynb", "")}


def test_skipped_cells_and_magics_are_not_run(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\nx = 1\n!pip install foo"),
        nbformat.v4.new_code_cell("slow()", metadata={"tags": ["skip-grading"]}),
        nbformat.v4.new_code_cell("public_checks('02', 'a')", metadata={"tags": ["public-checks"]}),
        nbformat.v4.new_code_cell("y = x + 1"),
    ])
    nbformat.write(nb, tmp_path / "a.ipynb")
    assert read_cells(tmp_path / "a.ipynb") == [
        ("code cell 1", "# %matplotlib inline\nx = 1\n# !pip install foo"),
        ("code cell 4", "y = x + 1"),
    ]


def test_a_plain_script_leaves_out_the_statements_of_demo_and_check_cells(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import torch\n" + RIGHT + "\nprint(scale(torch.ones(2), 2.0))\n"
                      "public_checks('course_lib.grading.example', 'scale')\nanswer_half = 0.5\n")
    sources = [src for _, src in read_cells(script, example)]
    assert sources[0] == "import torch" and sources[-1] == "answer_half = 0.5"
    assert not any("print(" in s or "public_checks" in s for s in sources)


def test_a_plain_script_is_split_into_statements_even_when_it_does_not_parse():
    ok = "import torch\n\n@dec\ndef f():\n    return 1\n\nx = f()\n"
    assert [line for line, _ in _statements(ok)] == [1, 3, 7]
    broken = "def f(:\n    pass\n\ndef g():\n    return 2\nelse_ = 3\n"
    chunks = _statements(broken)
    assert [line for line, _ in chunks] == [1, 4, 6]
    assert compile(chunks[1][1], "<g>", "exec")


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped():
    assert safe_cell("=1+2") == "'=1+2"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-cmd") == "'-cmd"
    assert safe_cell("fine\x1b[31m") == "fine [31m"
    assert len(safe_cell("x" * 10_000)) == 4000


# --- the generator ------------------------------------------------------------------------


def test_generator_stubs_functions_and_answers_and_drops_hidden_parts():
    src = ("def f(x):\n    # YOUR ANSWER\n    ### BEGIN SOLUTION\n    y = x\n    return y\n"
           "    ### END SOLUTION\n\n### BEGIN SOLUTION\na = 1  # why\nb = c = 'x'\n### END SOLUTION\n"
           "### BEGIN HIDDEN TESTS\nassert f(1) == 1\n### END HIDDEN TESTS\n")
    assert make_exercises.strip_source(src, "cell") == (
        "def f(x):\n    # YOUR ANSWER\n    raise NotImplementedError\n\na = None\nb = None\nc = None\n")
    with pytest.raises(ValueError, match="without"):
        make_exercises.strip_source("### BEGIN SOLUTION\nx = 1\n", "cell 3")
    nb = jupytext.reads("# %%\nx = 1\n\n# %% tags=[\"solution-only\"]\nsecret = 2\n", fmt="py:percent")
    assert [c.source for c in make_exercises.exercise_from(nb).cells] == ["x = 1"]


# --- honest mistakes in chapter 02's SmoothGrad lose only the checks about them ------------


SMOOTHGRAD = '''
def smoothgrad(model, inputs, target=None, n_samples=25, noise_level=0.15, seed=0):
    x = inputs.detach()
    n = x.shape[0]
    if target is None:
        with torch.no_grad():
            target = model(x).argmax(dim=1)
    target = torch.as_tensor(target).long().flatten().expand(n)
    flat = x.flatten(1)
    sigma = SIGMA
    noise = torch.randn((n_samples, *x.shape[1:]), generator=torch.Generator().manual_seed(seed)).to(x)
    total = torch.zeros_like(x)
    for i in range(n_samples):
        noisy = (x + sigma.view(n, 1, 1, 1) * noise[i]).requires_grad_(True)
        score = model(noisy).gather(1, target.view(n, 1)).sum()
        (grad,) = torch.autograd.grad(score, noisy)
        total += grad
    return total / DIVISOR
'''


def _smoothgrad_verdicts(sigma: str, divisor: str) -> dict[str, float]:
    import course_lib.grading.ch02 as ch02

    ns = {"torch": torch}
    exec(SMOOTHGRAD.replace("SIGMA", sigma).replace("DIVISOR", divisor), ns)
    rows = public_checks("02", ch02.SMOOTHGRAD.name, ns, hidden=True, quiet=True)
    return {name: p for name, p, m, _ in rows}


def test_smoothgrad_noise_scale_bug_loses_only_the_noise_checks():
    right = _smoothgrad_verdicts("noise_level * (flat.amax(dim=1) - flat.amin(dim=1))", "n_samples")
    assert all(p > 0 for p in right.values()), right
    wrong = _smoothgrad_verdicts("noise_level * torch.ones(n, dtype=x.dtype)", "n_samples")
    lost = {name for name, p in wrong.items() if p == 0}
    assert lost and all(("noise" in n or "range" in n) and "target" not in n for n in lost), lost


def test_smoothgrad_sample_count_bug_loses_only_the_averaging_check():
    wrong = _smoothgrad_verdicts("noise_level * (flat.amax(dim=1) - flat.amin(dim=1))", "(n_samples + 1)")
    lost = [name for name, p in wrong.items() if p == 0]
    assert len(lost) == 1 and "averag" in lost[0], lost


def test_smoothgrad_target_of_each_noisy_copy_loses_only_the_target_check():
    import course_lib.grading.ch02 as ch02

    per_copy = SMOOTHGRAD.replace("SIGMA", "noise_level * (flat.amax(dim=1) - flat.amin(dim=1))").replace(
        "DIVISOR", "n_samples").replace(
        "score = model(noisy).gather(1, target.view(n, 1)).sum()",
        "out = model(noisy)\n        t = out.argmax(dim=1) if given is None else target\n"
        "        score = out.gather(1, t.view(n, 1)).sum()").replace(
        "    x = inputs.detach()", "    given = target\n    x = inputs.detach()")
    ns = {"torch": torch}
    exec(per_copy, ns)
    rows = public_checks("02", ch02.SMOOTHGRAD.name, ns, hidden=True, quiet=True)
    lost = [name for name, p, m, _ in rows if p == 0]
    assert len(lost) == 1 and "target" in lost[0], lost
