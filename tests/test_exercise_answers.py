"""Answer keys that are numbers computed from the course's data are recomputed here, so a
change of the data (or of a model) cannot leave a stale key behind."""
from __future__ import annotations

import pytest

from course_lib.grading import ch01
from course_lib.zoo.shapes import make_shapes


def test_ch01_mean_mask_area_key_matches_the_dataset():
    area = float(make_shapes(500, seed=0).masks.double().mean())
    assert ch01.MEAN_MASK_AREA == pytest.approx(area, abs=1e-4)


def test_ch01_reference_mass_on_mask_is_a_share_of_absolute_mass():
    import torch

    maps = torch.tensor([[[1.0, -3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    masks = torch.tensor([[[True, False], [False, False]], [[True, True], [True, True]]])
    got = ch01.reference_mass_on_mask(maps, masks)
    assert got.tolist() == [0.25, 0.0]


def test_ch01_random_maps_score_the_mask_area_within_the_answer_tolerance():
    import torch

    batch = make_shapes(500, seed=0)
    for seed in (0, 1):
        noise = torch.rand(batch.masks.shape, generator=torch.Generator().manual_seed(seed))
        score = float(ch01.reference_mass_on_mask(noise, batch.masks).mean())
        assert abs(score - ch01.MEAN_MASK_AREA) < 0.005 / 2
