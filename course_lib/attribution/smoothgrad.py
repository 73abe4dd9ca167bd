"""SmoothGrad, SmoothGrad-squared (Smilkov et al. 2017) and VarGrad (Adebayo et al. 2018).

Each averages a gradient method over noisy copies x + e, e ~ N(0, sigma^2), with
sigma = noise_level * (max(x) - min(x)) per example, the paper's definition of noise level.

The noise comes from a generator seeded with ``seed`` and is the same for every example of a
batch, so a batch gives exactly the maps its examples give one by one. All ``n_samples`` draws
are made at once, so ``batch_size`` changes the speed, never the map (torch draws normals in
blocks of 16: drawn chunk by chunk, the noise would change with the chunk size whenever a copy's
size is not a multiple of 16). Captum's NoiseTunnel draws from the global generator in the same
order: with one example, ``torch.manual_seed(seed)``, and a copy size that is a multiple of 16
(3 x 224 x 224 is) or ``nt_samples_batch_size=None``, Captum adds the same noise, up to its
float32 rounding.
"""
from __future__ import annotations

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
from .saliency import _maybe_reduce

KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def noise_stdev(inputs: torch.Tensor, noise_level: float) -> torch.Tensor:
    """Per-example noise standard deviation: noise_level * (max - min), shape N."""
    flat = inputs.detach().flatten(1)
    return noise_level * (flat.amax(dim=1) - flat.amin(dim=1))


def noise_tunnel(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    kind: str = "smoothgrad",
    n_samples: int = 25,
    noise_level: float = 0.15,
    batch_size: int | None = 25,
    seed: int = 0,
    multiply_by_inputs: bool = False,
    reduce: str | None = None,
) -> torch.Tensor:
    """SmoothGrad (``kind="smoothgrad"``), SmoothGrad-squared or VarGrad of the gradient.

    inputs: N x C x H x W -> N x C x H x W (N x H x W with ``reduce``). ``batch_size`` noisy
    copies of every example go through the model at once.
    """
    check_inputs(inputs)
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if noise_level < 0:
        raise ValueError(f"noise_level must be >= 0 (a fraction of the input range), got {noise_level}")
    warn_if_training(model)
    x = inputs.detach()
    n = x.shape[0]
    sigma = noise_stdev(x, noise_level).view(n, *([1] * (x.dim() - 1)))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    # Drawn all at once: drawn chunk by chunk, the noise would depend on batch_size.
    noise_all = torch.randn((n_samples, *x.shape[1:]), generator=generator)
    total = torch.zeros_like(x)
    total_sq = torch.zeros_like(x)
    with preserved_state(model), torch.no_grad():
        # The target is fixed on the clean input: every noisy copy explains the same class.
        t = resolve_target(target, logits_of(model(x)))
    with preserved_state(model):
        for chunk in batches(n_samples, batch_size):
            k = chunk.stop - chunk.start
            noise = noise_all[chunk].to(x)
            # n*k noisy inputs, example-major: copies of example i are contiguous.
            noisy = (x[:, None] + sigma[:, None] * noise[None]).reshape(n * k, *x.shape[1:])
            grad, _ = input_gradients(model, noisy, t.repeat_interleave(k))
            attr = grad * noisy if multiply_by_inputs else grad
            attr = attr.view(n, k, *x.shape[1:])
            total += attr.sum(dim=1)
            total_sq += attr.pow(2).sum(dim=1)
    mean, mean_sq = total / n_samples, total_sq / n_samples
    if kind == "smoothgrad":
        out = mean
    elif kind == "smoothgrad_sq":
        out = mean_sq
    else:
        # Where every copy has nearly the same gradient this difference cancels to rounding
        # error, which can be negative (often, in float32): a variance is not.
        out = (mean_sq - mean.pow(2)).clamp_min(0)
    return _maybe_reduce(out, reduce)


def smoothgrad(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 25,
    noise_level: float = 0.15,
    batch_size: int | None = 25,
    seed: int = 0,
    multiply_by_inputs: bool = False,
    reduce: str | None = None,
) -> torch.Tensor:
    """Mean gradient over ``n_samples`` noisy copies: N x C x H x W (or N x H x W with ``reduce``).

    ``multiply_by_inputs=True`` smooths gradient x input instead of the gradient;
    ``batch_size`` is how many noisy copies of each example go through the model at once.
    """
    return noise_tunnel(model, inputs, target, kind="smoothgrad", n_samples=n_samples,
                        noise_level=noise_level, batch_size=batch_size, seed=seed,
                        multiply_by_inputs=multiply_by_inputs, reduce=reduce)


def smoothgrad_squared(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 25,
    noise_level: float = 0.15,
    batch_size: int | None = 25,
    seed: int = 0,
    multiply_by_inputs: bool = False,
    reduce: str | None = None,
) -> torch.Tensor:
    """Mean squared gradient over noisy copies (always >= 0): shaped like ``smoothgrad``."""
    return noise_tunnel(model, inputs, target, kind="smoothgrad_sq", n_samples=n_samples,
                        noise_level=noise_level, batch_size=batch_size, seed=seed,
                        multiply_by_inputs=multiply_by_inputs, reduce=reduce)


def vargrad(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    n_samples: int = 25,
    noise_level: float = 0.15,
    batch_size: int | None = 25,
    seed: int = 0,
    multiply_by_inputs: bool = False,
    reduce: str | None = None,
) -> torch.Tensor:
    """Variance of the gradient over noisy copies (always >= 0): shaped like ``smoothgrad``."""
    return noise_tunnel(model, inputs, target, kind="vargrad", n_samples=n_samples,
                        noise_level=noise_level, batch_size=batch_size, seed=seed,
                        multiply_by_inputs=multiply_by_inputs, reduce=reduce)
