"""Drawing: map normalisation, overlays, the method grid, image conversion (Agg backend)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from course_lib import viz

pytestmark = pytest.mark.usefixtures("deterministic")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------ normalize_map
def test_normalize_map_unsigned_is_in_0_1_and_reaches_1(rng):
    m = rng.normal(size=(20, 20))
    out = viz.normalize_map(m)
    assert out.shape == (20, 20)
    assert out.min() >= 0.0 and out.max() == 1.0
    assert (out[m < 0] == 0).all(), "negative values are clipped to 0 in an unsigned map"


def test_normalize_map_signed_is_in_minus_1_1_and_keeps_the_sign(rng):
    m = rng.normal(size=(20, 20))
    out = viz.normalize_map(torch.from_numpy(m), signed=True)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.min() == -1.0 or out.max() == 1.0
    assert (np.sign(out) == np.sign(m)).all()


def test_normalize_map_clips_at_the_percentile_so_an_outlier_does_not_wash_out_the_rest():
    m = np.full((20, 20), 0.5)  # 400 values: the 99th percentile falls among the 0.5s
    m[0, 0] = 1000.0
    clipped = viz.normalize_map(m, percentile=99.0)
    assert clipped[0, 0] == 1.0
    assert clipped[5, 5] == pytest.approx(1.0)  # the 99th percentile of |m| is 0.5
    unclipped = viz.normalize_map(m, percentile=100.0)
    assert unclipped[5, 5] == pytest.approx(0.5 / 1000.0)


def test_normalize_map_of_zeros_is_zeros_not_nan():
    out = viz.normalize_map(np.zeros((4, 4)))
    assert np.isfinite(out).all() and (out == 0).all()


def test_normalize_map_of_a_sparse_map_uses_its_maximum():
    m = np.zeros((10, 10))
    m[3, 3] = 2.0  # 99th percentile is 0
    out = viz.normalize_map(m)
    assert out[3, 3] == 1.0 and out.sum() == 1.0


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 8, 8), (8,)])
def test_normalize_map_rejects_a_map_that_is_not_h_x_w(shape):
    with pytest.raises(ValueError, match=r"must be H x W.*reduce channels first"):
        viz.normalize_map(torch.zeros(shape))


# ------------------------------------------------------------------------- show_heatmap
def test_show_heatmap_upsamples_a_7x7_map_over_a_224x224_image():
    fig, ax = plt.subplots()
    heat = torch.rand(7, 7)
    artist = viz.show_heatmap(ax, heat, torch.rand(3, 224, 224), title="cam")
    assert artist.get_array().shape == (224, 224)
    assert len(ax.get_images()) == 2  # the grey photo, then the map
    assert ax.get_title() == "cam"
    # Bilinear: the upsampled map stays within the range of the small one.
    up = np.asarray(artist.get_array())
    small = viz.normalize_map(heat)
    assert small.min() - 1e-6 <= up.min() and up.max() <= small.max() + 1e-6


def test_show_heatmap_uses_colour_blind_safe_maps_with_fixed_limits():
    fig, (a, b) = plt.subplots(1, 2)
    unsigned = viz.show_heatmap(a, torch.rand(8, 8))
    signed = viz.show_heatmap(b, torch.randn(8, 8), signed=True, colorbar=True)
    assert unsigned.get_cmap().name == viz.UNSIGNED_CMAP == "inferno"
    assert unsigned.get_clim() == (0.0, 1.0)
    assert signed.get_cmap().name == viz.SIGNED_CMAP == "PuOr"
    assert signed.get_clim() == (-1.0, 1.0)
    assert len(fig.axes) == 3  # two panels and the colour bar


# -------------------------------------------------------------------------- method_grid
@pytest.mark.parametrize("n_images, n_methods", [(2, 3), (1, 1)])
def test_method_grid_has_one_row_per_image_and_a_column_per_method_plus_the_image(n_images, n_methods):
    images = torch.rand(n_images, 3, 16, 16)
    maps = {f"method {j}": torch.rand(n_images, 16, 16) for j in range(n_methods)}
    fig = viz.method_grid(images, maps, row_titles=[f"row {i}" for i in range(n_images)],
                          signed={"method 0": True}, overlay=True)
    assert len(fig.axes) == n_images * (1 + n_methods)
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (n_images, 1 + n_methods)
    titles = [ax.get_title() for ax in fig.axes[: 1 + n_methods]]
    assert titles == ["row 0", *maps]
    assert fig.axes[1].get_images()[-1].get_cmap().name == viz.SIGNED_CMAP


def test_method_grid_rejects_maps_for_a_different_number_of_images():
    with pytest.raises(ValueError, match="vargrad has 1 maps for 2 images"):
        viz.method_grid(torch.rand(2, 3, 8, 8), {"smoothgrad": torch.rand(2, 8, 8), "vargrad": torch.rand(1, 8, 8)})


# ------------------------------------------------------------------------------ to_image
def test_to_image_turns_a_c_x_h_x_w_tensor_into_h_x_w_x_3():
    x = torch.rand(3, 5, 7)
    img = viz.to_image(x)
    assert img.shape == (5, 7, 3)
    np.testing.assert_allclose(img, x.permute(1, 2, 0).numpy(), atol=1e-7)


def test_to_image_repeats_a_single_channel_to_grey_rgb():
    img = viz.to_image(torch.rand(1, 4, 4))
    assert img.shape == (4, 4, 3)
    assert (img[..., 0] == img[..., 2]).all()


def test_to_image_applies_denormalize_and_clips_to_0_1():
    x = torch.full((3, 2, 2), 0.5)
    img = viz.to_image(x, denormalize=lambda t: t * 4 - 1)  # 0.5 -> 1.0
    assert np.allclose(img, 1.0)
    assert viz.to_image(torch.full((3, 2, 2), -3.0)).min() == 0.0


def test_to_image_scales_uint8_arrays_and_images_to_0_1():
    arr = np.zeros((4, 6, 3), dtype=np.uint8)
    arr[0, 0] = 255
    arr[1, 1] = 51
    img = viz.to_image(arr)
    assert img.dtype == np.float32 and img.shape == (4, 6, 3)
    assert img[0, 0, 0] == 1.0 and img[1, 1, 0] == pytest.approx(0.2)
    np.testing.assert_allclose(viz.to_image(Image.fromarray(arr)), img)


def test_to_image_scales_a_dark_uint8_image_too():
    # A uint8 image is 0..255 even when its brightest pixel is 1.
    arr = np.ones((2, 2, 3), dtype=np.uint8)
    assert viz.to_image(arr).max() == pytest.approx(1 / 255)
    assert viz.to_image(torch.from_numpy(arr).permute(2, 0, 1)).max() == pytest.approx(1 / 255)


def test_show_image_draws_without_ticks():
    fig, ax = plt.subplots()
    viz.show_image(ax, torch.rand(3, 8, 8), title="photo")
    assert len(ax.get_images()) == 1 and not ax.axison and ax.get_title() == "photo"
