"""Command line: ``python -m course_lib.grading CHAPTER SUBMISSIONS [--out grades.csv]``."""
from __future__ import annotations

import argparse
import sys
import time

from .runner import TOTAL, grade_folder

EPILOG = """\
submissions folder, one entry per student:
  alice.ipynb  or  alice.py          a file named after the student (jupytext percent .py or
                                     a plain script; when both exist the .ipynb is graded)
  bob/02_gradient_saliency.ipynb     or a folder named after the student, holding the file
                                     named like the exercise (.ipynb before .py)

CSV: one row per student and item, then a TOTAL row per student (its reason lists cells
that failed to load, and which file was graded when there were two). status: graded
(points may be partial), timeout, output_flood, crashed, forbidden, invalid_result,
no_submission, grader_error. reason: each failed check and why. Beside the CSV,
<out>_feedback/ holds one text file per student.

Each item runs in a process of its own, as an unprivileged user in fresh namespaces when
run as root (fewer protections otherwise: the summary lists those active).

from the repository: make grade CHAPTER=02 SUBMISSIONS=dir [OUT=grades.csv]
"""


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().rstrip("ib").rstrip("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


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
    parser.add_argument("--feedback", default="auto",
                        help="folder for one feedback file per student (default: <out stem>_feedback; "
                             "'none' for none)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds per item to load a submission, and again to run it (default 30)")
    parser.add_argument("--output-limit", type=int, default=100_000,
                        help="characters a submission may print per cell or call (default 100000)")
    parser.add_argument("--memory", type=_size, default=5 << 30,
                        help="address space per process, e.g. 5G (default; torch alone takes 3.6G)")
    parser.add_argument("--job-memory", type=_size, default=2 << 30,
                        help="memory all the processes of one item may add together, e.g. 2G "
                             "(default; a cgroup, when run as root)")
    parser.add_argument("--jobs", type=int, default=None, help="items graded at once (default: CPUs)")
    parser.add_argument("--hide", action="append", default=[],
                        help="another path the students' code must not see (repeatable)")
    args = parser.parse_args(argv)

    def progress(rows) -> None:
        total = rows[-1]
        problems = [f"{r.item}: {r.status}" for r in rows[:-1] if r.status not in ("graded",)]
        note = f"  ({', '.join(problems)})" if problems else ""
        print(f"{total.student[:40]:<24} {total.points:g} / {total.max_points:g}{note}", flush=True)

    if sys.platform.startswith("linux"):
        try:  # students' code running as this user (no root, no namespaces) cannot trace or read us
            from .sandbox import PR_SET_DUMPABLE, prctl

            prctl(PR_SET_DUMPABLE, 0)
        except OSError:
            pass
    start = time.monotonic()
    try:
        rows = grade_folder(args.chapter, args.submissions, args.out, timeout=args.timeout,
                            output_limit=args.output_limit, memory=args.memory,
                            job_memory=args.job_memory, jobs=args.jobs,
                            feedback=None if args.feedback == "none" else args.feedback,
                            hide=args.hide, progress=progress)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = sum(r.item == TOTAL for r in rows)
    print(f"graded {n} submission(s) in {time.monotonic() - start:.1f} s -> {args.out}")
    print("protections active: " + "; ".join(rows.protections))
    if rows.missing:
        print("protections NOT active: " + "; ".join(rows.missing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
