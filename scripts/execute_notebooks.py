"""Re-execute chapters: write each notebooks/NN_name.py into its paired .ipynb and run it.

By default only the chapters whose source changed (the .ipynb is missing, its cells differ
from the .py, or it was never fully executed); ``--all`` runs every chapter; names run those.
When only markdown changed (every code cell is as stored), the text is refreshed and the
stored outputs are kept without re-running. Timings are recorded in notebooks/timings.json.

    python scripts/execute_notebooks.py [--all] [NN_name ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.compare import compare_notebooks
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = NOTEBOOKS / "timings.json"
KERNEL = "python3"


def chapters() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def is_stale(source: Path) -> str | None:
    """Why ``source``'s notebook must be re-executed, or None when it is up to date."""
    ipynb = source.with_suffix(".ipynb")
    if not ipynb.exists():
        return "no .ipynb yet"
    stored = nbformat.read(ipynb, as_version=4)
    try:
        compare_notebooks(jupytext.read(source), stored, fmt="py:percent", compare_outputs=False)
    except Exception:  # jupytext raises NotebookDifference and friends
        return "cells differ from the .py"
    if any(c.cell_type == "code" and c.source.strip() and c.execution_count is None for c in stored.cells):
        return "not fully executed"
    return None


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def tidy(nb) -> None:
    """Stable cell ids (``cell-<index>``, not jupytext's random ones: diffs show only real
    changes) and consecutive stream outputs of one cell merged (how output was flushed is
    timing, not content)."""
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i}"
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            prev = merged[-1] if merged else None
            if out.output_type == "stream" and prev is not None and prev.output_type == "stream" and prev.name == out.name:
                prev.text += out.text
            else:
                merged.append(out)
        cell.outputs = merged


def refresh_text(source: Path) -> bool:
    """Copy the markdown of ``source`` into its executed notebook when its code is unchanged."""
    ipynb = source.with_suffix(".ipynb")
    if not ipynb.exists():
        return False
    stored, nb = nbformat.read(ipynb, as_version=4), jupytext.read(source)
    if _code(stored) != _code(nb) or is_stale(source) == "not fully executed":
        return False
    executed = iter(c for c in stored.cells if c.cell_type == "code")
    for cell in nb.cells:
        if cell.cell_type == "code":
            old = next(executed)
            cell.outputs, cell.execution_count = old.outputs, old.execution_count
    nb.metadata = stored.metadata
    tidy(nb)
    nbformat.write(nb, ipynb)
    return True


def execute(source: Path) -> float:
    """Write the .ipynb from ``source``, execute it in place, return the seconds it took."""
    ipynb = source.with_suffix(".ipynb")
    nb = jupytext.read(source)
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": KERNEL}
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=1200, kernel_name=KERNEL, record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    seconds = time.perf_counter() - start
    tidy(nb)
    nbformat.write(nb, ipynb)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="chapters to run, e.g. 02_gradient_saliency")
    parser.add_argument("--all", action="store_true", help="run every chapter")
    args = parser.parse_args(argv)
    todo = []
    for src in chapters():
        if args.names:
            if src.stem in args.names or src.name in args.names:
                todo.append((src, "asked for"))
        elif args.all:
            todo.append((src, "--all"))
        elif reason := is_stale(src):
            todo.append((src, reason))
    if not todo:
        print("every chapter is up to date (use --all or name a chapter to force)")
        return 0
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    for src, reason in todo:
        if reason == "cells differ from the .py" and refresh_text(src):
            print(f"{src.name}: only markdown changed, text refreshed, outputs kept", flush=True)
            continue
        print(f"executing {src.name} ({reason}) ...", flush=True)
        seconds = execute(src)
        timings[src.stem] = round(seconds, 1)
        print(f"  {src.stem}: {seconds:.1f} s", flush=True)
    TIMINGS.write_text(json.dumps(dict(sorted(timings.items())), indent=2) + "\n")
    print("execution times (s):", json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
