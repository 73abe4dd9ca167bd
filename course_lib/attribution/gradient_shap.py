"""GradientSHAP (Lundberg and Lee 2017; expected gradients, Erion et al. 2021).

Integrated Gradients averaged over a distribution of baselines, estimated by sampling: each of
``n_samples`` draws picks a baseline b from ``baselines``, adds Gaussian noise e (standard
deviation ``stdev``, in the model's input units) to the input, and a point a ~ U(0, 1) on the
path; the attribution is the mean of

    grad f(b + a (x + e - b)) * (x + e - b).

Its sum equals E[f(x + e)] - E[f(b)] in expectation, not per draw: a Monte Carlo estimate of
a Shapley-like value, with one gradient per draw. With ``stdev=0`` this is expected gradients.

The draws come from a generator seeded with ``seed`` and are the same for every example of a
batch, so a batch gives exactly the maps its examples give one by one, and ``batch_size``
changes the speed, never the map.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core import Target, batches, input_gradients, logits_of, preserved_state, resolve_target, warn_if_training
from .baselines import resolve_baselines
from .integrated_gradients import _check_batch


def _gradient_shap(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    starts: torch.Tensor,
    noise: torch.Tensor,
    alphas: torch.Tensor,
    batch_size: int | None,
) -> torch.Tensor:
    """The estimate from given draws: starts and noise N x S x ..., alphas N x S -> N x ..."""
    n, s = alphas.shape
    shape = (-1,) + (1,) * (x.dim() - 1)
    total = torch.zeros_like(x)
    # Draw r is sample r % S of example r // S (example-major, as in Captum).
    for chunk in batches(n * s, batch_size):
        r = torch.arange(chunk.start, chunk.stop, device=x.device)
        example, sample = r // s, r % s
        start = starts[example, sample]
        end = x[example] + noise[example, sample]
        points = start + alphas[example, sample].view(shape) * (end - start)
        grad, _ = input_gradients(model, points, t[example])
        total.index_add_(0, example, grad * (end - start))
    return total / s


def gradient_shap(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baselines=None,
    n_samples: int = 20,
    stdev: float = 0.0,
    seed: int = 0,
    batch_size: int | None = 32,
) -> torch.Tensor:
    """GradientSHAP of each input: N x ... -> N x ...

    ``baselines``: K reference inputs (a K x ... tensor or a sequence), in the model's units;
    None is the all-zero input alone (then this is a Monte Carlo estimate of Integrated Gradients);
    ``stdev``: the noise added to the input, in the model's units (Captum's ``stdevs``);
    ``batch_size``: how many of the N x n_samples gradient evaluations run at once.
    """
    _check_batch(inputs)
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    if stdev < 0:
        raise ValueError(f"stdev must be >= 0, got {stdev}")
    warn_if_training(model)
    x = inputs.detach()
    refs = resolve_baselines(torch.zeros_like(x[:1]) if baselines is None else baselines, x)
    n = x.shape[0]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    # All at once: drawn chunk by chunk, the draws would depend on batch_size.
    noise = (torch.randn((n_samples, *x.shape[1:]), generator=generator, dtype=x.dtype) * stdev).to(x.device)
    which = torch.randint(refs.shape[0], (n_samples,), generator=generator)
    alphas = torch.rand(n_samples, generator=generator, dtype=x.dtype).to(x.device)
    with preserved_state(model):
        with torch.no_grad():
            # The target is fixed on the clean input: every draw explains the same class.
            t = resolve_target(target, torch.cat([logits_of(model(x[s])) for s in batches(n, batch_size)]))
        return _gradient_shap(
            model, x, t,
            starts=refs[which.to(x.device)][None].expand(n, *refs[which].shape),
            noise=noise[None].expand(n, *noise.shape),
            alphas=alphas[None].expand(n, -1),
            batch_size=batch_size,
        )
