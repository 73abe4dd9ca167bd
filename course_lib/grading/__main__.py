"""Command line: ``python -m course_lib.grading CHAPTER SUBMISSIONS [--out grades.csv]``."""
from __future__ import annotations

import argparse
import sys
import time

from .runner import TOTAL, grade_folder

EPILOG = """\
submissions folder, one entry per student:
  alice.ipynb  or  alice.py          a file named after the student (jupytext percent .py;
                                     when both exist the .ipynb is graded)
  bob/02_gradient_saliency.ipynb     or a folder named after the student, holding the file
                                     named like the exercise (.ipynb before .py)

CSV: one row per student and item, then a TOTAL row per student (its reason lists cells
that failed to load). status: graded (points may be partial), timeout, output_flood,
crashed, forbidden, no_submission, grader_error. reason: each failed check and why.

from the repository: make grade CHAPTER=02 SUBMISSIONS=dir [OUT=grades.csv]
"""


def main(argv: list[str] | None = None) -> int:
    """Grade a folder of submissions, write the CSV, print one line per student."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade a folder of exercise submissions into a CSV "
                    "(student, item, points, max_points, status, reason; a TOTAL row per student).",
        epilog=EPILOG)
    parser.add_argument("chapter", help="chapter number, e.g. 02")
    parser.add_argument("submissions", help="folder with one alice.ipynb / alice.py or alice/ per student")
    parser.add_argument("--out", default="grades.csv", help="CSV to write (default: grades.csv)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per item to load a submission, and again to run the checks (default 30)")
    parser.add_argument("--output-limit", type=int, default=100_000,
                        help="characters a submission may print per cell or item (default 100000)")
    args = parser.parse_args(argv)

    def progress(rows) -> None:
        total = rows[-1]
        problems = [f"{r.item}: {r.status}" for r in rows[:-1] if r.status not in ("graded",)]
        note = f"  ({', '.join(problems)})" if problems else ""
        print(f"{total.student:<24} {total.points:g} / {total.max_points:g}{note}", flush=True)

    start = time.monotonic()
    try:
        rows = grade_folder(args.chapter, args.submissions, args.out, timeout=args.timeout,
                            output_limit=args.output_limit, progress=progress)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = sum(r.item == TOTAL for r in rows)
    print(f"graded {n} submission(s) in {time.monotonic() - start:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
