"""The chapter table: chapter number -> the module that defines its exercise and items.

A chapter module defines ``EXERCISE`` (the exercise's file stem, e.g. "02_gradient_saliency"),
``ITEMS`` (a tuple of ``Item``) and optionally ``PRELOAD`` (modules to import once in the
grading server, e.g. a library whose functions an item forbids). Add a line here to register
a chapter.
"""
from __future__ import annotations

import importlib

CHAPTERS = {
    "01": "course_lib.grading.ch01",
    "02": "course_lib.grading.ch02",
    "03": "course_lib.grading.ch03",
    "04": "course_lib.grading.ch04",
    "05": "course_lib.grading.ch05",
    "10": "course_lib.grading.ch10",
}


def chapter_module(chapter: str):
    """The module with the exercise and items of ``chapter`` ('02' or '2'; or a module's
    dotted name, e.g. 'course_lib.grading.example')."""
    if "." in str(chapter):
        return importlib.import_module(chapter)
    key = str(chapter).zfill(2)
    if key not in CHAPTERS:
        raise ValueError(f"no autograded exercises for chapter {chapter!r}; "
                         f"chapters with exercises: {', '.join(sorted(CHAPTERS))}")
    return importlib.import_module(CHAPTERS[key])
