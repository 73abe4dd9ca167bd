"""bertviz's attention views in the built book, with no network.

bertviz 1.4.1 draws its head and model views with three scripts from cdnjs: require.js 2.3.6
(a ``<script src>`` tag) and d3 5.7.0 and jQuery 2.0.0 (paths in ``require.config``). The
notebooks keep those URLs, so the views work in Jupyter and Colab. For the book this extension

1. runs ``npm ci`` on the committed ``package.json`` / ``package-lock.json`` (skipped when
   ``node_modules`` already holds the locked versions), which fetches requirejs 2.3.6, d3 5.7.0
   and jquery 2.2.4 (2.0.0 is not on npm; 2.2.4 has everything bertviz uses);
2. rewrites the three CDN URLs in every page that has them to ``_static/bertviz/`` (relative
   to the page, so the book works from a folder, a file:// URL or a web server);
3. copies the three files there when the build has finished.

Without npm, or without the registry, the book still builds: the pages keep the CDN URLs, the
views then draw only with the internet, and the build log says so.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

STATIC_DIR = "_static/bertviz"
CDN = "https://cdnjs.cloudflare.com/ajax/libs/"
# CDN URL as bertviz writes it -> (file under node_modules, name under _static/bertviz/).
# require.config paths name a module without ".js"; the script tag names the file.
ASSETS = {
    CDN + "require.js/2.3.6/require.min.js": ("requirejs/require.js", "require.js"),
    CDN + "d3/5.7.0/d3.min": ("d3/dist/d3.min.js", "d3.min"),
    CDN + "jquery/2.0.0/jquery.min": ("jquery/dist/jquery.min.js", "jquery.min"),
}
PACKAGES = ("requirejs", "d3", "jquery")
NPM_TIMEOUT = 300  # seconds; npm ci takes about 4 s with the registry in reach
PREFIX = "bertviz offline: "


def locked_versions(root: Path) -> dict[str, str]:
    """The versions package-lock.json pins for the three packages."""
    lock = json.loads((root / "package-lock.json").read_text())
    return {name: lock["packages"][f"node_modules/{name}"]["version"] for name in PACKAGES}


def installed_versions(root: Path) -> dict[str, str | None]:
    """The versions in node_modules (None when a package or one of its files is missing)."""
    found = {}
    for name in PACKAGES:
        manifest = root / "node_modules" / name / "package.json"
        found[name] = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
    if not all((root / "node_modules" / source).is_file() for source, _ in ASSETS.values()):
        found = {name: None for name in PACKAGES}
    return found


@contextlib.contextmanager
def _one_install_at_a_time(root: Path):
    # Several builds of one checkout may start together (parallel tests); npm ci deletes and
    # rewrites node_modules, so one of them installs and the others wait and reuse it.
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"course-book-npm-{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(root: Path, npm: str | None = "npm") -> bool:
    """Make node_modules hold the locked scripts; True when they are there afterwards.

    ``npm`` is the command to run (None or a missing command: no npm on this machine).
    """
    if not (root / "package-lock.json").is_file():
        logger.info(PREFIX + f"no package-lock.json in {root}: the views keep their CDN URLs")
        return False
    wanted = locked_versions(root)
    with _one_install_at_a_time(root):
        if installed_versions(root) == wanted:
            logger.info(PREFIX + "node_modules holds " + _describe(wanted) + " (npm ci not needed)")
            return True
        command = shutil.which(npm) if npm else None
        if command is None:
            logger.info(
                PREFIX + "npm is not installed: the attention views keep their cdnjs URLs and draw "
                "only where the internet is (install Node.js/npm for a book that works offline)"
            )
            return False
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [command, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--fetch-retries=1"],
                cwd=root, capture_output=True, text=True, timeout=NPM_TIMEOUT,
            )
            failed = proc.returncode != 0
            reason = (proc.stderr or proc.stdout).strip().splitlines()[-1:] if failed else []
        except subprocess.TimeoutExpired:
            failed, reason = True, [f"timed out after {NPM_TIMEOUT} s"]
        if failed or installed_versions(root) != wanted:
            logger.info(
                PREFIX + f"npm ci failed ({' '.join(reason) or 'wrong versions installed'}): the "
                "attention views keep their cdnjs URLs and draw only where the internet is"
            )
            return False
        logger.info(PREFIX + f"npm ci installed {_describe(wanted)} in {time.perf_counter() - start:.1f} s")
        return True


def _describe(versions: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def rewrite(html: str, static_url: str) -> tuple[str, int]:
    """Point the three CDN URLs in ``html`` at ``static_url`` (the page's relative URL of
    _static/bertviz/, ending in "/"); returns the new html and the number of replacements."""
    count = 0
    for url, (_, local) in ASSETS.items():
        count += html.count(url)
        html = html.replace(url, static_url + local)
    return html, count


def copy_assets(root: Path, outdir: Path) -> None:
    """Copy the three files from node_modules into ``outdir``/_static/bertviz/."""
    target = outdir / STATIC_DIR
    target.mkdir(parents=True, exist_ok=True)
    for source, local in ASSETS.values():
        shutil.copyfile(root / "node_modules" / source, target / (local if local.endswith(".js") else local + ".js"))


def _builder_inited(app) -> None:
    # Kept on the app, not the environment: it describes this build, not the documents.
    app.bertviz_offline = app.builder.format == "html" and install(Path(app.srcdir), app.config.bertviz_offline_npm)
    app.bertviz_pages = set()


def _page_context(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if not getattr(app, "bertviz_offline", False) or not body or CDN not in body:
        return
    static_url = context["pathto"](STATIC_DIR + "/require.js", 1).removesuffix("require.js")
    context["body"], count = rewrite(body, static_url)
    if count:
        app.bertviz_pages.add(pagename)


def _build_finished(app, exception) -> None:
    if exception is not None or not getattr(app, "bertviz_offline", False):
        return
    copy_assets(Path(app.srcdir), Path(app.outdir))
    pages = sorted(app.bertviz_pages)
    logger.info(PREFIX + f"{len(pages)} page(s) load the attention views' scripts from {STATIC_DIR}/: {', '.join(pages)}")


def setup(app):
    app.add_config_value("bertviz_offline_npm", "npm", "")
    app.connect("builder-inited", _builder_inited)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": False}
