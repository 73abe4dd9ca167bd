"""Drawing, kept apart from computing: every function draws on a given ``ax``.

One style for the whole course, chosen so that a figure can be read without the text:

- Unsigned maps use ``inferno`` (black = 0, bright yellow = large). Signed maps use
  ColorBrewer's purple-orange map reversed (``PuOr_r``): **orange = positive = raises the
  class score, purple = negative = lowers it**, white = 0. Both read correctly with the common
  colour-vision deficiencies. ``SIGN_LEGEND`` is the sentence a signed colour bar carries by
  default; it fits sensitivity maps (gradients). A map of contributions relative to a
  baseline (gradient x input, Integrated Gradients, SHAP) passes ``sign_legend=CONTRIBUTION_LEGEND``:
  orange there means "adds to the score relative to the baseline", a different statement.
- Maps are drawn in their own units, not rescaled to [0, 1], so a colour bar tells how large
  the values are. The colour scale ends at a high percentile of |map| (``clip_percentile``,
  99 by default), so that a handful of extreme pixels do not wash out the rest; the colour bar
  then has a pointed end and its label says where it was clipped. ``clip_percentile=100``
  (or ``None``) draws the full range; ``vmax`` sets the scale by hand.
- ``method_grid(..., shared_scale=True)`` puts every map on one scale with one colour bar, so
  magnitudes can be compared across methods (per-map scales hide them).
- Panels are sized so that a map is drawn at about its native resolution (a 224 x 224 map
  takes about 224 x 224 figure pixels at the course's 100 dpi).
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

UNSIGNED_CMAP = "inferno"
SIGNED_CMAP = "PuOr_r"  # reversed PuOr: +1 is orange, -1 is purple
SIGN_LEGEND = "orange + raises score, purple - lowers"
CONTRIBUTION_LEGEND = "orange + adds to score vs baseline, purple - takes away"
DPI = 100


def use_style() -> None:
    """The course's matplotlib style: modest resolution (notebooks stay small), readable text."""
    plt.rcParams.update(
        {
            "figure.dpi": DPI,
            "savefig.dpi": DPI,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
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


def _as_map(heatmap) -> np.ndarray:
    m = (heatmap.detach().cpu().double().numpy() if isinstance(heatmap, torch.Tensor)
         else np.asarray(heatmap, dtype=np.float64))
    if m.ndim != 2:
        raise ValueError(f"a heatmap must be H x W, got shape {m.shape}: reduce channels first")
    return m


def map_scale(heatmaps, clip_percentile: float | None = 99.0) -> float:
    """The colour-scale limit of one or more maps: the ``clip_percentile`` of |values| (their
    maximum when ``clip_percentile`` is None or 100, or when the percentile is 0)."""
    values = np.concatenate([np.abs(_as_map(m)).ravel() for m in
                             (heatmaps if isinstance(heatmaps, (list, tuple)) else [heatmaps])])
    peak = float(values.max()) if values.size else 0.0
    if clip_percentile is None or clip_percentile >= 100:
        scale = peak
    else:
        if not 0 < clip_percentile < 100:
            raise ValueError(f"clip_percentile must be in (0, 100] or None, got {clip_percentile}")
        scale = float(np.percentile(values, clip_percentile))
        if scale <= 0:  # a sparse map: most values are 0
            scale = peak
    return scale if scale > 0 else 1.0


def normalize_map(heatmap, signed: bool = False, percentile: float | None = 99.0) -> np.ndarray:
    """An H x W map divided by its ``map_scale`` and clipped to [0, 1] ([-1, 1] when ``signed``)."""
    m = _as_map(heatmap)
    lo = -1.0 if signed else 0.0
    return np.clip(m / map_scale(m, percentile), lo, 1.0).astype(np.float32)


def _resize_map(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if m.shape == size:
        return m
    t = torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))[None, None]
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def show_image(ax, image, title: str | None = None, denormalize: Callable | None = None) -> None:
    """Draw an image on ``ax`` without ticks."""
    ax.imshow(to_image(image, denormalize))
    ax.set_axis_off()
    if title:
        ax.set_title(title)


def colorbar_label(signed: bool, clipped: bool, clip_percentile: float | None,
                   label: str | None = None, sign_legend: str | None = None) -> str:
    """The text of a heatmap's colour bar: units, sign legend, and where the scale was clipped."""
    parts = [label] if label else []
    if signed:
        parts.append(sign_legend or SIGN_LEGEND)
    if clipped:
        parts.append(f"clipped at {clip_percentile:g}th pct of |map|")
    return "\n".join(parts)


def add_colorbar(artist, ax=None, *, signed: bool = False, clipped: bool = False,
                 clip_percentile: float | None = None, label: str | None = None,
                 sign_legend: str | None = None):
    """A colour bar for ``artist`` beside ``ax`` (a list of axes shares one), labelled with
    ``colorbar_label``; a clipped scale gets pointed ends. Returns the colour bar."""
    extend = ("both" if signed else "max") if clipped else "neither"
    fig = artist.figure
    cbar = fig.colorbar(artist, ax=ax if ax is not None else artist.axes, fraction=0.046,
                        pad=0.03, extend=extend)
    text = colorbar_label(signed, clipped, clip_percentile, label, sign_legend)
    if text:
        cbar.set_label(text, fontsize=8)
    cbar.ax.tick_params(labelsize=8)
    cbar.formatter.set_powerlimits((-2, 3))
    cbar.update_ticks()
    return cbar


def show_heatmap(
    ax,
    heatmap,
    image=None,
    *,
    signed: bool = False,
    alpha: float = 0.6,
    clip_percentile: float | None = 99.0,
    vmax: float | None = None,
    title: str | None = None,
    denormalize: Callable | None = None,
    colorbar: bool = True,
    label: str | None = None,
    sign_legend: str | None = None,
):
    """Draw an H x W map on ``ax`` in its own units, over a greyed copy of ``image`` if given.

    The colour scale runs from 0 (or -scale when ``signed``) to scale, where scale is ``vmax``
    or else the ``clip_percentile`` of |map|. Unsigned maps clip negative values to 0. Maps
    smaller than the image (a CAM) are upsampled bilinearly. ``colorbar`` adds a labelled
    colour bar (``label`` names the units; ``sign_legend`` replaces ``SIGN_LEGEND`` for signed
    maps, e.g. ``CONTRIBUTION_LEGEND``). Returns the image artist.
    """
    m = _as_map(heatmap)
    scale = float(vmax) if vmax is not None else map_scale(m, clip_percentile)
    clipped = bool(np.abs(m).max() > scale * (1 + 1e-9))
    cmap = SIGNED_CMAP if signed else UNSIGNED_CMAP
    vmin = -scale if signed else 0.0
    if image is not None:
        img = to_image(image, denormalize)
        grey = img.mean(axis=-1)
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        m = _resize_map(m, grey.shape)
        artist = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=scale, alpha=alpha)
    else:
        artist = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=scale, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if colorbar:
        add_colorbar(artist, ax, signed=signed, clipped=clipped,
                     clip_percentile=None if vmax is not None else clip_percentile, label=label,
                     sign_legend=sign_legend)
    return artist


def native_cell(height: int, width: int, minimum: float = 1.6) -> float:
    """Panel size in inches that draws an H x W map at about one figure pixel per value."""
    return max(minimum, max(height, width) / DPI)


def method_grid(
    images: torch.Tensor | Sequence,
    maps: Mapping[str, torch.Tensor],
    *,
    row_titles: Sequence[str] | None = None,
    signed: Mapping[str, bool] | None = None,
    overlay: bool = False,
    denormalize: Callable | None = None,
    cell: float | None = None,
    shared_scale: bool = False,
    clip_percentile: float | None = 99.0,
    colorbar: bool = True,
    label: str | None = None,
    sign_legend: Mapping[str, str] | None = None,
):
    """A figure comparing methods: one row per image, the image then one column per method.

    ``maps`` maps a method name to its N x H x W maps. By default each map has its own scale
    and colour bar. ``shared_scale=True`` draws every map on one scale (the ``clip_percentile``
    of |values| over all maps) with one colour bar per kind (signed, unsigned) at the right,
    so that magnitudes compare across methods. ``cell`` (inches per panel) defaults to the
    maps' native resolution. ``sign_legend`` maps a signed method's name to the legend of its
    colour bar (default ``SIGN_LEGEND``; ``CONTRIBUTION_LEGEND`` for contributions). Returns the
    figure.
    """
    n = len(images)
    for name, m in maps.items():
        if len(m) != n:
            raise ValueError(f"{name} has {len(m)} maps for {n} images")
    signed = dict(signed or {})
    unknown = set(signed) - set(maps)
    if unknown:
        raise ValueError(f"signed names methods that are not in maps: {sorted(unknown)}")
    if cell is None:
        h, w = next(iter(maps.values()))[0].shape[-2:] if maps else (64, 64)
        cell = native_cell(int(h), int(w))
    cols = 1 + len(maps)
    # Colour bars with their labels take about an inch each: added to the width, so that the
    # maps keep their native size.
    bar_width = 0.0 if not colorbar else (1.1 if shared_scale else 1.05 * len(maps))
    legends = dict(sign_legend or {})
    fig, axes = plt.subplots(n, cols, figsize=(cell * cols + bar_width, cell * n + 0.35),
                             squeeze=False, layout="constrained")
    scales: dict[bool, float] = {}
    shared_legend: dict[bool, str | None] = {}
    if shared_scale:
        # One bar per kind of map: the signed maps sharing it must share one sign legend.
        told = {legends.get(name) for name in maps if signed.get(name, False)}
        if len(told) > 1:
            raise ValueError(f"signed maps on one shared scale share one colour bar, so they need one "
                             f"sign legend; got {sorted(t or 'the default' for t in told)}")
        shared_legend[True] = told.pop() if told else None
        for kind in (False, True):
            group = [m[i] for name, m in maps.items() if signed.get(name, False) == kind
                     for i in range(n)]
            if group:
                scales[kind] = map_scale(list(group), clip_percentile)
    artists: dict[bool, list] = {False: [], True: []}
    clipped = {False: False, True: False}
    for i in range(n):
        show_image(axes[i, 0], images[i], denormalize=denormalize)
        if row_titles is not None:
            axes[i, 0].set_title(row_titles[i])
        for j, (name, m) in enumerate(maps.items(), start=1):
            kind = signed.get(name, False)
            artist = show_heatmap(
                axes[i, j], m[i], images[i] if overlay else None, signed=kind,
                denormalize=denormalize, title=name if i == 0 else None,
                clip_percentile=clip_percentile, vmax=scales.get(kind),
                colorbar=colorbar and not shared_scale, label=label,
                sign_legend=legends.get(name),
            )
            artists[kind].append((axes[i, j], artist))
            if shared_scale:
                clipped[kind] |= bool(np.abs(_as_map(m[i])).max() > scales[kind] * (1 + 1e-9))
    if colorbar and shared_scale:
        for kind, pairs in artists.items():
            if pairs:
                add_colorbar(pairs[0][1], [ax for ax, _ in pairs], signed=kind,
                             clipped=clipped[kind], clip_percentile=clip_percentile,
                             label=f"{label} (one scale for all maps)" if label else "one scale for all maps",
                             sign_legend=shared_legend.get(kind))
    return fig
