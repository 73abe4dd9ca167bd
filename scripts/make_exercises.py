"""Generate each exercise from its solution: solutions/NN_name.py -> exercises/NN_name.py + .ipynb.

The solution notebook (its jupytext .py) is the single source. In its code cells:

- a ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes a stub at the marker's
  indentation: ``name = None`` for each name when the region only assigns answer variables,
  otherwise ``raise NotImplementedError``;
- a ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region is removed;
- a cell tagged ``solution-only`` is left out of the exercise.

Everything else (markdown, tags, the ``# YOUR ANSWER`` comments, the public-checks cells) is
copied. The solution's own .ipynb is written from its .py too, so the pair stays in step.

    python scripts/make_exercises.py            # regenerate every exercise (make exercises)
    python scripts/make_exercises.py 02         # one chapter
    python scripts/make_exercises.py --check    # exit 1 if a committed file differs
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import re
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SOLUTION_ONLY = "solution-only"


def _answer_names(region: list[str]) -> list[str] | None:
    """The names a region assigns, if it is nothing but ``name = value`` lines; else None."""
    try:
        tree = ast.parse(textwrap.dedent("\n".join(region)))
    except SyntaxError:
        return None
    names = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets)):
            return None
        names += [t.id for t in node.targets]
    return names or None


def strip_source(source: str, where: str) -> str:
    """A code cell's source with its solution regions stubbed and hidden tests removed."""
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = line.strip()
        if marker in (BEGIN, BEGIN_HIDDEN):
            end = END if marker == BEGIN else END_HIDDEN
            try:
                j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() == end)
            except StopIteration:
                raise ValueError(f"{where}: {marker!r} without {end!r}")
            region = lines[i + 1:j]
            if marker == BEGIN:
                indent = line[: len(line) - len(line.lstrip())]
                names = _answer_names(region)
                out += [f"{indent}{n} = None" for n in names] if names else [f"{indent}raise NotImplementedError"]
            i = j + 1
            continue
        if marker in (END, END_HIDDEN):
            raise ValueError(f"{where}: {marker!r} without a BEGIN before it")
        out.append(line)
        i += 1
    return "\n".join(out)


def _ids(nb, stem: str) -> None:
    """Stable cell ids, so regenerating changes nothing."""
    for k, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha1(f"{stem}:{k}".encode()).hexdigest()[:8]


def _py(nb) -> str:
    """The jupytext percent text, without the version lines jupytext adds (they would make the
    generated file depend on the installed jupytext)."""
    text = jupytext.writes(nb, fmt="py:percent")
    return re.sub(r"^#\s+(format_version|jupytext_version): .*\n", "", text, flags=re.M)


def _ipynb(nb, stem: str) -> str:
    nb = nbformat.from_dict(jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent"))
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    _ids(nb, stem)
    return nbformat.writes(nb) + "\n"


def exercise_from(solution) -> "nbformat.NotebookNode":
    """The exercise notebook for a solution notebook."""
    ex = nbformat.from_dict(solution)
    cells = []
    for k, cell in enumerate(ex.cells):
        if SOLUTION_ONLY in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_source(cell.source, f"cell {k + 1}")
        elif BEGIN in cell.source:
            raise ValueError(f"cell {k + 1}: solution markers belong in code cells")
        cells.append(cell)
    ex.cells = cells
    return ex


def generate(solution_py: Path) -> dict[Path, str]:
    """{path: text} of the files generated from one solution .py."""
    stem = solution_py.stem
    sol = jupytext.read(solution_py)
    ex = exercise_from(sol)
    return {
        ROOT / "solutions" / f"{stem}.ipynb": _ipynb(sol, stem),
        ROOT / "exercises" / f"{stem}.py": _py(ex),
        ROOT / "exercises" / f"{stem}.ipynb": _ipynb(ex, stem),
    }


def solutions(chapters: list[str]) -> list[Path]:
    found = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py"))
    if chapters:
        found = [p for p in found if p.name[:2] in {c.zfill(2) for c in chapters}]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter numbers (default: all)")
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    stale = []
    for sol in solutions(args.chapters):
        for path, text in generate(sol).items():
            current = path.read_text() if path.exists() else None
            if current == text:
                continue
            stale.append(path)
            if not args.check:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date (run make exercises): " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
