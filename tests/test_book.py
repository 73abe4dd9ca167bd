"""The book builds from the stored notebooks without a single warning, and its pages work."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scripts.build_book import build

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    proc = build(out)
    log = proc.stdout + proc.stderr
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln]
    assert proc.returncode == 0 and not warnings, "book build failed or warned:\n" + "\n".join(warnings or [log[-3000:]])
    return out / "_build" / "html"


def chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"] for part in toc["parts"] for c in part["chapters"] if c["file"].startswith("notebooks/")]


def test_every_chapter_in_the_toc_has_a_source_and_a_stored_notebook():
    for page in chapters():
        assert (ROOT / f"{page}.py").exists() and (ROOT / f"{page}.ipynb").exists(), page


def test_chapter_pages_show_their_figures(html):
    for page in chapters():
        text = (html / f"{page}.html").read_text()
        assert "<img" in text, f"{page} shows no figure"
    assert (html / "notebooks/02_gradient_saliency.html").read_text().count("<img") >= 5


def test_every_chapter_page_has_a_colab_button_opening_its_notebook_on_main(html):
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    for page in chapters():
        text = (html / f"{page}.html").read_text()
        link = f"https://colab.research.google.com/github/{repo}/blob/main/{page}.ipynb"
        assert link in text, f"{page}: no Colab link {link}"


def test_citations_resolve_to_the_bibliography(html):
    text = (html / "notebooks/02_gradient_saliency.html").read_text()
    assert "Smilkov" in text and "SmoothGrad" in text
    assert not re.search(r"\?\?|Unknown citation", text)
