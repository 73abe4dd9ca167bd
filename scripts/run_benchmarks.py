"""Run every benchmark (benchmarks/bench_*.py) and list the results files they wrote.

Each benchmark writes benchmarks/results/<name>.json (format in benchmarks/_results.py); the
book's performance page shows them all. bench_book.py re-executes the whole book and runs only
with --book.

    python scripts/run_benchmarks.py [--book] [name ...]     # e.g. saliency
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--book", action="store_true", help="also re-execute the whole book (minutes)")
    args = parser.parse_args(argv)
    scripts = [p for p in sorted(BENCH.glob("bench_*.py"))
               if (not args.names or p.stem.removeprefix("bench_") in args.names)
               and (args.book or p.stem != "bench_book")]
    failed, silent = [], []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        print(f"== {script.relative_to(ROOT)}", flush=True)
        start = time.time()
        cmd = [sys.executable, str(script)] + (["--execute"] if name == "book" else [])
        if subprocess.run(cmd, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
        result = RESULTS / f"{name}.json"
        if not result.exists() or result.stat().st_mtime < start:
            silent.append(name)
    print()
    print(f"{len(scripts)} benchmarks run; results in {RESULTS.relative_to(ROOT)}/")
    if silent:
        print("wrote no results file (the performance page cannot show them): " + ", ".join(silent))
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
