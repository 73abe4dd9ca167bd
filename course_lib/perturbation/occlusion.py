"""Occlusion (Zeiler and Fergus 2014): slide a patch of fill over the image, record the score drop.

Every window position gives one occluded copy of the image and one forward pass. A pixel's
attribution is the *average* drop over the windows that cover it: with a stride smaller than
the window, pixels are covered by several windows, and averaging (not taking the max, not
overwriting with the last window) keeps every window's evidence with the same weight.

Windows are placed as Captum places them: starting at 0 and moving by the stride until the
image is covered, so along an axis of size L there are ceil((L - window) / stride) + 1
positions and the last window may be cut off by the border. A window covers every channel.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..core import Target, batches, check_inputs, logits_of, preserved_state, resolve_target, warn_if_training
from .coalitions import progress_bar
from .fill import Fill, make_baseline


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, columns), got {value!r}")
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TypeError(f"{name} must be an int or a pair of ints (rows, columns), got {value!r}")
    if min(value) < 1:
        raise ValueError(f"{name} must be at least 1 pixel along each axis, got {value}")
    return value


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """First index of each window along an axis of ``size`` pixels: 0, stride, 2 * stride, ..."""
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


def count_windows(image_size: int | Sequence[int], window: int | Sequence[int], stride: int | Sequence[int]) -> int:
    """How many occluded copies (forward passes) one image of ``image_size`` (H, W) costs."""
    (h, w), (wh, ww), (sh, sw) = _pair(image_size, "image_size"), _pair(window, "window"), _pair(stride, "stride")
    return len(window_starts(h, wh, sh)) * len(window_starts(w, ww, sw))


def _check_geometry(h: int, w: int, window: tuple[int, int], stride: tuple[int, int]) -> None:
    for axis, size, win, step in (("rows", h, window[0], stride[0]), ("columns", w, window[1], stride[1])):
        if win > size:
            raise ValueError(
                f"the window ({window[0]} x {window[1]}) is larger than the image ({h} x {w}) along the {axis}"
            )
        if step > win and win < size:
            raise ValueError(
                f"stride {step} is larger than the window {win} along the {axis}: the pixels between "
                f"windows would never be occluded and get no attribution; use stride <= window"
            )


def occlusion(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    window: int | Sequence[int],
    stride: int | Sequence[int],
    fill: Fill = "zero",
    batch_size: int | None = 64,
    progress: bool | None = None,
) -> torch.Tensor:
    """Mean score drop over the windows covering each pixel: N x C x H x W -> N x C x H x W.

    Positive means hiding the pixel lowers the target's score. ``window`` and ``stride`` are
    ints or (rows, columns); ``fill`` is "zero", "mean", "blur", a number or a tensor (see
    ``make_baseline``). ``batch_size`` occluded images go through the model per pass;
    ``progress=None`` shows a bar for long runs.
    """
    check_inputs(inputs)
    window, stride = _pair(window, "window"), _pair(stride, "stride")
    n, c, h, w = inputs.shape
    _check_geometry(h, w, window, stride)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    warn_if_training(model)
    x = inputs.detach()
    base = make_baseline(x, fill)
    wh, ww = window
    windows = [(r, col) for r in window_starts(h, wh, stride[0]) for col in window_starts(w, ww, stride[1])]
    p = len(windows)
    count = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    for r, col in windows:
        count[r : r + wh, col : col + ww] += 1
    total = torch.zeros(n, h, w, dtype=x.dtype, device=x.device)
    bar = progress_bar(n * p, progress, "occlusion")
    try:
        with preserved_state(model), torch.no_grad():
            logits = logits_of(model(x))
            if logits.dim() != 2 or logits.shape[0] != n:
                raise ValueError(f"the model must return N x K class scores, got shape {tuple(logits.shape)}")
            t = resolve_target(target, logits)
            clean = logits.gather(1, t[:, None])[:, 0]
            # Copies are example-major (all windows of image 0, then image 1, ...), built per chunk
            # so that memory holds one chunk, never all N x P copies.
            for chunk in batches(n * p, batch_size):
                pairs = [(i // p, windows[i % p]) for i in range(chunk.start, chunk.stop)]
                examples = torch.tensor([e for e, _ in pairs], device=x.device)
                occluded = x[examples].clone()
                for j, (e, (r, col)) in enumerate(pairs):
                    occluded[j, :, r : r + wh, col : col + ww] = base[e, :, r : r + wh, col : col + ww]
                scores = logits_of(model(occluded)).gather(1, t[examples][:, None])[:, 0]
                drops = clean[examples] - scores
                for j, (e, (r, col)) in enumerate(pairs):
                    total[e, r : r + wh, col : col + ww] += drops[j]
                bar.update(len(pairs))
    finally:
        bar.close()
    return (total / count).unsqueeze(1).expand(n, c, h, w).clone()
