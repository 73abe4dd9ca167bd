"""Drawing, kept apart from computing: every function draws on a given ``ax``.

One style for the whole course: ``inferno`` for unsigned maps and ColorBrewer's ``PuOr`` for
signed ones (orange raises the score, purple lowers it); both read correctly with the common
colour-vision deficiencies. Maps are clipped at a high percentile of their magnitude, so that
a handful of extreme pixels do not wash out the rest.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

UNSIGNED_CMAP = "inferno"
SIGNED_CMAP = "PuOr"


def use_style() -> None:
    """The course's matplotlib style: modest resolution (notebooks stay small), quiet axes."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "font.size": 9,
            "axes.titlesize": 9,
            "figure.autolayout": False,
        }
    )


def to_image(x: torch.Tensor | np.ndarray, denormalize: Callable | None = None) -> np.ndarray:
    """A C x H x W tensor (or H x W x C array) -> H x W x 3 float array in [0, 1] for imshow."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if denormalize is not None:
            x = denormalize(x)
        if x.dim() == 3 and x.shape[0] in (1, 3):
            x = x.permute(1, 2, 0)
        x = x.numpy() if x.dtype == torch.uint8 else x.float().numpy()
    x = np.asarray(x)
    # uint8 is 0..255 whatever its values (a dark photo may not exceed 1); floats beyond 1.5 too.
    is_255 = x.dtype == np.uint8 or x.max() > 1.5
    x = x.astype(np.float32)
    if is_255:
        x = x / 255.0
    if x.ndim == 3 and x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    return np.clip(x, 0.0, 1.0)


def normalize_map(heatmap: torch.Tensor | np.ndarray, signed: bool = False,
                  percentile: float = 99.0) -> np.ndarray:
    """Scale an H x W map to [0, 1] (or [-1, 1] when ``signed``), clipping at a percentile of |map|."""
    m = heatmap.detach().cpu().float().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"a heatmap must be H x W, got shape {m.shape}: reduce channels first")
    scale = np.percentile(np.abs(m), percentile)
    if scale <= 0:
        scale = np.abs(m).max() or 1.0
    lo = -1.0 if signed else 0.0
    return np.clip(m / scale, lo, 1.0)


def _resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if m.shape == size:
        return m
    t = torch.from_numpy(np.ascontiguousarray(m))[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def show_image(ax, image, title: str | None = None, denormalize: Callable | None = None) -> None:
    """Draw an image on ``ax`` without ticks."""
    ax.imshow(to_image(image, denormalize))
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def show_heatmap(
    ax,
    heatmap,
    image=None,
    *,
    signed: bool = False,
    alpha: float = 0.6,
    percentile: float = 99.0,
    title: str | None = None,
    denormalize: Callable | None = None,
    colorbar: bool = False,
):
    """Draw an H x W map on ``ax``, over a greyed copy of ``image`` when one is given.

    Maps smaller than the image (a CAM) are upsampled bilinearly. Returns the image artist.
    """
    m = normalize_map(heatmap, signed=signed, percentile=percentile)
    cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
    vmin = -1.0 if signed else 0.0
    if image is not None:
        img = to_image(image, denormalize)
        grey = img.mean(axis=-1)
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        m = _resize_map(m, grey.shape)
        artist = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=1.0, alpha=alpha)
    else:
        artist = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=1.0)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(artist, ax=ax, fraction=0.046, pad=0.04)
    return artist


def method_grid(
    images: torch.Tensor | Sequence,
    maps: Mapping[str, torch.Tensor],
    *,
    row_titles: Sequence[str] | None = None,
    signed: Mapping[str, bool] | None = None,
    overlay: bool = False,
    denormalize: Callable | None = None,
    cell: float = 2.0,
):
    """A figure comparing methods: one row per image, the image then one column per method.

    ``maps`` maps a method name to its N x H x W maps. Returns the figure.
    """
    n = len(images)
    for name, m in maps.items():
        if len(m) != n:
            raise ValueError(f"{name} has {len(m)} maps for {n} images")
    signed = dict(signed or {})
    cols = 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(cell * cols, cell * n), squeeze=False)
    for i in range(n):
        show_image(axes[i, 0], images[i], denormalize=denormalize)
        if row_titles is not None:
            axes[i, 0].set_title(row_titles[i])
        for j, (name, m) in enumerate(maps.items(), start=1):
            show_heatmap(
                axes[i, j], m[i], images[i] if overlay else None,
                signed=signed.get(name, False), denormalize=denormalize,
                title=name if i == 0 else None,
            )
    fig.tight_layout()
    return fig
