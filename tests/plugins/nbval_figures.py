"""A pytest plugin for nbval: compare re-executed figures with the stored ones.

nbval skips ``image/png`` outputs (PNG bytes are not text), so a figure could change without
any test noticing. This plugin wraps nbval's output comparison: after nbval's own text
comparison passes, every stored PNG of a cell is decoded and compared with the freshly
produced PNG at the same position. A figure fails when its size differs, or when more than
``MAX_CHANGED_FRACTION`` of its pixels differ by more than ``PIXEL_TOLERANCE`` (out of 255)
in some channel, which tolerates anti-aliasing noise but not a changed plot.

Loaded with ``-p tests.plugins.nbval_figures`` (see the Makefile).
"""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

PIXEL_TOLERANCE = 8
MAX_CHANGED_FRACTION = 0.001


def _pngs(outputs) -> list[str]:
    return [o["data"]["image/png"] for o in outputs if "data" in o and "image/png" in o.get("data", {})]


def _decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGBA"), dtype=np.int16)


def compare_figures(stored: list[str], fresh: list[str]) -> list[str]:
    """Problems found comparing stored and fresh base64 PNGs, in order; empty when they agree."""
    if len(stored) != len(fresh):
        return [f"{len(stored)} stored figures but {len(fresh)} produced"]
    problems = []
    for k, (a, b) in enumerate(zip(stored, fresh)):
        if a == b:
            continue
        ia, ib = _decode(a), _decode(b)
        if ia.shape != ib.shape:
            problems.append(f"figure {k}: size {ia.shape[1]}x{ia.shape[0]} stored, {ib.shape[1]}x{ib.shape[0]} produced")
            continue
        changed = float((np.abs(ia - ib).max(axis=-1) > PIXEL_TOLERANCE).mean())
        if changed > MAX_CHANGED_FRACTION:
            problems.append(
                f"figure {k}: {100 * changed:.2f}% of pixels differ by more than {PIXEL_TOLERANCE}/255 "
                f"(tolerance {100 * MAX_CHANGED_FRACTION:.2f}%)"
            )
    return problems


def pytest_configure(config):
    if not getattr(config.option, "nbval", False):
        return
    from nbval.plugin import IPyNbCell

    if getattr(IPyNbCell.compare_outputs, "_compares_figures", False):
        return
    original = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        ok = original(self, test, ref, skip_compare)
        if not ok:
            return False
        problems = compare_figures(_pngs(ref), _pngs(test))
        if problems:
            self.comparison_traceback = ["Figures differ from the stored notebook:"] + problems
            return False
        return True

    compare_outputs._compares_figures = True
    IPyNbCell.compare_outputs = compare_outputs
