"""Seeded test material the chapter graders share: small untrained float64 models.

Both sides of the trust boundary rebuild them from the same seed (the student's process to call
the student's function, the trusted process to compute the reference), so they see the same
numbers without sending a model across.
"""
from __future__ import annotations

import torch
from torch import nn


def _seeded(model: nn.Module, seed: int, scale: float) -> nn.Module:
    """Draw every parameter of ``model`` (in order) from N(0, scale^2) with ``seed``; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model.eval()


def tiny_cnn(seed: int, classes: int = 4, pool: int = 1) -> nn.Module:
    """A small untrained float64 CNN (ReLU, then Softplus) on 3-channel images; its features are
    average-pooled to ``pool`` x ``pool`` before the linear layer."""
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1), nn.Softplus(),
        nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(6 * pool * pool, classes),
    ).double()
    return _seeded(model, seed, 0.5)


def linear_model(seed: int, classes: int = 4) -> nn.Module:
    """A linear float64 classifier on 3 x 8 x 8 images: the same input gradient everywhere."""
    return _seeded(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, classes)).double(), seed, 1.0)


def model_flags(model: nn.Module, key: str = "clean") -> dict[str, bool]:
    """Student's process: what a call left on ``model``, as ``key:param_grads``,
    ``key:requires_grad`` and ``key:training`` (read by ``check_model_left_alone``)."""
    return {f"{key}:param_grads": any(p.grad is not None for p in model.parameters()),
            f"{key}:requires_grad": all(p.requires_grad for p in model.parameters()),
            f"{key}:training": bool(model.training)}


def check_model_left_alone(got, grads_reason: str, *, requires_grad: bool = True, key: str = "clean") -> None:
    """Trusted process: fail with ``grads_reason`` when the call left ``.grad`` on the model's
    parameters, and with a fixed reason when it turned off ``requires_grad`` (checked only with
    ``requires_grad=True``) or left training mode on."""
    from .checks import Fail

    if got.flag(f"{key}:param_grads"):
        raise Fail(grads_reason)
    if requires_grad and not got.flag(f"{key}:requires_grad"):
        raise Fail("turned off requires_grad on the model's parameters and left it off")
    if got.flag(f"{key}:training"):
        raise Fail("left the model in training mode")
