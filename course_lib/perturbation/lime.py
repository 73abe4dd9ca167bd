"""LIME on superpixels (Ribeiro et al. 2016): a weighted linear model fitted to random coalitions.

For one image with M segments: draw coalitions z in {0, 1}^M (each segment kept with
probability 1/2), score the model on each (dropped segments take the baseline), weight each
coalition by its closeness to the full image, and fit

    score(z) ~ b + sum_k w_k z_k     minimising   sum_z pi(z) (score(z) - b - w . z)^2 + alpha |w|^2.

The w_k are the attributions. Closeness, as in the ``lime`` package: the cosine distance between
z and the all-ones vector, d(z) = 1 - sqrt(|z| / M), through pi(z) = exp(-d^2 / (2 width^2)).

The coalitions are drawn as Captum's default ``perturb_func`` draws them (``torch.bernoulli``
on a 1 x M vector of 1/2 per sample), from a generator seeded with ``seed``: after
``torch.manual_seed(seed)`` Captum's ``Lime`` draws the same coalitions.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core import Target
from .coalitions import check_positive_int, coalition_scores, per_example, prepare, progress_bar, spread
from .fill import Fill


def lime_coalitions(n_segments: int, n_samples: int, seed: int = 0) -> torch.Tensor:
    """n_samples x M bool: each segment on with probability 1/2, drawn as Captum's Lime draws them."""
    generator = torch.Generator().manual_seed(seed)
    # One draw of n_samples x M gives the same numbers as n_samples draws of 1 x M (checked in the tests).
    return torch.bernoulli(torch.full((n_samples, n_segments), 0.5), generator=generator).bool()


def lime_kernel(coalitions: torch.Tensor, kernel_width: float = 0.25) -> torch.Tensor:
    """Weight of each coalition (S x M) by its cosine distance to the full image: S weights in (0, 1]."""
    z = coalitions.double()
    kept = z.sum(dim=1)
    # Cosine distance to the all-ones vector; the empty coalition has no direction: distance 1.
    distance = torch.where(kept > 0, 1 - torch.sqrt(kept / z.shape[1]), torch.ones_like(kept))
    return torch.exp(-(distance**2) / (2 * kernel_width**2))


def weighted_ridge(z: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(coefficients M, intercept) minimising sum w (y - b - z . coef)^2 + alpha |coef|^2, in float64.

    The intercept is not penalised: centre z and y on their weighted means, then solve the
    normal equations (as scikit-learn's Ridge does with ``sample_weight``).
    """
    z, y, weights = z.double(), y.double(), weights.double()
    wsum = weights.sum()
    z_mean = (weights[:, None] * z).sum(dim=0) / wsum
    y_mean = (weights * y).sum() / wsum
    zc, yc = z - z_mean, y - y_mean
    gram = zc.T @ (weights[:, None] * zc) + alpha * torch.eye(z.shape[1], dtype=torch.float64)
    rhs = zc.T @ (weights * yc)
    # lstsq, not solve: with alpha = 0 and too few samples the system is singular.
    coef = torch.linalg.lstsq(gram, rhs[:, None], driver="gelsd").solution[:, 0]
    return coef, y_mean - z_mean @ coef


def lime(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    segments,
    n_samples: int,
    kernel_width: float = 0.25,
    alpha: float = 1.0,
    baseline: Fill = "zero",
    seed: int = 0,
    batch_size: int | None = 64,
    progress: bool | None = None,
) -> torch.Tensor:
    """LIME weights of the segments, spread over their pixels: N x C x H x W -> N x C x H x W.

    ``segments``: H x W or N x H x W integer ids (``superpixels``). ``n_samples`` coalitions
    (forward passes) per image, drawn from ``seed`` (the same for every image). ``alpha`` is
    the ridge penalty (the ``lime`` package uses 1); ``baseline`` fills dropped segments.
    """
    check_positive_int(n_samples, "n_samples")
    if kernel_width <= 0:
        raise ValueError(f"kernel_width must be positive, got {kernel_width}")
    if alpha < 0:
        raise ValueError(f"alpha (the ridge penalty) must be >= 0, got {alpha}")
    p = prepare(model, inputs, target, segments, baseline)
    out = torch.empty_like(p.x)
    bar = progress_bar(n_samples * len(p.x), progress, "LIME")
    try:
        for i, image, base, segs, t, m in per_example(p):
            z = lime_coalitions(m, n_samples, seed)
            scores = coalition_scores(model, image, base, segs, t, z, batch_size, bar)
            coef, _ = weighted_ridge(z, scores, lime_kernel(z, kernel_width), alpha)
            out[i] = spread(coef.to(p.x.dtype), segs, p.x.shape[1])
    finally:
        bar.close()
    return out
