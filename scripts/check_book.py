"""Open every page of the built book in headless Chromium, offline, and list what is broken.

The book is served from a local HTTP server and every request that leaves it is blocked (and
reported). On each page it checks: page and console errors (except the two harmless ones in
``ALLOWED_ERRORS``, matched one by one), requests that leave the book, requests inside it that
fail, images that do not load or have no alt text, internal links and anchors that do not
resolve, formulas MathJax did not render, bertviz views that draw nothing, and on chapter pages
the Colab button (its own ``.ipynb`` on the configured branch) and the link to its exercises.

    python scripts/check_book.py [_build/html] [page.html ...]    # exit 1 when a page has a problem

Chromium is Debian's (``apt-get install chromium``) driven by Playwright; ``CHROMIUM`` names
another executable.
"""
from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

# The only errors a page may log (COURSE.md section 2), each with where it comes from.
ALLOWED_ERRORS = (
    # sphinx-thebe's configuration script is emitted twice by Jupyter Book 1.x: the second
    # declaration of the same `const` throws. Thebe is never started, so nothing breaks.
    ("pageerror", "Identifier 'THEBE_JS_URL' has already been declared"),
    # pydata-sphinx-theme on a first visit (empty localStorage) resets the theme mode to auto.
    ("console", "Got invalid theme mode: . Resetting to auto."),
)

# A chapter's exercises may be missing only where the course plans none.
CHAPTERS_WITHOUT_EXERCISES = {"01_why_interpret"}

# Raw TeX left in the text a reader sees: $...$ with math inside, \( \[ or a TeX command.
RAW_TEX = re.compile(r"\$\$|\$[^$\n]*[\\^_{}][^$\n]*\$|\\\(|\\\[|\\[a-zA-Z]{2,}\{?")

REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', re.I)

# Sphinx's alt text when none is given is the image's path.
HASHED_NAME = re.compile(r"[0-9a-f]{32,}\.(png|jpe?g|gif|svg)$")


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def repo_slug() -> str:
    return CONFIG["repository"]["url"].rstrip("/").removeprefix("https://github.com/")


def colab_url(path: str) -> str:
    """The Colab address of a notebook of the repository, e.g. ``notebooks/02_x.ipynb``."""
    base = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    return f"{base}/github/{repo_slug()}/blob/{CONFIG['repository']['branch']}/{path}"


def toc_chapters() -> list[str]:
    """Chapter stems in book order (notebooks/NN_name entries of _toc.yml)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [Path(f).name for f in files if f.startswith("notebooks/")]


def book_pages(html_dir: Path) -> list[str]:
    """Every HTML page of a built book, relative to its root (assets excluded)."""
    return sorted(
        p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
        if not p.relative_to(html_dir).parts[0].startswith("_")
    )


def launch(executable: str | None = None):
    """(playwright, browser): headless Chromium with the flags above. Stop both when done.

    Playwright's sync API allows one instance per thread: share the browser between checkers.
    """
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=executable or chromium_path(), args=CHROMIUM_FLAGS)


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value or "")


@functools.lru_cache(maxsize=None)
def anchors_of(path: Path) -> frozenset[str]:
    parser = _Ids()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A quiet HTTP server of ``html_dir`` on a free port of 127.0.0.1, and its base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(html_dir), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


@dataclass
class Visit:
    """What happened while one page loaded."""
    errors: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    left_book: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class BookChecker:
    """A browser and a server for one built book; ``check(page)`` lists a page's problems."""

    def __init__(self, html_dir: Path, browser=None):
        self.html_dir = Path(html_dir)
        self.server, self.base = serve(self.html_dir)
        self._own = None if browser is not None else launch()
        self.browser = browser if browser is not None else self._own[1]

    def close(self) -> None:
        if self._own is not None:
            self._own[1].close()
            self._own[0].stop()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ loading a page
    def _open(self, page: str):
        """A fresh context (first visit, empty storage) with the network cut, and the page."""
        visit = Visit()
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})

        def route(r):
            if r.request.url.startswith(self.base):
                r.continue_()
            else:
                visit.left_book.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        tab = context.new_page()
        tab.on("pageerror", lambda e: visit.errors.append(("pageerror", str(e.message if hasattr(e, "message") else e))))
        # A failed load is reported below with its address, by the route or the listeners.
        tab.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource:")
               and visit.errors.append(("console", m.text)))
        tab.on("requestfailed", lambda r: r.url.startswith(self.base) and visit.failed.append(f"{r.url} ({r.failure})"))
        tab.on("response", lambda r: r.url.startswith(self.base) and r.status >= 400
               and visit.failed.append(f"{r.url} (HTTP {r.status})"))
        redirect = REDIRECT.search((self.html_dir / page).read_text(errors="replace"))
        tab.goto(self.base + page, wait_until="load")
        if redirect:  # index.html sends the reader on: check the page it lands on
            target = urljoin(self.base + page, redirect.group(1))
            tab.wait_for_url(target, wait_until="load", timeout=10_000)
        tab.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        return context, tab, visit

    # ------------------------------------------------------------------ the checks
    def check(self, page: str) -> list[str]:
        """Every problem found on ``page`` (a path relative to the book's root)."""
        context, tab, visit = self._open(page)
        try:
            here = tab.url
            problems = self._errors(visit)
            problems += [f"request leaves the book: {u}" for u in visit.left_book]
            problems += [f"request failed: {u}" for u in visit.failed]
            problems += self._images(tab)
            problems += self._links(tab, here)
            problems += self._math(tab)
            problems += self._bertviz(tab)
            rel = here.removeprefix(self.base)
            if rel.startswith("notebooks/") and Path(rel).stem in toc_chapters():
                problems += self._chapter(tab, Path(rel).stem)
            return problems
        finally:
            context.close()

    @staticmethod
    def _errors(visit: Visit) -> list[str]:
        problems = []
        allowed = list(ALLOWED_ERRORS)
        for kind, text in visit.errors:
            if (kind, text) in allowed:
                allowed.remove((kind, text))  # each harmless error is allowed once per page
            else:
                problems.append(f"{kind} error: {text}")
        return problems

    @staticmethod
    def _images(tab) -> list[str]:
        images = tab.evaluate("""() => Array.from(document.images).map(img => ({
            src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
            loaded: img.complete && img.naturalWidth > 0}))""")
        problems = []
        for img in images:
            src, alt = img["src"], (img["alt"] or "").strip()
            name = src.rsplit("/", 1)[-1]
            if not img["loaded"]:
                problems.append(f"image does not load: {src}")
            if not alt or alt == src or alt.endswith(name) or HASHED_NAME.search(alt):
                problems.append(f"image without alt text: {src}")
        return problems

    def _links(self, tab, here: str) -> list[str]:
        hrefs = tab.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        live_ids = set(tab.evaluate(
            "() => Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name'))"
        ))
        problems = []
        for href in sorted(set(hrefs)):
            if not href.startswith(self.base):
                continue  # outside the book: a link, not a request; not followed offline
            url, fragment = urldefrag(href)
            rel = unquote(urlparse(url).path).lstrip("/")
            target = self.html_dir / rel
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"link to a missing file: {href}")
                continue
            if not fragment:
                continue
            fragment = unquote(fragment)
            ids = live_ids if url == urldefrag(here)[0] else set()
            if target.suffix == ".html":
                ids = ids | anchors_of(target)
            if fragment not in ids:
                problems.append(f"link to a missing anchor: {href}")
        return problems

    @staticmethod
    def _math(tab) -> list[str]:
        found = tab.evaluate("""() => {
            const maths = Array.from(document.querySelectorAll('.math'));
            const unrendered = maths.filter(m => !m.querySelector('mjx-container') && m.tagName !== 'MJX-CONTAINER')
                                    .map(m => m.textContent.trim().slice(0, 80));
            const errors = Array.from(document.querySelectorAll('mjx-merror'))
                                .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80));
            const main = document.querySelector('main') || document.body;
            const prose = main.cloneNode(true);
            prose.querySelectorAll('pre, code, script, style, mjx-container, .math, .cell_output, .output, textarea')
                 .forEach(e => e.remove());
            return {unrendered, errors, text: prose.textContent};
        }""")
        problems = [f"formula not rendered: {t}" for t in found["unrendered"]]
        problems += [f"formula error: {t}" for t in found["errors"]]
        problems += [f"raw TeX in the text: {m.group(0)!r} in ...{found['text'][max(m.start() - 40, 0):m.end() + 40]!r}..."
                     for m in RAW_TEX.finditer(found["text"])]
        return problems

    @staticmethod
    def _bertviz(tab) -> list[str]:
        roots = tab.evaluate("() => Array.from(document.querySelectorAll('[id^=\"bertviz-\"]')).map(e => e.id)")
        if not roots:
            return []
        drawn = "ids => ids.every(id => document.querySelectorAll(`#${id} svg text, #${id} svg rect`).length > 0)"
        try:
            tab.wait_for_function(drawn, arg=roots, timeout=15_000)
            return []
        except Exception:
            empty = tab.evaluate(
                "ids => ids.filter(id => document.querySelectorAll(`#${id} svg text, #${id} svg rect`).length === 0)",
                roots,
            )
            return [f"bertviz view draws nothing: #{i}" for i in empty]

    @staticmethod
    def _chapter(tab, stem: str) -> list[str]:
        hrefs = set(tab.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"))
        problems = []
        button = colab_url(f"notebooks/{stem}.ipynb")
        if button not in hrefs:
            problems.append(f"no Colab button opening {button}")
        exercise = colab_url(f"exercises/{stem}.ipynb")
        if (ROOT / "exercises" / f"{stem}.ipynb").exists():
            if exercise not in hrefs:
                problems.append(f"no link to the chapter's exercises: {exercise}")
        elif stem not in CHAPTERS_WITHOUT_EXERCISES:
            problems.append(f"the chapter has no exercises (exercises/{stem}.ipynb) to link")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("pages", nargs="*", help="pages to check (default: all)")
    args = parser.parse_args(argv)
    if chromium_path() is None:
        print("no Chromium found: apt-get install chromium (or set CHROMIUM)", file=sys.stderr)
        return 2
    pages = args.pages or book_pages(args.html)
    bad = 0
    with BookChecker(args.html) as checker:
        for page in pages:
            problems = checker.check(page)
            print(f"{'ok  ' if not problems else 'FAIL'} {page}")
            for p in problems:
                print(f"       {p}")
            bad += bool(problems)
    print(f"{len(pages) - bad} pages passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
