"""Integrated Gradients (Sundararajan, Taly and Yan 2017).

For an input x, a baseline b and the straight path g(a) = b + a (x - b), a in [0, 1]:

    IG_i(x) = (x_i - b_i) * integral_0^1 df/dx_i(g(a)) da

Completeness: the attributions sum to f(x) - f(b), exactly for the integral and up to the
quadrature error for a rule with ``n_steps`` points, which ``return_delta=True`` reports.

The rules (``IG_RULES``) approximate the integral by sum_k w_k df/dx(g(a_k)):
- ``riemann_left``, ``riemann_right``, ``riemann_middle``: a_k = k/n, (k+1)/n, (k+1/2)/n; w_k = 1/n;
- ``riemann_trapezoid``: a_k = k/(n-1) (both ends), w_k = 1/(n-1), halved at the two ends;
- ``gausslegendre``: the n-point Gauss-Legendre nodes and weights, mapped from [-1, 1] to [0, 1].

Captum's ``riemann_trapezoid`` puts the same points but weights 1/n (halved at the ends), which
sum to (n-1)/n: its attributions are short by a factor (n-1)/n (2 percent at 50 steps).
Captum also rounds its weights (and its Riemann points) to float32.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core import (
    Target,
    batches,
    check_inputs,
    input_gradients,
    logits_of,
    preserved_state,
    resolve_target,
    warn_if_training,
)
from .baselines import resolve_baseline

IG_RULES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def path_rule(method: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points a_k in [0, 1] and weights w_k (float64, n_steps each) of a quadrature rule on [0, 1]."""
    if method not in IG_RULES:
        raise ValueError(f"unknown rule {method!r}; choose one of {', '.join(IG_RULES)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    n = int(n_steps)
    k = torch.arange(n, dtype=torch.float64)
    weights = torch.full((n,), 1.0 / n, dtype=torch.float64)
    if method == "riemann_left":
        alphas = k / n
    elif method == "riemann_right":
        alphas = (k + 1) / n
    elif method == "riemann_middle":
        alphas = (k + 0.5) / n
    elif method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2 (it evaluates both ends of the path)")
        alphas = k / (n - 1)
        weights = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        weights[[0, -1]] /= 2
    else:
        nodes, w = np.polynomial.legendre.leggauss(n)
        # From [-1, 1] to [0, 1]: a = (1 + t) / 2, and da = dt / 2 halves the weights.
        alphas = torch.from_numpy(0.5 * (1.0 + nodes))
        weights = torch.from_numpy(0.5 * w)
    return alphas, weights


def _check_batch(inputs: torch.Tensor) -> torch.Tensor:
    """Any N x ... float batch (images, or feature vectors of a toy model)."""
    check_inputs(inputs, ndim=None)
    if inputs.dim() < 2:
        raise ValueError(
            f"inputs must be a batch (N x ...), got a {inputs.dim()}-D tensor of shape "
            f"{tuple(inputs.shape)}: a single example? add the batch dimension with inputs.unsqueeze(0)"
        )
    return inputs


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baseline=None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    batch_size: int | None = 32,
    return_delta: bool = False,
):
    """Integrated Gradients along the straight path from ``baseline`` to each input.

    inputs: N x ... float -> attributions N x ... (and, with ``return_delta``, the N completeness
    gaps sum(attributions) - (f(x) - f(baseline))). ``baseline``: None (zeros), a number, or a
    1 x ... / N x ... tensor in the model's input units (see ``pixel_baseline``). All
    n_steps x N path points go through the model in chunks of ``batch_size`` points.
    """
    _check_batch(inputs)
    alphas, weights = path_rule(method, n_steps)
    warn_if_training(model)
    x = inputs.detach()
    b = resolve_baseline(baseline, x)
    n = x.shape[0]
    with preserved_state(model):
        # One forward pass without gradients fixes the targets (and checks them against the
        # number of classes); with return_delta it also gives f(x) and f(baseline).
        rows = torch.cat([x, b]) if return_delta else x
        with torch.no_grad():
            logits = torch.cat([logits_of(model(rows[s])) for s in batches(len(rows), batch_size)])
        t = resolve_target(target, logits[:n])
        total = torch.zeros_like(x)
        diff = x - b
        alphas, weights = alphas.to(x), weights.to(x)
        shape = (-1,) + (1,) * (x.dim() - 1)
        # Point r of the n_steps x N grid is step r // N of example r % N (step-major, as in
        # Captum); each chunk adds its steps to ``total`` in the order of the steps, so
        # batch_size changes the speed, never the result.
        for chunk in batches(n_steps * n, batch_size):
            r = torch.arange(chunk.start, chunk.stop, device=x.device)
            step, example = r // n, r % n
            points = b[example] + alphas[step].view(shape) * diff[example]
            grad, _ = input_gradients(model, points, t[example])
            total.index_add_(0, example, grad * weights[step].view(shape))
    attributions = total * diff
    if not return_delta:
        return attributions
    scores = logits.gather(1, torch.cat([t, t])[:, None])[:, 0]
    delta = attributions.flatten(1).sum(dim=1) - (scores[:n] - scores[n:]).to(attributions.dtype)
    return attributions, delta
