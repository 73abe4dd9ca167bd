"""Autograding for the course's exercises: one command grades a folder of submissions into a CSV.

    python -m course_lib.grading 02 path/to/submissions --out grades.csv
    make grade CHAPTER=02 SUBMISSIONS=path/to/submissions [OUT=grades.csv]

**Submissions.** One per student, either a file directly in the folder (``alice.ipynb`` or
``alice.py`` in jupytext percent format; the student is the file name; when both exist the
``.ipynb`` is graded) or a sub-folder (``alice/``) holding the exercise file (the one named
``02_...``; ``.ipynb`` before ``.py``). Hidden files and folders are ignored.

**What runs.** Every code cell, in order, except cells tagged ``skip-grading`` (the slow "try
it" cells of an exercise); IPython magics and ``!`` shell lines are commented out. A cell that
raises, hangs or prints without end is recorded and the next cell still runs.

**Isolation.** Each (student, item) runs in its own process with a time limit (``--timeout``,
default 30 s to load the cells and again to run the checks) and an output limit: a submission
that raises, hangs or floods its output gets zero for that item, with the reason, and grading
goes on. Not a security sandbox: run untrusted code in a container.

**The CSV.** Columns ``student, item, points, max_points, status, reason``: one row per
student and item, then a row with item ``TOTAL`` per student. ``status`` is ``graded``
(checks ran; points may be partial), ``timeout``, ``output_flood``, ``crashed``, ``forbidden``
(called a course_lib function the item asks you to write), ``no_submission`` or
``grader_error``. ``reason`` names each failed check and why, separated by `` | ``.
"""
from .checks import Check, Fail, Item, check
from .runner import CHAPTERS, COLUMNS, TOTAL, Row, find_submissions, grade_folder, read_cells, write_csv

__all__ = ["CHAPTERS", "COLUMNS", "TOTAL", "Check", "Fail", "Item", "Row", "check",
           "find_submissions", "grade_folder", "read_cells", "write_csv"]
