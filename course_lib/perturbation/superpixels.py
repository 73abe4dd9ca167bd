"""Superpixels: the features LIME and the Shapley methods switch on and off.

``superpixels`` runs SLIC (Achanta et al. 2012, from scikit-image) on RGB images in [0, 1];
``grid_segments`` cuts an image into equal tiles. Both give integer segment ids 0..M-1, and
the same segments go to every method, so their values can be compared segment by segment
(``segment_values``) and drawn as maps (``segment_map``).
"""
from __future__ import annotations

import numpy as np
import torch

from ..core import check_inputs


def superpixels(
    images: torch.Tensor | np.ndarray,
    n_segments: int,
    *,
    compactness: float = 10.0,
    sigma: float = 1.0,
    seed: int = 0,
) -> torch.Tensor:
    """SLIC superpixels of RGB images in [0, 1]: C x H x W -> H x W, N x C x H x W -> N x H x W.

    An H x W x 3 numpy array gives H x W. Ids run from 0 to M-1 in each image; SLIC treats
    ``n_segments`` as a target, so M is close to it, not equal. Model inputs are normalised:
    denormalise them first (``loaded.denormalize(x)``), or the colours SLIC sees are wrong.
    """
    from skimage.segmentation import slic

    if isinstance(n_segments, bool) or not isinstance(n_segments, int) or n_segments < 1:
        raise ValueError(f"n_segments must be a positive int, got {n_segments!r}")
    single = False
    if isinstance(images, np.ndarray):
        if images.ndim != 3 or images.shape[-1] != 3:
            raise ValueError(f"a numpy image must be H x W x 3, got shape {images.shape}")
        batch = torch.from_numpy(np.ascontiguousarray(images)).permute(2, 0, 1)[None].double()
        single = True
    else:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a tensor or an H x W x 3 array, got {type(images).__name__}")
        if images.dim() == 3:
            images, single = images[None], True
        check_inputs(images, name="images")
        batch = images.detach().cpu().double()
    if batch.shape[1] != 3:
        raise ValueError(f"superpixels needs RGB images (3 channels), got {batch.shape[1]} channels")
    lo, hi = float(batch.min()), float(batch.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(
            f"superpixels expects RGB values in [0, 1], got values in [{lo:.2f}, {hi:.2f}]: "
            f"model inputs are normalised, denormalise them first (loaded.denormalize(x))"
        )
    out = []
    for img in batch.clamp(0, 1):
        labels = slic(
            img.permute(1, 2, 0).numpy(), n_segments=n_segments, compactness=compactness,
            sigma=sigma, start_label=0, channel_axis=-1,
        )
        # SLIC can leave gaps in its numbering: renumber 0..M-1.
        _, labels = np.unique(labels, return_inverse=True)
        out.append(torch.from_numpy(labels.reshape(img.shape[1:]).astype(np.int64)))
    segments = torch.stack(out)
    return segments[0] if single else segments


def grid_segments(height: int, width: int, rows: int, cols: int) -> torch.Tensor:
    """An H x W map of ``rows`` x ``cols`` near-equal tiles, numbered row by row from 0."""
    for name, v in (("height", height), ("width", width), ("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if rows > height or cols > width:
        raise ValueError(f"cannot cut a {height} x {width} image into {rows} x {cols} tiles")
    r = torch.arange(height) * rows // height
    c = torch.arange(width) * cols // width
    return r[:, None] * cols + c[None, :]


def segment_values(maps: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """The mean of each segment: maps N x C x H x W (or N x H x W) -> N x M (M = largest id + 1).

    For the segment methods, whose maps are constant on each segment, this recovers their
    values; ids that do not occur in an image give NaN.
    """
    if maps.dim() == 4:
        maps = maps.mean(dim=1)
    if maps.dim() != 3:
        raise ValueError(f"maps must be N x C x H x W or N x H x W, got shape {tuple(maps.shape)}")
    if segments.dim() == 2:
        segments = segments.expand(len(maps), *segments.shape)
    if segments.shape != maps.shape:
        raise ValueError(f"segments of shape {tuple(segments.shape)} do not match maps of shape {tuple(maps.shape)}")
    m = int(segments.max()) + 1
    flat_ids = segments.reshape(len(maps), -1).long()
    sums = torch.zeros(len(maps), m, dtype=maps.dtype, device=maps.device).scatter_add_(1, flat_ids, maps.reshape(len(maps), -1))
    counts = torch.zeros(len(maps), m, dtype=maps.dtype, device=maps.device).scatter_add_(
        1, flat_ids, torch.ones_like(maps.reshape(len(maps), -1))
    )
    return sums / counts  # 0 / 0 = NaN where an id is absent


def segment_map(values: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Per-segment values N x M (or M) -> maps N x H x W (or H x W): each pixel gets its segment's value."""
    if values.dim() == 1:
        return values[segments]
    if segments.dim() == 2:
        segments = segments.expand(len(values), *segments.shape)
    return torch.stack([v[s] for v, s in zip(values, segments)])
