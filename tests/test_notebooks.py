"""Checks of the stored chapters that nbval does not make: pairing, completeness, size."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import compare_notebooks
from PIL import Image

from tests.plugins.nbval_figures import compare_figures

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
# A figure of three 224 x 224 gradient maps at native resolution is mostly pixel-level speckle,
# which PNG cannot compress: about 200 KB a map. Grids of more maps should be split.
MAX_PNG_BYTES = 700_000
MAX_PNG_WIDTH = 1600
MAX_NOTEBOOK_BYTES = 4_000_000


def test_there_are_chapters():
    assert len(SOURCES) >= 2


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_pair_cells_agree(source):
    """The .py source and the stored .ipynb have the same cells (outputs aside)."""
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `make notebooks`"
    compare_notebooks(
        jupytext.read(source), nbformat.read(ipynb, as_version=4),
        fmt="py:percent", compare_outputs=False,
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_is_fully_executed_without_errors(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, "a chapter without code"
    counts = [c.execution_count for c in code]
    assert None not in counts, "some cells were never executed: run `make notebooks`"
    assert counts == list(range(1, len(code) + 1)), "cells were not executed top to bottom in one run"
    for c in code:
        for o in c.outputs:
            assert o.output_type != "error", f"stored error output in cell {c.source[:60]!r}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_outputs_are_modest_and_machine_independent(source):
    ipynb = source.with_suffix(".ipynb")
    assert ipynb.stat().st_size < MAX_NOTEBOOK_BYTES
    nb = nbformat.read(ipynb, as_version=4)
    for c in nb.cells:
        for o in c.get("outputs", []):
            text = json.dumps(o.get("text", "")) + json.dumps(o.get("data", {}).get("text/plain", ""))
            # A path of the machine that executed the notebook would differ on a fresh clone.
            assert str(ROOT) not in text, f"output mentions {ROOT}: {text[:200]}"
            png = o.get("data", {}).get("image/png")
            if png:
                raw = base64.b64decode(png)
                assert len(raw) < MAX_PNG_BYTES, f"a {len(raw)} byte figure: lower its size or dpi"
                assert Image.open(io.BytesIO(raw)).width <= MAX_PNG_WIDTH


def _png(colour, size=(40, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_figure_check_accepts_identical_and_rejects_changed_pixels():
    same = _png((10, 20, 30))
    assert compare_figures([same], [same]) == []
    changed = _png((10, 20, 200))
    assert compare_figures([same], [changed]), "a changed figure must fail"
    assert compare_figures([same], [_png((10, 20, 30), size=(41, 30))]), "a resized figure must fail"
    assert compare_figures([same], []), "a missing figure must fail"


def test_figure_check_tolerates_a_few_faint_pixels():
    base = Image.new("RGB", (200, 200), (100, 100, 100))
    faint = base.copy()
    faint.putpixel((5, 5), (104, 100, 100))  # below the per-pixel tolerance
    enc = []
    for im in (base, faint):
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        enc.append(base64.b64encode(buf.getvalue()).decode())
    assert compare_figures([enc[0]], [enc[1]]) == []
