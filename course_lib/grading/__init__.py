"""Autograding: one command grades a folder of submissions into a CSV, and students check their
work where they write it.

    python -m course_lib.grading 02 path/to/submissions --out grades.csv
    make grade CHAPTER=02 SUBMISSIONS=path/to/submissions [OUT=grades.csv]

How to write an item (see ``ch02.py`` for a full chapter)
---------------------------------------------------------
An item is split at the trust boundary. A ``collect`` step runs in the student's process,
next to their code: it calls the student's functions on inputs it builds from fixed seeds and
returns a dict of plain data. The checks run in the grader's trusted process, which never
runs student code: they receive that data, already decoded and validated, rebuild the same
seeded inputs, compute the reference and compare::

    def collect(student):                       # student's process: no verdicts here
        x = images(seed=0)                      # seeded, so both sides build the same x
        return {"out": student.call("my_fn", x, k=3),   # result, or an error record
                "x_unchanged": bool(torch.equal(x, images(seed=0)))}

    @check("matches the reference", points=2)   # trusted process
    def same(got):
        want = reference_fn(images(seed=0), k=3)
        assert_close(got.tensor("out", like=want, what="my_fn(x, k=3)"), want, "my_fn(x, k=3)",
                     hint="what to look at when it differs")

    @check("leaves x alone", hidden=True)       # hidden: only the instructor's grading runs it
    def clean(got):
        if not got.flag("x_unchanged"):
            raise Fail("changed x in place: work on a copy")

    MY_FN = Item("my_fn", checks=(same, clean), collect=collect,
                 forbidden=("course_lib.my_fn",))  # library functions the item asks them to write

- ``student.call(name, *args, **kw)`` returns what the student's function returned, or an
  error record if it is missing, a stub (NotImplementedError), raises, hangs (``call_timeout``)
  or prints too much; ``student.answer(name)`` returns an answer variable, or an error record
  if it is missing or still None. Return tensors, arrays, numbers, strings, bools, lists and
  dicts; keys are strings. Compute flags (e.g. "input unchanged") in collect.
- ``got`` validates as it hands values out: ``got.tensor(key, shape=..|like=..)`` (float64,
  finite, a torch.Tensor of that shape), ``got.number``, ``got.choice(key, options)``,
  ``got.text``, ``got.flag``, ``got.raised(key, "ValueError")``, ``got.ok(key)``. Each
  raises ``Fail`` with a reason a student understands (including the student's own error for
  a call that raised); ``raise Fail("...")`` for your own verdicts. A check passes unless it
  raises; points are capped at the check's points, the item's total at its maximum.
- Questions need no collect step: ``Item("q", checks=(number_answer("answer_x", 0.5, title,
  hint), choice_answer("answer_y", "B", ("A", "B", "C", "D"), title, hint)))``. These are
  hidden by default: the student's check cell only confirms the answer's form.
- Register the chapter: ``EXERCISE = "NN_name"`` and ``ITEMS = (...)`` in
  ``course_lib/grading/chNN.py``, one line in ``chapters.CHAPTERS``; ``PRELOAD`` lists
  modules to import once in the grading server (e.g. a library whose function is forbidden).
- Try it as an author: ``public_checks("NN", "item", namespace, hidden=True)`` runs collect
  and every check in your own process (not isolated) and prints the verdicts.

The exercise notebook is generated from the solution (``make exercises``, see
``scripts/make_exercises.py``): mark answers with ``### BEGIN SOLUTION`` / ``### END
SOLUTION``; under each item put a cell tagged ``public-checks`` that calls
``public_checks("NN", "item")``; tag slow demo cells ``skip-grading``. The grader skips both.

What runs where
---------------
``runner`` (trusted: finds submissions, reads their cells as text, runs checks, writes the CSV
and feedback) sends each (student, item) job to ``server`` (a fresh interpreter with torch and
the chapter imported, never running student code), which forks a supervisor; the supervisor
creates namespaces and forks the student's process (``sandbox``), which locks itself in
(unprivileged user, read-only filesystem with solutions and submissions hidden, empty /tmp,
limits, cgroups, cleared environment, no network), loads the cells, runs ``collect`` and sends
plain data (``protocol``: JSON and raw array bytes, never pickle). The supervisor kills every
process of the job when it ends. Without root, user namespaces give most of this; without
namespaces, a process with limits. The command prints which protections were active.
``example.py`` is a complete small chapter to copy.

Submissions and the CSV
-----------------------
One entry per student in the folder: ``alice.ipynb`` or ``alice.py`` (jupytext percent, or a
plain script as Jupyter's or Colab's "Download .py" writes it; when both exist the
``.ipynb`` is graded and the CSV says the ``.py`` was ignored), or a folder ``alice/`` with
the file named like the exercise. The CSV has the columns ``student, item, points,
max_points, status, reason`` and a ``TOTAL`` row per student; beside it, one feedback file
per student. ``status``: graded (points may be partial), timeout, output_flood, crashed,
forbidden, invalid_result, no_submission, grader_error.
"""
from .chapters import CHAPTERS, chapter_module
from .checks import (Array, Check, Fail, Got, Item, StudentError, assert_close, check,
                     choice_answer, number_answer, unit_scale)
from .public import public_checks
from .student import Student

__all__ = ["CHAPTERS", "Array", "Check", "Fail", "Got", "Item", "Student", "StudentError",
           "assert_close", "chapter_module", "check", "choice_answer", "number_answer",
           "public_checks", "unit_scale",
           "COLUMNS", "TOTAL", "Row", "find_submissions", "grade_folder", "read_cells", "write_csv"]

_RUNNER = {"COLUMNS", "TOTAL", "Row", "find_submissions", "grade_folder", "read_cells", "write_csv"}


def __getattr__(name: str):
    # The runner needs jupytext and nbformat; students' check cells (e.g. on Colab) do not.
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'course_lib.grading' has no attribute {name!r}")
