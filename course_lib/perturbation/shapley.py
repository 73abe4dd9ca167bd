"""Shapley values of superpixels (Shapley 1953): exactly, and by sampling permutations.

The game: the players are an image's M segments; a coalition S is worth v(S), the target's
score (logit) when the segments in S show the image and the others show the baseline. Segment
k's Shapley value is its marginal contribution averaged over all orders of arrival:

    phi_k = sum over S not containing k of  |S|! (M - |S| - 1)! / M!  (v(S + k) - v(S)).

``exact_shapley`` evaluates all 2^M coalitions (the ground truth, for small M);
``permutation_shapley`` averages marginal contributions along random orders, an unbiased
estimate whose standard error it reports. Its orders are drawn as Captum's
``ShapleyValueSampling`` draws them (``torch.randperm`` per sample), from a generator seeded
with ``seed``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..core import Target
from .coalitions import check_positive_int, coalition_scores, per_example, prepare, progress_bar, spread
from .fill import Fill

MAX_EXACT_SEGMENTS = 12


def all_coalitions(n_segments: int) -> torch.Tensor:
    """2^M x M bool: row s is the coalition whose bit k (of the integer s) says whether segment k is in."""
    codes = torch.arange(2**n_segments)
    return ((codes[:, None] >> torch.arange(n_segments)) & 1).bool()


def shapley_from_values(values: torch.Tensor) -> torch.Tensor:
    """Exact Shapley values (M) from the worth of all 2^M coalitions, indexed as ``all_coalitions``."""
    n = len(values)
    m = n.bit_length() - 1
    if n != 2**m:
        raise ValueError(f"need the worth of all 2^M coalitions, got {n} values")
    v = values.double()
    codes = torch.arange(n)
    sizes = all_coalitions(m).sum(dim=1)
    # |S|! (M - |S| - 1)! / M! for |S| = 0..M-1
    weight = torch.tensor(
        [math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)], dtype=torch.float64
    )
    phi = torch.empty(m, dtype=torch.float64)
    for k in range(m):
        without = codes[((codes >> k) & 1) == 0]
        phi[k] = (weight[sizes[without]] * (v[without | (1 << k)] - v[without])).sum()
    return phi


def _refuse_too_many(n_segments: list[int], max_segments: int) -> None:
    worst = max(n_segments)
    if worst > max_segments:
        raise ValueError(
            f"exact Shapley values need all 2^M coalitions: {worst} segments would take "
            f"{2**worst:,} forward passes per image (each extra segment doubles the cost). "
            f"Use fewer segments (superpixels(..., n_segments=...)), or estimate the values with "
            f"kernel_shap or permutation_shapley; raise max_segments (now {max_segments}) only if "
            f"you mean to pay for it."
        )


def coalition_values(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    segments,
    baseline: Fill = "zero",
    batch_size: int | None = 64,
    max_segments: int = MAX_EXACT_SEGMENTS,
    progress: bool | None = None,
) -> list[torch.Tensor]:
    """The worth v(S) of every coalition of every image: N x C x H x W -> a list of N CPU tensors of
    2^M_i scores, indexed as ``all_coalitions(M_i)`` (entry 0: the baseline, entry -1: the image).

    Every estimator of Shapley values only ever asks for some of these numbers; with the whole
    table at hand, any estimator at any budget can be simulated without another forward pass.
    """
    check_positive_int(max_segments, "max_segments")
    p = prepare(model, inputs, target, segments, baseline)
    _refuse_too_many(p.n_segments, max_segments)
    bar = progress_bar(sum(2**m for m in p.n_segments), progress, "coalitions")
    try:
        return [
            coalition_scores(model, image, base, segs, t, all_coalitions(m), batch_size, bar)
            for _, image, base, segs, t, m in per_example(p)
        ]
    finally:
        bar.close()


def exact_shapley(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    segments,
    baseline: Fill = "zero",
    batch_size: int | None = 64,
    max_segments: int = MAX_EXACT_SEGMENTS,
    progress: bool | None = None,
) -> torch.Tensor:
    """Exact Shapley values of the segments, spread over their pixels: N x C x H x W -> N x C x H x W.

    Costs 2^M forward passes per image (4,096 for 12 segments); refuses more than
    ``max_segments`` segments. The values of each image sum to f(x) - f(baseline).
    """
    check_positive_int(max_segments, "max_segments")
    p = prepare(model, inputs, target, segments, baseline)
    _refuse_too_many(p.n_segments, max_segments)
    out = torch.empty_like(p.x)
    bar = progress_bar(sum(2**m for m in p.n_segments), progress, "exact Shapley")
    try:
        for i, image, base, segs, t, m in per_example(p):
            values = coalition_scores(model, image, base, segs, t, all_coalitions(m), batch_size, bar)
            out[i] = spread(shapley_from_values(values).to(p.x.dtype), segs, p.x.shape[1])
    finally:
        bar.close()
    return out


def permutation_coalitions(n_segments: int, n_permutations: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(orders n_permutations x M, coalitions n_permutations x M x M bool): coalition [p, j] holds
    the first j + 1 segments of order p."""
    generator = torch.Generator().manual_seed(seed)
    orders = torch.stack([torch.randperm(n_segments, generator=generator) for _ in range(n_permutations)])
    ranks = torch.argsort(orders, dim=1)  # ranks[p, k]: the step at which segment k arrives
    steps = torch.arange(n_segments)
    coalitions = ranks[:, None, :] <= steps[None, :, None]
    return orders, coalitions


def permutation_shapley(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    segments,
    n_permutations: int,
    baseline: Fill = "zero",
    seed: int = 0,
    batch_size: int | None = 64,
    return_stderr: bool = False,
    progress: bool | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Shapley values estimated from random orders: N x C x H x W -> N x C x H x W.

    Each order costs M - 1 forward passes (the empty and the full coalition are shared by
    all orders: 2 + n_permutations (M - 1) in total per image). With ``return_stderr`` also
    the standard error of each value (sample standard deviation over orders / sqrt(n)), same
    shape; NaN with a single order.
    """
    check_positive_int(n_permutations, "n_permutations")
    p = prepare(model, inputs, target, segments, baseline)
    out = torch.empty_like(p.x)
    stderr = torch.empty_like(p.x)
    bar = progress_bar(sum(2 + n_permutations * (m - 1) for m in p.n_segments), progress, "permutation Shapley")
    try:
        for i, image, base, segs, t, m in per_example(p):
            orders, coalitions = permutation_coalitions(m, n_permutations, seed)
            ends = torch.stack([torch.zeros(m, dtype=torch.bool), torch.ones(m, dtype=torch.bool)])
            inner = coalitions[:, :-1].reshape(-1, m)  # the last step of every order is the full image
            scores = coalition_scores(model, image, base, segs, t, torch.cat([ends, inner]), batch_size, bar).double()
            v_empty, v_full = scores[0], scores[1]
            path = torch.cat(
                [v_empty.expand(n_permutations, 1), scores[2:].view(n_permutations, m - 1), v_full.expand(n_permutations, 1)],
                dim=1,
            )
            step_gain = path[:, 1:] - path[:, :-1]  # gain of the segment arriving at each step
            contributions = torch.empty_like(step_gain).scatter_(1, orders, step_gain)
            phi = contributions.mean(dim=0)
            se = contributions.std(dim=0) / math.sqrt(n_permutations) if n_permutations > 1 else torch.full_like(phi, math.nan)
            out[i] = spread(phi.to(p.x.dtype), segs, p.x.shape[1])
            stderr[i] = spread(se.to(p.x.dtype), segs, p.x.shape[1])
    finally:
        bar.close()
    return (out, stderr) if return_stderr else out
