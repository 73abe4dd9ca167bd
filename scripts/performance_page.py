"""The performance page's tables, from measurements: chapter execution times
(notebooks/timings.json, written by ``make notebooks``) and every benchmark's results
(benchmarks/results/*.json, written by ``make benchmarks``).

Used by the ``chapter-timings`` and ``benchmark-results`` directives of
book/_ext/course_pages.py when the book is built.

    python scripts/performance_page.py      # print the tables as Markdown
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "notebooks" / "timings.json"
RESULTS = ROOT / "benchmarks" / "results"
CHAPTER_BUDGET_S = 120  # COURSE.md section 8: a chapter runs in at most 2 minutes on 2 cores
BOOK_BUDGET_S = 900  # the whole book in 15 minutes


def chapter_times() -> dict[str, float]:
    """Seconds per chapter stem, as recorded by the last `make notebooks` of each chapter."""
    return json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}


def verdict(seconds: float, budget: float) -> str:
    return "yes" if seconds <= budget else f"**no** (over by {seconds - budget:.0f} s)"


def machine_text(machine: dict) -> str:
    parts = [machine.get("cpu", "?"), f"{machine.get('cores', '?')} cores"]
    if "torch" in machine:
        parts.append(f"torch {machine['torch']} with {machine.get('torch_threads', '?')} threads")
    parts.append(f"Python {machine.get('python', '?')}")
    return ", ".join(str(p) for p in parts)


def timings_markdown(listed: set[str] | None = None) -> str:
    """Table: chapter, seconds, within budget; then the total against the book's budget."""
    times = chapter_times()
    if not times:
        return "No chapter has been executed yet (`make notebooks` records the times)."
    lines = ["| chapter | seconds | within 2 minutes |", "|---|---:|---|"]
    for stem, seconds in sorted(times.items()):
        name = f"{{doc}}`{stem} </notebooks/{stem}>`" if listed is None or stem in listed else stem
        lines.append(f"| {name} | {seconds:.1f} | {verdict(seconds, CHAPTER_BUDGET_S)} |")
    total = sum(times.values())
    lines.append(f"| **all {len(times)} chapters** | **{total:.1f}** | within 15 minutes: {verdict(total, BOOK_BUDGET_S)} |")
    return "\n".join(lines)


def results() -> list[dict]:
    """Every benchmarks/results/*.json, by name."""
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def results_markdown() -> str:
    """One block per benchmark: title, what it measured on which machine, and its rows."""
    blocks = []
    for data in results():
        rows = data.get("rows", [])
        columns = list(dict.fromkeys(k for r in rows for k in r))
        head = (f"**{data.get('title', data['benchmark'])}** (`benchmarks/bench_{data['benchmark']}.py`, "
                f"measured {data.get('date', '?')} on {machine_text(data.get('machine', {}))})")
        block = [head, ""]
        if data.get("note"):
            block += [data["note"], ""]
        if rows:
            block.append("| " + " | ".join(c.replace("_s", " (s)") for c in columns) + " |")
            block.append("|" + "|".join("---" if c == "what" else "---:" for c in columns) + "|")
            block += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
        blocks.append("\n".join(block))
    if not blocks:
        return "No benchmark results yet: run `make benchmarks`."
    return "\n\n".join(blocks)


if __name__ == "__main__":
    print(timings_markdown())
    print()
    print(results_markdown())
