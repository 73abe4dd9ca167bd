"""The book, built once per test run and shared by the test modules that need it.

With pytest-xdist every worker asks for it; a file lock in the run's shared temporary folder
makes the first build it and the others reuse it. ``BOOK_HTML=_build/html`` checks a book
that is already built instead (``make book-check``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from scripts.build_book import build


@dataclass
class Book:
    html: Path  # _build/html of the build
    returncode: int
    log: str  # the build's stdout and stderr

    @property
    def warnings(self) -> list[str]:
        return [ln for ln in self.log.splitlines() if "WARNING" in ln or "ERROR" in ln]


def built_book(tmp_path_factory) -> Book:
    """Build the book into the run's temporary folder unless this run already did."""
    if os.environ.get("BOOK_HTML"):
        return Book(Path(os.environ["BOOK_HTML"]).resolve(), 0, "")
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the workers' folders share this parent
    out, record = shared / "book", shared / "book.json"
    with FileLock(str(shared / "book.lock")):
        if not record.exists():
            proc = build(out)
            record.write_text(json.dumps({"returncode": proc.returncode, "log": proc.stdout + proc.stderr}))
    data = json.loads(record.read_text())
    return Book(out / "_build" / "html", data["returncode"], data["log"])
