"""The course map: every method of course_lib with its question, chapter, name and cost.

Generated from ``course_lib.methods`` when the book is built (the ``course-map`` and
``course-guide`` directives of book/_ext/course_pages.py), so the page cannot go stale.

    python scripts/course_map.py      # print the page's tables as Markdown
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Inputs the cost column is stated for: an ImageNet image.
SHOWN_SIZE = {"H": 224, "W": 224}


def toc_chapters() -> set[str]:
    """Stems of the chapters the book lists (notebooks/NN_name)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return {Path(f).name for f in files if f.startswith("notebooks/")}


def chapter_link(chapter: str | None, listed: set[str]) -> str:
    """A MyST link to the chapter page, or plain text while the chapter is not in the book."""
    if chapter is None:
        return "used throughout"
    number = chapter.split("_")[0]
    if chapter in listed:
        return f"{{doc}}`/notebooks/{chapter}`"  # the title starts with the number
    return f"{number} (in preparation)"


def defaults(name: str) -> dict:
    """The keyword defaults of ``course_lib.<name>``."""
    import course_lib

    sig = inspect.signature(getattr(course_lib, name))
    return {p.name: p.default for p in sig.parameters.values() if p.default is not inspect.Parameter.empty}


def cost_text(method) -> str:
    """'1 + n_samples forward, n_samples backward (26 + 25)' style text for the table."""
    from course_lib.methods import passes

    formula = f"{method.forward} forward, {method.backward} backward"
    if method.forward.strip().isdigit() and method.backward.strip().isdigit():
        return formula
    try:
        forward, backward = passes(method, {**defaults(method.name), **SHOWN_SIZE})
    except NameError:  # it depends on something without a default: a layer's channels, segments
        return formula
    return f"{formula} ({forward:g} + {backward:g} at the defaults)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def map_markdown() -> str:
    """The table of every registered method, in chapter order, as a MyST pipe table."""
    from course_lib.methods import METHODS

    listed = toc_chapters()
    lines = [
        "| method | question it answers | chapter | `course_lib` name | cost per example (passes) |",
        "|---|---|---|---|---|",
    ]
    for m in sorted(METHODS, key=lambda m: m.chapter):
        lines.append(
            f"| {_cell(m.title)} | {_cell(m.question)} | {chapter_link(m.chapter, listed)} "
            f"| {{py:func}}`~course_lib.{m.name}` | {_cell(cost_text(m))} |"
        )
    return "\n".join(lines)


def guide_markdown() -> str:
    """The 'which method for which question' guide as a MyST pipe table."""
    from course_lib.methods import GUIDE, by_name

    methods = by_name()
    lines = ["| your question | use | why |", "|---|---|---|"]
    for question, names, why in GUIDE:
        use = ", ".join(f"{methods[n].title} ({{py:func}}`~course_lib.{n}`)" for n in names)
        lines.append(f"| {_cell(question)} | {use} | {_cell(why)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(map_markdown())
    print()
    print(guide_markdown())
