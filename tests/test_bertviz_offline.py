"""bertviz's head and model views draw in the built book with the network cut.

bertviz loads require.js, d3 and jQuery from cdnjs; ``book/_ext/bertviz_offline.py`` fetches
them from npm at build time (the committed package.json and lock), copies them into
``_static/bertviz/`` and points the built pages at them, while the stored notebooks keep the
CDN URLs for Jupyter and Colab. The browser test opens the built chapter in Debian's headless
Chromium, driven by Playwright, aborts every request that is not a local file, and fails
unless each view has drawn one line per attention weight, with the weights as opacities.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from scripts.build_book import build

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "notebooks/10_attention_in_bert"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LOCKED = {"requirejs": "2.3.6", "d3": "5.7.0", "jquery": "2.2.4"}


def _load_extension():
    spec = importlib.util.spec_from_file_location("bertviz_offline", ROOT / "book/_ext/bertviz_offline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


def _views(notebook: Path) -> list[dict]:
    """bertviz's parameters (the attention it embeds) of each view in a stored notebook, in order."""
    views = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        for out in cell.get("outputs", []):
            js = out.get("data", {}).get("application/javascript", "")
            if "const params = " in js:
                start = js.index("const params = ") + len("const params = ")
                params = json.loads(js[start : js.index("; // HACK", start)])
                params["kind"] = "model" if "include_heads" in params else "head"  # only model_view has it
                views.append(params)
    return views


# --------------------------------------------------------------------- without a browser
def test_package_lock_pins_the_three_scripts_bertviz_loads():
    package = json.loads((ROOT / "package.json").read_text())
    assert package["dependencies"] == LOCKED
    assert ext.locked_versions(ROOT) == LOCKED
    assert {source.split("/")[0] for source, _ in ext.ASSETS.values()} == set(LOCKED)


def test_stored_chapter_keeps_the_cdn_urls_so_jupyter_and_colab_still_work():
    text = (ROOT / f"{CHAPTER}.ipynb").read_text()
    for url in ext.ASSETS:
        assert url in text, f"the stored notebook should load {url} (Colab has no _static/)"
    assert [v["kind"] for v in _views(ROOT / f"{CHAPTER}.ipynb")] == ["head", "model"]


def test_rewrite_points_every_cdn_url_at_the_static_copies():
    page = (
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"></script>'
        "require.config({paths: {d3: 'https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min',"
        " jquery: 'https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min'}});"
    )
    html, count = ext.rewrite(page * 2, "../_static/bertviz/")
    assert count == 6 and "cdnjs" not in html
    assert html.count('src="../_static/bertviz/require.js"') == 2
    assert html.count("d3: '../_static/bertviz/d3.min'") == 2  # require.js adds ".js" itself
    assert html.count("jquery: '../_static/bertviz/jquery.min'") == 2


def test_without_npm_the_book_keeps_the_cdn_urls_and_says_so(tmp_path, monkeypatch):
    # A checkout with the package files but no node_modules, on a machine without npm.
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    said = []
    monkeypatch.setattr(ext.logger, "info", lambda msg, *a, **k: said.append(msg))

    class App:  # what the extension reads of a Sphinx application
        srcdir, outdir = tmp_path, tmp_path / "html"
        builder = type("Builder", (), {"format": "html"})()
        config = type("Config", (), {"bertviz_offline_npm": "no-such-npm-command"})()

    app = App()
    ext._builder_inited(app)
    assert app.bertviz_offline is False
    assert any("npm is not installed" in m and "cdnjs" in m for m in said), said
    body = '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"></script>'
    context = {"body": body, "pathto": lambda target, resource=0: "../" + target}
    ext._page_context(app, CHAPTER, "page.html", context, None)
    ext._build_finished(app, None)
    assert context["body"] == body and not (tmp_path / "html").exists()


# ------------------------------------------------------------------------ the built book
@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    proc = build(out)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "book build failed:\n" + log[-3000:]
    if "bertviz offline: npm is not installed" in log or "bertviz offline: npm ci failed" in log:
        pytest.skip("npm could not fetch the scripts on this machine: the book was built with CDN URLs")
    return out / "_build" / "html"


@pytest.mark.book
def test_built_chapter_loads_the_scripts_from_the_book_not_the_cdn(html):
    page = (html / f"{CHAPTER}.html").read_text()
    assert "cdnjs.cloudflare.com" not in page
    assert page.count('src="../_static/bertviz/require.js"') == 2  # one per view
    static = html / ext.STATIC_DIR
    assert "RequireJS 2.3.6" in (static / "require.js").read_text()[:300]
    assert re.search(r'version\s*=\s*"5\.7\.0"', (static / "d3.min.js").read_text())
    assert "v2.2.4" in (static / "jquery.min.js").read_text()[:200]


@pytest.mark.book
def test_both_views_draw_their_lines_in_chromium_with_the_network_cut(html):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; the CI script installs it)")
    playwright = pytest.importorskip("playwright.sync_api")
    expected = _views(ROOT / f"{CHAPTER}.ipynb")
    blocked, errors = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                       else (blocked.append(route.request.url), route.abort()))
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto((html / f"{CHAPTER}.html").as_uri())
            try:
                page.wait_for_function(
                    f"document.querySelectorAll('div[id^=\"bertviz-\"] svg line').length >= {_line_count(expected)}",
                    timeout=30_000,
                )
            except Exception:  # noqa: BLE001 - the assertions below say what is missing
                pass
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('div[id^="bertviz-"]')].map(div => ({
                    layers: div.querySelectorAll('select#layer option').length,
                    opacities: [...div.querySelectorAll('svg line')].map(l => +(l.getAttribute('stroke-opacity') || 0)),
                }))"""
            )
        finally:
            browser.close()
    cdn = [u for u in blocked if "cdnjs" in u]
    context = f"\nblocked requests: {blocked[:5]}\npage errors: {errors[:5]}"
    assert not cdn, "the page still asks the CDN for bertviz's scripts" + context
    assert len(drawn) == 2, f"expected the head view and the model view, found {len(drawn)} bertviz views" + context
    head, model = drawn
    head_params, model_params = expected
    attn = head_params["attention"][0]["attn"]
    layer, heads = head_params["layer"], head_params["heads"]
    n_heads, t = len(attn[layer]), len(attn[layer][0])
    # Head view: one line per head, query and key of the shown layer; only the selected heads
    # are visible, each line as opaque as its weight.
    assert head["layers"] == len(attn), "the head view's layer menu is empty: its scripts did not run" + context
    assert len(head["opacities"]) == n_heads * t * t, "the head view drew no lines" + context
    visible = sorted(o for o in head["opacities"] if o > 0)
    weights = sorted(w for h in heads for row in attn[layer][h] for w in row if w > 0)
    assert visible == pytest.approx([w / len(heads) for w in weights], abs=1e-9)
    # Model view: one thumbnail per layer and head, one line per weight.
    m = model_params["attention"][0]["attn"]
    lines = sum(len(row) for layer_ in m for head_ in layer_ for row in head_)
    assert len(model["opacities"]) == lines, "the model view drew no lines" + context
    assert sum(model["opacities"]) == pytest.approx(sum(w for l_ in m for h_ in l_ for r in h_ for w in r), rel=1e-9)


def _line_count(views: list[dict]) -> int:
    head, model = views
    attn = head["attention"][0]["attn"][head["layer"]]
    m = model["attention"][0]["attn"]
    return len(attn) * len(attn[0]) ** 2 + sum(len(r) for l_ in m for h_ in l_ for r in h_)
