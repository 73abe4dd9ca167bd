"""Drawing attention: one head, the heads of a layer as a grid, head statistics.

Every map is drawn with seaborn in the course's unsigned colour map (``viz.UNSIGNED_CMAP``,
black = 0) on a stated scale: the colour bar says what the brightest colour means. Rows are
the query tokens ("from"), columns the key tokens ("to"); each row sums to 1.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from ..viz import UNSIGNED_CMAP

WEIGHT_LABEL = "attention weight"


def _matrix(attention) -> np.ndarray:
    a = attention.detach().cpu().double().numpy() if isinstance(attention, torch.Tensor) else np.asarray(attention, float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"an attention map must be T x T, got shape {a.shape}: pick a layer and a head first")
    return a


def show_attention(
    ax,
    attention,
    tokens: Sequence[str],
    *,
    title: str | None = None,
    vmax: float | None = 1.0,
    colorbar: bool = True,
    cbar_ax=None,
    xticks: bool = True,
    yticks: bool = True,
    label: str = WEIGHT_LABEL,
):
    """Draw one T x T attention map on ``ax`` with the tokens on both axes.

    ``vmax``: the weight drawn brightest (weights above it are clipped, and the colour bar
    says so); None uses the map's own maximum. Returns the QuadMesh artist.
    """
    a = _matrix(attention)
    if len(tokens) != a.shape[0]:
        raise ValueError(f"{len(tokens)} tokens for a {a.shape[0]} x {a.shape[1]} map")
    top = float(a.max()) if vmax is None else float(vmax)
    clipped = bool(a.max() > top + 1e-12)
    sns.heatmap(
        a, ax=ax, vmin=0.0, vmax=top, cmap=UNSIGNED_CMAP, square=True,
        xticklabels=list(tokens) if xticks else False, yticklabels=list(tokens) if yticks else False,
        cbar=colorbar, cbar_ax=cbar_ax,
        cbar_kws={"label": label + (f" (clipped at {top:.2f})" if clipped else ""),
                  "extend": "max" if clipped else "neither", "shrink": 0.8} if colorbar else None,
    )
    ax.tick_params(length=0)
    if xticks:
        ax.set_xlabel("key (attended to)")
        plt.setp(ax.get_xticklabels(), rotation=90)
    if yticks:
        ax.set_ylabel("query (attending)")
        plt.setp(ax.get_yticklabels(), rotation=0)
    if title:
        ax.set_title(title)
    return ax.collections[0]


def attention_grid(
    maps: torch.Tensor,
    tokens: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    vmax: float | None = 1.0,
    cell: float = 2.2,
    suptitle: str | None = None,
):
    """All maps of a K x T x T tensor (e.g. the heads of one layer) on one shared scale, with
    one colour bar; tokens on the left column and the bottom row. Returns the figure."""
    if maps.dim() != 3:
        raise ValueError(f"maps must be K x T x T (e.g. maps[layer]), got shape {tuple(maps.shape)}")
    k = maps.shape[0]
    titles = list(titles) if titles is not None else [f"head {h}" for h in range(k)]
    nrows = -(-k // ncols)
    top = float(maps.max()) if vmax is None else float(vmax)
    fig = plt.figure(figsize=(cell * ncols + 0.9, cell * nrows + 0.4))
    grid = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1] * ncols + [0.06], wspace=0.08, hspace=0.25)
    cbar_ax = fig.add_subplot(grid[:, -1])
    for j in range(k):
        r, c = divmod(j, ncols)
        ax = fig.add_subplot(grid[r, c])
        last_in_column = j + ncols >= k
        show_attention(
            ax, maps[j], tokens, title=titles[j], vmax=top, colorbar=j == 0, cbar_ax=cbar_ax if j == 0 else None,
            xticks=last_in_column, yticks=c == 0,
        )
        if c != 0:
            ax.set_ylabel("")
        if not last_in_column:
            ax.set_xlabel("")
    if suptitle:
        fig.suptitle(suptitle, y=1.0)
    return fig


def show_head_statistic(ax, values, *, title: str | None = None, vmax: float | None = 1.0,
                        label: str = "mean share of attention", fmt: str = ".2f", annotate: bool = True):
    """Draw one statistic per head as a layers x heads table of colours (and numbers)."""
    v = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    if v.ndim != 2:
        raise ValueError(f"values must be layers x heads, got shape {v.shape}: average over the examples first")
    sns.heatmap(
        v, ax=ax, vmin=0.0, vmax=float(np.nanmax(v)) if vmax is None else vmax, cmap=UNSIGNED_CMAP,
        annot=annotate, fmt=fmt, annot_kws={"fontsize": 7}, cbar_kws={"label": label, "shrink": 0.8},
    )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.tick_params(length=0)
    plt.setp(ax.get_yticklabels(), rotation=0)
    if title:
        ax.set_title(title)
    return ax.collections[0]
