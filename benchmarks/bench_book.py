"""How long the whole book takes to execute: every chapter under 2 minutes, the book under 15.

By default reads the times ``make notebooks`` recorded (notebooks/timings.json); with
``--execute`` runs every chapter again (in memory: nothing in the repository changes), prints
the measured times and writes benchmarks/results/book.json. Exit status 1 when over budget.

    python benchmarks/bench_book.py [--execute] [NN_name ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _results import write

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.performance_page import BOOK_BUDGET_S, CHAPTER_BUDGET_S, chapter_times  # noqa: E402


def execute(source: Path) -> float:
    """Seconds to execute one chapter top to bottom in a fresh kernel."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(source)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--execute", action="store_true", help="run the chapters and measure")
    args = parser.parse_args(argv)
    if args.execute:
        times = {}
        for src in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
            if args.names and src.stem not in args.names:
                continue
            print(f"executing {src.stem} ...", flush=True)
            times[src.stem] = round(execute(src), 1)
        source = "measured now"
    else:
        times = chapter_times()
        source = "notebooks/timings.json"
    over = 0
    for stem, seconds in sorted(times.items()):
        ok = seconds <= CHAPTER_BUDGET_S
        over += not ok
        print(f"{stem:32s} {seconds:7.1f} s  {'under' if ok else 'OVER'} 2 minutes")
    total = sum(times.values())
    print(f"{'whole book':32s} {total:7.1f} s  {'under' if total <= BOOK_BUDGET_S else 'OVER'} 15 minutes ({source})")
    if args.execute and not args.names:
        rows = [{"what": stem, "seconds": s, "within_2_min": s <= CHAPTER_BUDGET_S} for stem, s in sorted(times.items())]
        rows.append({"what": "whole book", "seconds": round(total, 1), "within_15_min": total <= BOOK_BUDGET_S})
        print("wrote", write("book", rows, title="The whole book, executed chapter by chapter",
                             note="Each chapter in a fresh kernel, as `make notebooks` runs them."))
    return 0 if over == 0 and total <= BOOK_BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
