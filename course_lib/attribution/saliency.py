"""Vanilla gradients (Simonyan et al. 2014) and gradient x input (Shrikumar et al. 2016)."""
from __future__ import annotations

import torch
from torch import nn

from ..core import Target, check_inputs, input_gradients, preserved_state, warn_if_training

REDUCTIONS = ("max_abs", "sum_abs", "signed")


def reduce_channels(attributions: torch.Tensor, how: str = "max_abs") -> torch.Tensor:
    """Collapse the channel axis of N x C x H x W attributions into an N x H x W map.

    ``max_abs``: largest |value| over channels (Simonyan et al.); ``sum_abs``: sum of |values|;
    ``signed``: plain sum, which keeps the direction (positive = raises the score).
    """
    check_inputs(attributions, ndim=4, name="attributions")
    if how == "max_abs":
        return attributions.abs().amax(dim=1)
    if how == "sum_abs":
        return attributions.abs().sum(dim=1)
    if how == "signed":
        return attributions.sum(dim=1)
    raise ValueError(f"unknown channel reduction {how!r}; choose one of {', '.join(REDUCTIONS)}")


def _maybe_reduce(attributions: torch.Tensor, reduce: str | None) -> torch.Tensor:
    return attributions if reduce is None else reduce_channels(attributions, reduce)


def vanilla_gradient(
    model: nn.Module, inputs: torch.Tensor, target: Target = None, reduce: str | None = None
) -> torch.Tensor:
    """d score[target] / d input: N x C x H x W (signed), or N x H x W with ``reduce``.

    ``reduce="max_abs"`` gives the classic saliency map; see ``reduce_channels``.
    """
    check_inputs(inputs)
    warn_if_training(model)
    with preserved_state(model):
        grad, _ = input_gradients(model, inputs, target)
    return _maybe_reduce(grad, reduce)


def gradient_x_input(
    model: nn.Module, inputs: torch.Tensor, target: Target = None, reduce: str | None = None
) -> torch.Tensor:
    """Gradient times input, element-wise: N x C x H x W, or N x H x W with ``reduce``.

    A first-order estimate of each feature's contribution relative to an all-zero input.
    """
    check_inputs(inputs)
    warn_if_training(model)
    with preserved_state(model):
        grad, _ = input_gradients(model, inputs, target)
    return _maybe_reduce(grad * inputs.detach(), reduce)
