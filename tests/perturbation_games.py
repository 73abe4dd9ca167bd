"""Models whose Shapley values are known by hand, for the perturbation tests.

``GameModel`` reads, from an all-ones image on an all-zeros baseline, which grid tiles are
present (the mean of each tile: 1 if kept, 0 if replaced by the baseline) and returns a chosen
function g of that presence vector as the score of class 0 (and -g as class 1). Any coalition
game on the tiles can be written this way, so the Shapley values can be computed on paper.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

import course_lib as cl

SIZE = 6
ROWS, COLS = 2, 3  # six tiles of 3 x 2 pixels


def tiles() -> torch.Tensor:
    return cl.grid_segments(SIZE, SIZE, ROWS, COLS)


class GameModel(nn.Module):
    """score(x) = g(presence of each tile), presence = the tile's mean over pixels and channels."""

    def __init__(self, game: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.game = game
        seg = tiles()
        onehot = torch.stack([(seg == k).double() / (seg == k).sum() for k in range(ROWS * COLS)])
        self.register_buffer("onehot", onehot)  # M x H x W, each tile's averaging weights
        self.dummy = nn.Linear(1, 1).double()  # a parameter, so that the no-leftovers checks apply

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        presence = torch.einsum("nchw,mhw->nm", x, self.onehot) / x.shape[1]
        g = self.game(presence)
        return torch.stack([g, -g], dim=1)


def ones_image(n: int = 1) -> torch.Tensor:
    return torch.ones(n, 3, SIZE, SIZE, dtype=torch.float64)


# Games with their Shapley values worked out by hand (players = the six tiles, values for class 0).
GAMES = {
    # additive: every tile gets its own term
    "additive": (lambda p: 1.0 * p[:, 0] + 2.0 * p[:, 1] - 0.5 * p[:, 2] + 4.0 * p[:, 5],
                 [1.0, 2.0, -0.5, 0.0, 0.0, 4.0]),
    # AND of tiles 0 and 1 (worth 3): split equally; the others are null players
    "and": (lambda p: 3.0 * p[:, 0] * p[:, 1], [1.5, 1.5, 0.0, 0.0, 0.0, 0.0]),
    # OR of tiles 2, 3, 4 (worth 1 when any is present): a third each
    "or": (lambda p: torch.amax(p[:, 2:5], dim=1), [0.0, 0.0, 1 / 3, 1 / 3, 1 / 3, 0.0]),
    # a mix: 2 p0 + 6 p1 p2 p3 - p4 p5  ->  2, 2, 2, 2, -0.5, -0.5
    "mixed": (lambda p: 2.0 * p[:, 0] + 6.0 * p[:, 1] * p[:, 2] * p[:, 3] - p[:, 4] * p[:, 5],
              [2.0, 2.0, 2.0, 2.0, -0.5, -0.5]),
}


class CountPasses(nn.Module):
    """Wraps a model and counts the images it is asked to score."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.images = inner, 0

    def forward(self, x):
        self.images += len(x)
        return self.inner(x)


class FailOnCall(nn.Module):
    """Wraps a model; its forward raises on call number ``fail_on``."""

    def __init__(self, inner: nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"forward failed on call {self.calls}")
        return self.inner(x)
