"""Localisation scores of maps against true object masks (the Shapes masks).

- ``share_on_mask``: the share of a map's positive mass that lies on the object;
- ``pointing_game``: whether a map's largest value lies on the object (ties shared).

A map that ignores the image scores, on average, the share of the image the object covers
(``share_on_mask``) or the chance that a random pixel is on the object (``pointing_game``).
"""
from __future__ import annotations

import torch

__all__ = ["pointing_game", "share_on_mask"]


def _check(maps: torch.Tensor, masks: torch.Tensor) -> None:
    if maps.dim() != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps and masks must both be N x H x W and of one shape, got "
                         f"{tuple(maps.shape)} and {tuple(masks.shape)}")


def share_on_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass on its mask: N x H x W maps and masks -> N (float64).

    Negative values count as zero (for a signed map: the evidence *for* the class); a map with
    no positive mass scores 0.
    """
    _check(maps, masks)
    positive = maps.detach().clamp(min=0).double()
    total = positive.flatten(1).sum(dim=1)
    on = (positive * masks.double()).flatten(1).sum(dim=1)
    return on / total.clamp(min=1e-30)


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, *, rtol: float = 1e-6) -> torch.Tensor:
    """Whether each map's largest value lies on its mask: N x H x W maps and masks -> N in [0, 1].

    When several pixels share the largest value (to ``rtol`` of it), as whole blocks do in an
    occlusion map, the score is the share of them on the mask: the chance of a hit when the tie
    is broken at random, not a verdict decided by which tied pixel comes first. A map with one
    peak pixel scores 1 or 0.
    """
    _check(maps, masks)
    flat = maps.detach().flatten(1).double()
    top = flat.amax(dim=1, keepdim=True)
    tied = flat >= top - rtol * top.abs()
    return (tied & masks.flatten(1).bool()).sum(dim=1).double() / tied.sum(dim=1).double()
