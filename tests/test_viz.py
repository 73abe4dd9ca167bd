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


def test_show_heatmap_draws_values_in_their_own_units_on_colour_blind_safe_maps():
    fig, (a, b) = plt.subplots(1, 2)
    m = torch.linspace(0, 3, 64).view(8, 8)
    unsigned = viz.show_heatmap(a, m, clip_percentile=None)
    signed = viz.show_heatmap(b, m - 1.5, signed=True, clip_percentile=None)
    assert unsigned.get_cmap().name == viz.UNSIGNED_CMAP == "inferno"
    assert unsigned.get_clim() == pytest.approx((0.0, 3.0))
    assert signed.get_cmap().name == viz.SIGNED_CMAP
    assert signed.get_clim() == pytest.approx((-1.5, 1.5))


def test_signed_maps_draw_positive_values_orange_and_negative_values_purple():
    # The words of the legend and the colours must agree: orange = raises the score.
    fig, ax = plt.subplots()
    artist = viz.show_heatmap(ax, torch.tensor([[-1.0, 0.0, 1.0]]), signed=True, clip_percentile=None)
    neg, zero, pos = (np.asarray(artist.to_rgba(v))[:3] for v in (-1.0, 0.0, 1.0))
    assert pos[0] > pos[2] + 0.3, f"+1 should be orange (red >> blue), got rgb {pos}"
    assert neg[2] > neg[0] + 0.1 and neg[1] < neg[2], f"-1 should be purple, got rgb {neg}"
    assert zero.min() > 0.9, f"0 should be white, got rgb {zero}"
    assert "orange" in viz.SIGN_LEGEND and "raises" in viz.SIGN_LEGEND


def test_show_heatmap_adds_a_labelled_colour_bar_by_default_and_none_when_asked():
    fig, (a, b) = plt.subplots(1, 2)
    viz.show_heatmap(a, torch.randn(16, 16), signed=True)
    assert len(fig.axes) == 3, "a colour bar axis is added beside the signed map"
    cbar_label = fig.axes[-1].get_ylabel()
    assert viz.SIGN_LEGEND in cbar_label and "clipped at 99th pct" in cbar_label
    viz.show_heatmap(b, torch.rand(16, 16), colorbar=False)
    assert len(fig.axes) == 3


def test_clipping_is_stated_only_when_the_scale_cuts_values():
    fig, (a, b) = plt.subplots(1, 2)
    m = torch.ones(20, 20)
    m[0, 0] = 50.0  # 400 values: the 99th percentile falls among the ones
    art = viz.show_heatmap(a, m, clip_percentile=99.0)
    assert art.get_clim()[1] == pytest.approx(1.0)
    assert "clipped at 99th pct" in fig.axes[-1].get_ylabel()
    viz.show_heatmap(b, m, clip_percentile=None)
    assert "clipped" not in fig.axes[-1].get_ylabel()


def test_vmax_sets_the_scale_by_hand():
    fig, ax = plt.subplots()
    art = viz.show_heatmap(ax, torch.rand(8, 8), vmax=7.0, colorbar=False)
    assert art.get_clim() == pytest.approx((0.0, 7.0))


# -------------------------------------------------------------------------- method_grid
@pytest.mark.parametrize("n_images, n_methods", [(2, 3), (1, 1)])
def test_method_grid_has_one_row_per_image_and_a_column_per_method_plus_the_image(n_images, n_methods):
    images = torch.rand(n_images, 3, 16, 16)
    maps = {f"method {j}": torch.rand(n_images, 16, 16) for j in range(n_methods)}
    fig = viz.method_grid(images, maps, row_titles=[f"row {i}" for i in range(n_images)],
                          signed={"method 0": True}, overlay=True)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == n_images * (1 + n_methods)
    assert len(fig.axes) - len(panels) == n_images * n_methods, "a colour bar per map"
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (n_images, 1 + n_methods)
    titles = [ax.get_title() for ax in panels[: 1 + n_methods]]
    assert titles == ["row 0", *maps]
    assert panels[1].get_images()[-1].get_cmap().name == viz.SIGNED_CMAP


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


def test_method_grid_shared_scale_puts_every_map_on_one_unnormalised_scale():
    images = torch.rand(2, 3, 16, 16)
    small, large = torch.rand(2, 16, 16), 10 * torch.rand(2, 16, 16)
    fig = viz.method_grid(images, {"small": small, "large": large}, shared_scale=True,
                          clip_percentile=None)
    clims = {ax.get_images()[-1].get_clim() for ax in fig.axes[:6] if ax.get_images()
             and ax.get_images()[-1].get_cmap().name == viz.UNSIGNED_CMAP}
    assert len(clims) == 1, f"one scale for every map, got {clims}"
    (lo, hi), = clims
    assert hi == pytest.approx(float(large.max()))
    n_bars = len(fig.axes) - 2 * 3
    assert n_bars == 1, "one shared colour bar"


def test_method_grid_gives_each_map_its_own_scale_and_colour_bar_by_default():
    images = torch.rand(1, 3, 16, 16)
    fig = viz.method_grid(images, {"a": torch.rand(1, 16, 16), "b": 5 * torch.rand(1, 16, 16)},
                          clip_percentile=None)
    a, b = fig.axes[1].get_images()[-1], fig.axes[2].get_images()[-1]
    assert a.get_clim()[1] < 1.01 < b.get_clim()[1]
    assert len(fig.axes) == 3 + 2


def test_method_grid_draws_a_224_map_at_about_native_resolution():
    fig = viz.method_grid(torch.rand(1, 3, 224, 224), {"m": torch.rand(1, 224, 224)})
    fig.canvas.draw()
    bbox = fig.axes[1].get_window_extent()
    assert bbox.width >= 200 and bbox.height >= 200, f"drawn at {bbox.width:.0f} x {bbox.height:.0f} px"


def test_titles_are_readable():
    viz.use_style()
    assert plt.rcParams["axes.titlesize"] >= 10 and plt.rcParams["font.size"] >= 10


def test_a_contribution_map_can_say_what_its_sign_means():
    fig, ax = plt.subplots()
    viz.show_heatmap(ax, torch.randn(8, 8), signed=True, sign_legend=viz.CONTRIBUTION_LEGEND)
    assert viz.CONTRIBUTION_LEGEND in fig.axes[-1].get_ylabel()
    assert viz.SIGN_LEGEND not in fig.axes[-1].get_ylabel()
    grid = viz.method_grid(torch.rand(1, 3, 8, 8), {"gxi": torch.randn(1, 8, 8)}, signed={"gxi": True},
                           sign_legend={"gxi": viz.CONTRIBUTION_LEGEND})
    assert viz.CONTRIBUTION_LEGEND in grid.axes[-1].get_ylabel()


def test_a_shared_scale_keeps_the_sign_legend_of_its_signed_maps():
    maps = {"a": torch.randn(2, 8, 8), "b": torch.randn(2, 8, 8)}
    grid = viz.method_grid(torch.rand(2, 3, 8, 8), maps, signed={"a": True, "b": True}, shared_scale=True,
                           sign_legend={"a": viz.CONTRIBUTION_LEGEND, "b": viz.CONTRIBUTION_LEGEND})
    label = grid.axes[-1].get_ylabel()
    assert viz.CONTRIBUTION_LEGEND in label and viz.SIGN_LEGEND not in label


def test_signed_maps_with_different_legends_cannot_share_one_colour_bar():
    maps = {"a": torch.randn(1, 8, 8), "b": torch.randn(1, 8, 8)}
    with pytest.raises(ValueError, match="one sign legend"):
        viz.method_grid(torch.rand(1, 3, 8, 8), maps, signed={"a": True, "b": True}, shared_scale=True,
                        sign_legend={"a": viz.CONTRIBUTION_LEGEND})
