"""Every page of the built book, opened in headless Chromium with the network cut.

The checks themselves are in scripts/check_book.py; here they run on every page of the book
(built once per test run, see tests/book_build.py) and, first, on a small hand-made site with
one planted fault per check, so that each check is shown to fail when it should.

Without Chromium these tests are skipped and the run says so loudly
(tests/plugins/browser_notice.py); with ``REQUIRE_BROWSER=1`` (CI) they fail instead.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from scripts import check_book
from tests.book_build import built_book

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = "BROWSER SUITE NOT RUN"

pytestmark = pytest.mark.book


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if check_book.chromium_path() is None:
        return "no Chromium at /usr/bin/chromium (apt-get install chromium, or set CHROMIUM)"
    return None


def _require_browser() -> None:
    reason = _missing_browser()
    if reason is None:
        return
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{NOT_RUN}: {reason}, and REQUIRE_BROWSER=1 requires it", pytrace=False)
    pytest.skip(f"{NOT_RUN}: {reason}")


def expected_pages() -> list[str]:
    """The pages the book must have: every _toc.yml entry, the redirect, index and search."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return sorted({f"{f}.html" for f in files} | {"index.html", "genindex.html", "search.html"})


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    book = built_book(tmp_path_factory)
    if not (book.html / "index.html").exists():
        pytest.fail("the book did not build (tests/test_book.py shows why)", pytrace=False)
    return book.html


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    pw, browser = check_book.launch()
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="module")
def checker(book_html, browser):
    with check_book.BookChecker(book_html, browser) as c:
        yield c


# ---------------------------------------------------------------------- the real book
def test_the_book_has_exactly_the_pages_of_its_table_of_contents(book_html):
    assert check_book.book_pages(book_html) == expected_pages()


@pytest.mark.parametrize("page", expected_pages())
def test_page_works_offline_in_a_browser(checker, page):
    problems = checker.check(page)
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------- the checks can fail
GOOD_PAGE = """<!DOCTYPE html><html><head><title>t</title></head><body><main>
<h1 id="top">Title</h1>
<p>Plain prose costs $5 and $6 and says nothing in TeX.</p>
<img src="img.png" alt="a red square">
<a href="other.html#part">other</a> <a href="#top">top</a> <a href="https://example.org/">away</a>
</main></body></html>"""
OTHER_PAGE = '<!DOCTYPE html><html><body><main><h2 id="part">Part</h2></main></body></html>'
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000"
    "00030101001898d2a20000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "img.png").write_bytes(PNG)
    (root / "good.html").write_text(GOOD_PAGE)
    (root / "other.html").write_text(OTHER_PAGE)
    faults = {
        "no_alt.html": GOOD_PAGE.replace(' alt="a red square"', ""),
        "path_alt.html": GOOD_PAGE.replace('alt="a red square"', 'alt="img.png"'),
        "broken_image.html": GOOD_PAGE.replace('src="img.png"', 'src="gone.png"'),
        "broken_link.html": GOOD_PAGE.replace('href="other.html#part"', 'href="missing.html"'),
        "broken_anchor.html": GOOD_PAGE.replace('href="other.html#part"', 'href="other.html#nowhere"'),
        "external.html": GOOD_PAGE.replace("</main>", '<script src="https://cdn.example.org/x.js"></script></main>'),
        "js_error.html": GOOD_PAGE.replace("</main>", "<script>undefinedFunction()</script></main>"),
        "unrendered.html": GOOD_PAGE.replace("</main>", '<span class="math">\\(x^2\\)</span></main>'),
        "raw_tex.html": GOOD_PAGE.replace("says nothing in TeX", "says $x_i^2$ and \\frac{a}{b}"),
        "bertviz.html": GOOD_PAGE.replace("</main>", '<div id="bertviz-0a1b"><span>Layer:</span><div id="vis"></div></div></main>'),
    }
    for name, text in faults.items():
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def site_checker(site, browser):
    with check_book.BookChecker(site, browser) as c:
        yield c


def test_checker_passes_a_page_without_faults(site_checker):
    assert site_checker.check("good.html") == []


@pytest.mark.parametrize("page, expected", [
    ("no_alt.html", "image without alt text"),
    ("path_alt.html", "image without alt text"),
    ("broken_image.html", "image does not load"),
    ("broken_link.html", "link to a missing file"),
    ("broken_anchor.html", "link to a missing anchor"),
    ("external.html", "request leaves the book"),
    ("js_error.html", "pageerror error: undefinedFunction is not defined"),
    ("unrendered.html", "formula not rendered"),
    ("raw_tex.html", "raw TeX in the text"),
    ("bertviz.html", "bertviz view draws nothing"),
])
def test_checker_finds_each_planted_fault(site_checker, page, expected):
    problems = site_checker.check(page)
    assert any(p.startswith(expected) for p in problems), f"{page}: {problems}"


def test_each_harmless_error_is_allowed_once_and_no_other(site, site_checker):
    text = GOOD_PAGE.replace("</main>", "<script>console.error('Got invalid theme mode: . Resetting to auto.');"
                                        "console.error('Got invalid theme mode: . Resetting to auto.');"
                                        "console.error('Got invalid theme mode: dark');</script></main>")
    (site / "console.html").write_text(text)
    problems = site_checker.check("console.html")
    assert problems == [
        "console error: Got invalid theme mode: . Resetting to auto.",
        "console error: Got invalid theme mode: dark",
    ]


def test_removing_a_figure_from_a_built_chapter_fails_its_page(book_html, browser, tmp_path):
    copy = tmp_path / "html"
    shutil.copytree(book_html, copy, ignore=shutil.ignore_patterns("mathjax"))
    page = copy / "notebooks" / f"{check_book.toc_chapters()[0]}.html"
    text = page.read_text()
    first = text.index('src="../_images/') + len('src="../')
    image = text[first:text.index('"', first)]
    (copy / image).unlink()
    with check_book.BookChecker(copy, browser) as c:
        problems = c.check(page.relative_to(copy).as_posix())
    assert f"image does not load: ../{image}" in problems
