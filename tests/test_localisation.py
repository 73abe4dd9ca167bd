"""Localisation scores against true masks: hand-computed values, zero maps, bad shapes."""
from __future__ import annotations

import pytest
import torch

import course_lib as cl


def test_share_on_mask_counts_only_positive_mass():
    maps = torch.tensor([[[1.0, 3.0], [-5.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]])
    masks = torch.tensor([[[True, False], [True, False]], [[True, True], [False, False]]])
    assert cl.share_on_mask(maps, masks).tolist() == [0.25, 0.5]


def test_share_on_mask_of_a_map_without_positive_mass_is_zero():
    assert cl.share_on_mask(-torch.ones(1, 3, 3), torch.ones(1, 3, 3, dtype=torch.bool)).tolist() == [0.0]


def test_pointing_game_finds_the_peak():
    maps = torch.zeros(2, 4, 4)
    maps[0, 1, 2] = 1.0
    maps[1, 3, 3] = 1.0
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, 1, 2] = True
    assert cl.pointing_game(maps, masks).tolist() == [1.0, 0.0]


def test_pointing_game_shares_a_tied_peak_between_the_mask_and_the_rest():
    # An occlusion map is constant over blocks: a top block half on the object is half a hit,
    # whichever of its pixels argmax would have picked first.
    maps = torch.zeros(1, 4, 4)
    maps[0, :2, :2] = 3.0
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, 1, :] = True
    assert cl.pointing_game(maps, masks).tolist() == [0.5]
    masks[0, 0, :2] = True
    assert cl.pointing_game(maps, masks).tolist() == [1.0]


def test_pointing_game_of_a_flat_map_is_the_share_of_the_image_on_the_mask():
    masks = torch.zeros(1, 4, 4, dtype=torch.bool)
    masks[0, :1, :] = True
    assert cl.pointing_game(torch.zeros(1, 4, 4), masks).tolist() == [0.25]


@pytest.mark.parametrize("fn", [cl.share_on_mask, cl.pointing_game])
def test_maps_and_masks_of_different_shapes_are_refused(fn):
    with pytest.raises(ValueError, match="N x H x W"):
        fn(torch.zeros(2, 4, 4), torch.zeros(3, 4, 4, dtype=torch.bool))
