"""KernelSHAP on superpixels (Lundberg and Lee 2017): Shapley values from a weighted regression.

The Shapley values of the M segments are the coefficients of the linear model
g(z) = phi_0 + sum_k phi_k z_k that minimises, over *all* 2^M coalitions z,

    sum_z pi(z) (v(z) - g(z))^2,    pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)),

with the two infinite-weight coalitions turned into constraints: phi_0 = v(empty) and
sum_k phi_k = v(full) - v(empty) (efficiency). KernelSHAP samples coalitions instead of
enumerating them: a size k with probability proportional to (M - 1) / (k (M - k)), then k
segments uniformly at random, so that each coalition is drawn with probability proportional
to pi(z) and every drawn one gets weight 1.

The coalitions are drawn exactly as Captum's ``KernelShap`` draws them (the full and the empty
coalition first, then per sample one ``multinomial`` for the size and one ``randn`` ranked for
the segments), from a generator seeded with ``seed``. Captum then fits the constraints
approximately (weight 10^6 on the full and empty coalitions, in float32); we solve the
constrained least squares exactly, in float64.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..core import Target, _caller_stacklevel
from .coalitions import check_positive_int, coalition_scores, per_example, prepare, progress_bar, spread
from .fill import Fill


def shapley_kernel(n_segments: int, size: int | torch.Tensor) -> torch.Tensor:
    """pi(z) for a coalition of ``size`` segments out of M; infinite for the empty and the full one."""
    m = n_segments
    size = torch.as_tensor(size, dtype=torch.float64)
    k = size.clamp(1, m - 1) if m > 1 else size
    binom = torch.exp(torch.lgamma(torch.tensor(m + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1) - torch.lgamma(m - k + 1))
    weight = (m - 1) / (binom * k * (m - k))
    return torch.where((size == 0) | (size == m), torch.full_like(weight, math.inf), weight)


def kernel_shap_coalitions(n_segments: int, n_samples: int, seed: int = 0) -> torch.Tensor:
    """n_samples x M bool: the full coalition, the empty one, then draws from the Shapley kernel."""
    m = n_segments
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.ones(m, dtype=torch.bool), torch.zeros(m, dtype=torch.bool)][:n_samples]
    if m > 1 and n_samples > 2:
        # Captum's size distribution, built the same way (float32, then normalised).
        sizes = torch.arange(m, dtype=torch.float)
        probs = torch.tensor(m - 1) / (sizes * (m - sizes))
        probs[0] = 0.0
        probs = probs / probs.sum()
        for _ in range(n_samples - 2):
            k = int(torch.multinomial(probs[None], 1, True, generator=generator))
            noise = torch.randn(1, m, generator=generator)
            threshold = torch.kthvalue(noise, m - k).values.item()
            rows.append((noise > threshold)[0])
    return torch.stack(rows)


def constrained_shap_fit(z: torch.Tensor, y: torch.Tensor, v_full: float, v_empty: float,
                         weights: torch.Tensor | None = None) -> torch.Tensor:
    """The M values minimising sum w (y - v_empty - z . phi)^2 subject to sum(phi) = v_full - v_empty.

    z: S x M coalitions, y: their S scores, weights: S (default 1: coalitions drawn from the
    kernel). The constraint removes one unknown: phi_M = total - sum of the others. In float64.
    """
    z, y = z.double(), y.double()
    m = z.shape[1]
    total = v_full - v_empty
    if m == 1:
        return torch.tensor([total], dtype=torch.float64)
    if len(z) == 0:
        return torch.full((m,), total / m, dtype=torch.float64)
    design = z[:, :-1] - z[:, -1:]
    response = y - v_empty - z[:, -1] * total
    if weights is not None:
        root = weights.double().sqrt()
        design, response = design * root[:, None], response * root
    head = torch.linalg.lstsq(design, response[:, None], driver="gelsd").solution[:, 0]
    return torch.cat([head, (total - head.sum())[None]])


def kernel_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    segments,
    n_samples: int,
    baseline: Fill = "zero",
    seed: int = 0,
    batch_size: int | None = 64,
    progress: bool | None = None,
) -> torch.Tensor:
    """KernelSHAP values of the segments, spread over their pixels: N x C x H x W -> N x C x H x W.

    ``n_samples`` coalitions (forward passes) per image, the full and the empty one included;
    the values of each image sum exactly to f(x) - f(baseline).
    """
    check_positive_int(n_samples, "n_samples", minimum=2)
    p = prepare(model, inputs, target, segments, baseline)
    out = torch.empty_like(p.x)
    bar = progress_bar(n_samples * len(p.x), progress, "KernelSHAP")
    try:
        for i, image, base, segs, t, m in per_example(p):
            if n_samples - 2 < m - 1:
                warnings.warn(
                    f"{n_samples} samples for {m} segments: fewer random coalitions ({n_samples - 2}) "
                    f"than unknowns ({m - 1}), so the fit is underdetermined (minimum-norm solution)",
                    UserWarning, stacklevel=_caller_stacklevel(),
                )
            z = kernel_shap_coalitions(m, n_samples, seed)
            scores = coalition_scores(model, image, base, segs, t, z, batch_size, bar)
            phi = constrained_shap_fit(z[2:], scores[2:], float(scores[0]), float(scores[1]))
            out[i] = spread(phi.to(p.x.dtype), segs, p.x.shape[1])
    finally:
        bar.close()
    return out
