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
