"""The benchmarks' common format: each ``benchmarks/bench_<name>.py`` writes
``benchmarks/results/<name>.json`` through :func:`write`, and the book's performance page
(book/performance.md) shows every file there.

A results file is ``{"benchmark", "title", "note", "date", "machine", "rows"}``; each row is a
dict, usually ``{"what", "course_lib_s", "library_s", "ratio"}`` (ratio = course_lib_s /
library_s: below 1 means course_lib is faster), and any other columns a benchmark needs.
``python scripts/run_benchmarks.py`` (``make benchmarks``) runs them all.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on: CPU model, cores, threads, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "os": platform.system(), "python": platform.python_version()}
    try:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass
    return info


def best_of(fn, repeat: int = 3) -> float:
    """The fastest of ``repeat`` calls of ``fn()``, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def row(what: str, course_lib_s: float, library_s: float | None, **more) -> dict:
    """One comparison row with its ratio course_lib / library."""
    ratio = None if not library_s else round(course_lib_s / library_s, 3)
    return {"what": what, "course_lib_s": round(course_lib_s, 4),
            "library_s": None if library_s is None else round(library_s, 4), "ratio": ratio, **more}


def write(name: str, rows: list[dict], *, title: str, note: str = "") -> Path:
    """Write benchmarks/results/<name>.json and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "benchmark": name,
        "title": title,
        "note": note,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "rows": rows,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
