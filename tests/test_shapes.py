"""Shapes: deterministic from a seed, masks on the object, concepts as documented, the shortcut tag."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from course_lib.zoo import list_datasets, load_dataset
from course_lib.zoo import shapes as S


@pytest.fixture(scope="module")
def batch() -> S.ShapesBatch:
    return S.make_shapes(1200, seed=3)


def test_same_seed_gives_identical_images_and_labels():
    a, b = S.make_shapes(300, seed=7), S.make_shapes(300, seed=7)
    for name in ("images", "labels", "masks", "texture", "color", "tag"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_different_seed_gives_different_images():
    a, b = S.make_shapes(50, seed=7), S.make_shapes(50, seed=8)
    assert not torch.equal(a.images, b.images)
    assert (a.images - b.images).abs().mean() > 0.05


def test_first_images_do_not_depend_on_n():
    assert torch.equal(S.make_shapes(300, seed=1).images[:100], S.make_shapes(100, seed=1).images)


def test_shapes_dtypes_and_range(batch):
    n = len(batch)
    assert batch.images.shape == (n, 3, 64, 64) and batch.images.dtype == torch.float32
    assert batch.masks.shape == (n, 64, 64) and batch.masks.dtype == torch.bool
    assert 0.0 <= batch.images.min() and batch.images.max() <= 1.0
    assert batch.labels.dtype == torch.long and set(batch.labels.tolist()) == set(range(len(S.CLASSES)))
    assert len(S.make_shapes(0)) == 0


def test_classes_are_balanced(batch):
    counts = torch.bincount(batch.labels, minlength=len(S.CLASSES)).float() / len(batch)
    assert (counts - 1 / len(S.CLASSES)).abs().max() < 0.02


def test_masks_cover_the_object(batch):
    area = batch.masks.sum((1, 2))
    assert area.min() > 150 and area.max() < 1300  # r in [11, 17] px
    # Plain objects: the pixels under the mask have the object's colour, the ring just outside does not.
    palette = torch.tensor(list(S.COLORS.values()))
    plain = (batch.texture == 0).nonzero()[:, 0][:100]
    for i in plain.tolist():
        colour = palette[batch.color[i]][:, None]
        inside = batch.images[i][:, batch.masks[i]]
        assert ((inside - colour).abs().max(0).values < 0.2).float().mean() > 0.97
        ring = torch.nn.functional.max_pool2d(batch.masks[i][None, None].float(), 5, 1, 2)[0, 0].bool() & ~batch.masks[i]
        outside = batch.images[i][:, ring]
        assert ((outside - colour).abs().max(0).values < 0.1).float().mean() < 0.5


def test_objects_never_cover_the_tag_corner(batch):
    assert not (batch.masks & S.tag_mask()).any()


def test_texture_is_as_documented_for_each_class(batch):
    for k, fixed in S.CLASS_TEXTURE.items():
        tex = batch.texture[batch.labels == k]
        if fixed is not None:  # the squares: texture defines the class
            assert (tex == fixed).all(), S.CLASSES[k]
        else:  # circle, triangle, cross: each texture about a third of the time
            share = torch.bincount(tex, minlength=3).float() / len(tex)
            assert (share - 1 / 3).abs().max() < 0.1, (S.CLASSES[k], share)


def test_concept_relevance_matches_the_generator():
    for concept, roles in S.CONCEPT_RELEVANCE.items():
        for cls in roles["relevant"]:
            assert S.CLASS_TEXTURE[S.CLASSES.index(cls)] == S.TEXTURES.index(concept)
        for cls in roles["irrelevant"]:
            if concept in S.TEXTURES:
                assert S.CLASS_TEXTURE[S.CLASSES.index(cls)] is None
        assert set(roles["relevant"] + roles["absent"] + roles["irrelevant"]) == set(S.CLASSES)


def test_concepts_follow_texture_and_colour(batch):
    concepts = batch.concepts
    assert torch.equal(concepts["striped"], batch.texture == 1)
    assert torch.equal(concepts["dotted"], batch.texture == 2)
    assert torch.equal(concepts["red"], batch.color == S.COLOR_NAMES.index("red"))
    # Each colour appears in every class: colour is irrelevant to all of them.
    for k in range(len(S.CLASSES)):
        assert len(batch.color[batch.labels == k].unique()) == len(S.COLORS)


def _dark_share(batch: S.ShapesBatch, i: int) -> float:
    """Fraction of the object's pixels drawn in the dark texture colour."""
    brightness = batch.images[i][:, batch.masks[i]].mean(0)
    return (brightness < 0.75 * brightness.quantile(0.9)).float().mean().item()


def test_textures_are_drawn_as_named(batch):
    for texture, low, high in [(0, 0.0, 0.05), (1, 0.3, 0.7), (2, 0.1, 0.4)]:
        idx = (batch.texture == texture).nonzero()[:, 0][:60].tolist()
        shares = np.array([_dark_share(batch, i) for i in idx])
        assert low <= np.median(shares) <= high, (S.TEXTURES[texture], np.median(shares))


def test_shortcut_rate_matches_request():
    b = S.make_shapes(3000, seed=5, shortcut_class="circle", shortcut_rate=0.8)
    circle = b.labels == S.CLASSES.index("circle")
    assert abs(b.tag[circle].float().mean().item() - 0.8) < 0.05
    assert not b.tag[~circle].any()
    # The tag is drawn where tag_mask says, in white.
    assert (b.images[b.tag][:, :, S.tag_mask()] == 1.0).all()


def test_no_tag_when_the_shortcut_is_off(batch):
    assert not batch.tag.any()
    assert not (batch.images[:, :, S.tag_mask()] == 1.0).all(dim=(1, 2)).any()


def test_tag_on_other_classes_at_test_time():
    b = S.make_shapes(600, seed=5, shortcut_class="circle", shortcut_rate=0.0, tag_other_rate=1.0)
    circle = b.labels == S.CLASSES.index("circle")
    assert b.tag[~circle].all() and not b.tag[circle].any()


def test_tag_changes_only_the_tag_pixels():
    clean = S.make_shapes(200, seed=9)
    tagged = S.make_shapes(200, seed=9, shortcut_class=2, shortcut_rate=1.0, tag_other_rate=1.0)
    diff = (clean.images != tagged.images).any(1)
    assert not (diff & ~S.tag_mask()).any()
    assert torch.equal(S.add_tag(clean.images), tagged.images)


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="classes"):
        S.make_shapes(10, shortcut_class="hexagon")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.make_shapes(10, shortcut_class=0, shortcut_rate=1.5)
    with pytest.raises(ValueError, match="known"):
        S.make_concept_images("wavy", 4)


def test_concept_images_are_deterministic_and_distinct():
    striped = S.make_concept_images("striped", 20, seed=0)
    assert striped.shape == (20, 3, 64, 64) and 0 <= striped.min() and striped.max() <= 1
    assert torch.equal(striped, S.make_concept_images("striped", 20, seed=0))
    assert not torch.equal(striped, S.make_concept_images("striped", 20, seed=1))
    assert not torch.equal(striped, S.make_concept_images("dotted", 20, seed=0))
    for concept in ["plain", "dotted", "red", "random", "background"]:
        assert S.make_concept_images(concept, 3).shape == (3, 3, 64, 64)
    # Stripes cover about half the frame in the dark colour, plain frames none.
    def dark(x):
        brightness = x.mean(1).flatten(1)
        return (brightness < 0.75 * brightness.quantile(0.9, dim=1, keepdim=True)).float().mean().item()

    assert 0.3 < dark(striped) < 0.7 and dark(S.make_concept_images("plain", 20)) < 0.05


def test_dataset_works_with_a_dataloader():
    ds = load_dataset("shapes", n=40, seed=2)
    assert isinstance(ds, S.ShapesDataset) and len(ds) == 40
    image, label = ds[3]
    assert image.shape == (3, 64, 64) and label == int(ds.batch.labels[3])
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=16)))
    assert x.shape == (16, 3, 64, 64) and y.shape == (16,)
    assert any(d["name"] == "shapes" and d["offline"] for d in list_datasets())


def test_batch_indexing_keeps_fields_together(batch):
    sub = batch[batch.labels == 4]
    assert len(sub) == len(sub.images) == len(sub.masks) == len(sub.tag)
    assert (sub.texture == 1).all()


def test_a_thousand_images_take_seconds():
    start = time.perf_counter()
    S.make_shapes(1000, seed=11)
    assert time.perf_counter() - start < 10  # about 0.5 s on a quiet 2-core CPU
