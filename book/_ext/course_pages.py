"""Book pages generated from the code and the measurements when the book is built.

Directives (used in book/course_map.md, book/performance.md, book/api.md):

- ``course-map``: every method in ``course_lib.methods`` with its question, chapter, name, cost;
- ``course-guide``: which method for which question;
- ``chapter-timings``: notebooks/timings.json against the 2-minute and 15-minute budgets;
- ``benchmark-results``: every benchmarks/results/*.json;
- ``course-api FAMILY``: autodoc entries for a part of course_lib, each with the chapter
  that teaches it.

It also serves the "Open in Colab" badge that chapters show (the usual image from
colab.research.google.com, which works in Jupyter, Colab and on GitHub) from the book's own
copy, book/_static/open-in-colab.svg, so that a published page requests nothing from outside.

Generating at build time means none of these pages can go stale.

course_lib's docstrings are plain text with ``literal`` spans, written to be read in the code:
``|x|`` there is an absolute value, not a reStructuredText substitution. ``plain_docstring``
escapes what reStructuredText would misread, so the strict (-W) build does not fail on them.
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import course_map, performance_page  # noqa: E402

# The parts of course_lib the API reference documents besides the method families: each
# documents its module's __all__, or else every public function and class defined there.
OTHER_PARTS = {
    "zoo": "course_lib.zoo",
    "core": "course_lib.core",
    "reproducibility": "course_lib.reproducibility",
    "viz": "course_lib.viz",
    "localisation": "course_lib.localisation",
}


PAGE_ORDER = ("attribution", "cam", "perturbation", "attention", *OTHER_PARTS)


def _names_in(part: str) -> tuple[str, list[str]]:
    """(module, public names) of a part: its __all__, or its public functions and classes."""
    from course_lib.methods import FAMILIES

    module_name = f"course_lib.{part}" if part in FAMILIES else OTHER_PARTS[part]
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [
        n for n, obj in vars(module).items()
        if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module_name
    ]
    return module_name, list(names)


def public_names(part: str) -> list[str]:
    """Dotted names of the public objects of a part of course_lib, as chapters call them.

    A name two parts export is documented once, in the first part of ``PAGE_ORDER``.
    """
    import course_lib

    earlier = set()
    for other in PAGE_ORDER[:PAGE_ORDER.index(part)]:
        earlier.update(_names_in(other)[1])
    module_name, names = _names_in(part)
    # Names course_lib re-exports are documented as course_lib.<name>, the way chapters call them.
    return [f"course_lib.{n}" if n in course_lib.__all__ else f"{module_name}.{n}"
            for n in names if n not in earlier]


def api_rst(part: str) -> str:
    """reStructuredText: one autodoc entry per public name, with the chapter that teaches it."""
    from course_lib.methods import chapter_of

    listed = course_map.toc_chapters()
    out = []
    if part == "cam":
        out += _callable_cam_entry(listed)
    for dotted in public_names(part):
        module_name, name = dotted.rsplit(".", 1)
        obj = getattr(importlib.import_module(module_name), name)
        kind = "autoclass" if inspect.isclass(obj) else "autofunction" if callable(obj) else "autodata"
        out.append(f".. {kind}:: {dotted}")
        out += ["", f"   {_taught(chapter_of(name), listed)}", ""]
    return "\n".join(out)


def _taught(chapter: str | None, listed: set[str]) -> str:
    """The API entry's line naming the chapter that teaches the name."""
    if chapter in listed:
        return f"Taught in :doc:`/notebooks/{chapter}`."
    if chapter:
        return f"Taught in chapter {chapter.split('_')[0]} (in preparation)."
    return "Used throughout the course."


def _callable_cam_entry(listed: set[str]) -> list[str]:
    """``course_lib.cam``, the subpackage that is also the CAM function (autodoc sees a module)."""
    import course_lib
    from course_lib.cam.grad_cam import cam
    from course_lib.methods import chapter_of

    doc = inspect.getdoc(cam) or ""
    return [".. py:function:: course_lib.cam" + str(inspect.signature(course_lib.cam)).replace("'", ""), "",
            *[f"   {line}" if line else "" for line in doc.splitlines()], "",
            "   ``course_lib.cam`` is also the subpackage of the CAM family: ``course_lib.cam.capture``,",
            "   ``course_lib.cam.GradCAM`` and the other classes live there.", "",
            f"   {_taught(chapter_of('cam'), listed)}", ""]


class _Generated(SphinxDirective):
    has_content = False

    def markdown(self) -> str:
        raise NotImplementedError

    def run(self):
        # The generated text depends on files outside the page: rebuild it when they change.
        for dep in ("course_lib/methods.py", "notebooks/timings.json", "_toc.yml"):
            self.env.note_dependency(str(ROOT / dep))
        for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
            self.env.note_dependency(str(path))
        return self.parse_text_to_nodes(self.markdown())


class CourseMap(_Generated):
    def markdown(self) -> str:
        return course_map.map_markdown()


class CourseGuide(_Generated):
    def markdown(self) -> str:
        return course_map.guide_markdown()


class ChapterTimings(_Generated):
    def markdown(self) -> str:
        return performance_page.timings_markdown(course_map.toc_chapters())


class BenchmarkResults(_Generated):
    def markdown(self) -> str:
        return performance_page.results_markdown()


class CourseApi(_Generated):
    required_arguments = 1

    def markdown(self) -> str:
        rst = api_rst(self.arguments[0])
        if not rst:
            return "Nothing here yet."
        return "```{eval-rst}\n" + rst + "\n```"


_LITERAL = re.compile(r"(``.+?``)")
# ``**kwargs`` / ``*args`` outside a literal: an emphasis start-string without its end.
_STARS = re.compile(r"(?<![\w*])(\*{1,2})(?=\w)(?![^*]*\*(?!\w))")


def _escape(text: str) -> str:
    text = text.replace("|", "\\|")
    return _STARS.sub(lambda m: "\\*" * len(m.group(1)), text)


def plain_docstring(app, what, name, obj, options, lines) -> None:
    """Escape what reStructuredText would misread in a plain-text docstring (see above)."""
    if what in ("data", "attribute") and getattr(obj, "__doc__", None) == getattr(type(obj), "__doc__", None):
        # A constant has no docstring of its own: autodoc would show its type's (dict, tuple).
        lines[:] = []
        return
    for i, line in enumerate(lines):
        lines[i] = "".join(p if p.startswith("``") else _escape(p) for p in _LITERAL.split(line))


COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/book/_static/open-in-colab.svg"  # relative to the book's root


def local_badges(app, doctree) -> None:
    """Point every Colab badge image at the book's copy before Sphinx collects the images."""
    from docutils import nodes

    for image in doctree.findall(nodes.image):
        if image.get("uri") == COLAB_BADGE:
            image["uri"] = LOCAL_BADGE
            image["candidates"] = {}


def setup(app):
    app.connect("autodoc-process-docstring", plain_docstring)
    # Before Sphinx's image collector (priority 500), so the badge is copied like any image.
    app.connect("doctree-read", local_badges, priority=400)
    app.add_directive("course-map", CourseMap)
    app.add_directive("course-guide", CourseGuide)
    app.add_directive("chapter-timings", ChapterTimings)
    app.add_directive("benchmark-results", BenchmarkResults)
    app.add_directive("course-api", CourseApi)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
