"""Occlusion: agreement with Captum, hand-computed overlap averaging, batching, no leftovers, errors.

Tolerances, all with float64 models and inputs:
- ``CAPTUM_RTOL = 1e-6`` of the map's largest |value|: Captum divides its sums by the window
  counts after casting them to float32 (``format_result``), so its maps are float32.
  Measured: at most 8e-8.
- ``BATCH_ATOL = 1e-12``: another batch size or batch composition only changes rounding.
"""
from __future__ import annotations

import warnings

import pytest
import torch
from captum.attr import Occlusion
from torch import nn

import course_lib as cl
from tests.perturbation_games import CountPasses, FailOnCall

pytestmark = pytest.mark.usefixtures("deterministic")

CAPTUM_RTOL = 1e-6
BATCH_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]
SIZE = 8

# (window, stride): overlapping windows, stride < window, rectangular, a cut-off last window,
# non-overlapping tiles, and a window as large as the image.
GEOMETRIES = [(3, 1), (4, 2), ((3, 2), (2, 1)), (5, 2), (2, 2), (8, 3)]
FILLS = ["zero", 0.7, "mean", "blur", "tensor"]


def fill_for(name, x):
    if name == "tensor":
        return torch.linspace(-1, 1, x[0].numel(), dtype=x.dtype).view(1, *x.shape[1:])
    return name


def captum_occlusion(model, x, targets, window, stride, fill, batch_size=5):
    w = window if isinstance(window, tuple) else (window, window)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    return Occlusion(model).attribute(
        x, sliding_window_shapes=(x.shape[1], *w), strides=(x.shape[1], *s),
        baselines=cl.make_baseline(x, fill), target=targets, perturbations_per_eval=batch_size,
    )


# ------------------------------------------------------------------- agreement with Captum
@pytest.mark.parametrize("fill", FILLS)
@pytest.mark.parametrize("window,stride", GEOMETRIES, ids=[f"w{w}-s{s}" for w, s in GEOMETRIES])
def test_occlusion_matches_captum_within_1e_6_relative(any_cnn, x, window, stride, fill):
    f = fill_for(fill, x)
    ours = cl.occlusion(any_cnn, x, TARGETS, window=window, stride=stride, fill=f, batch_size=7)
    ref = captum_occlusion(any_cnn, x, TARGETS, window, stride, f)
    assert ours.shape == x.shape and ours.dtype == x.dtype
    assert ref.abs().max() > 0
    assert (ours - ref).abs().max() <= CAPTUM_RTOL * ref.abs().max()


def test_captum_comparison_fails_with_another_fill(smooth_cnn, x):
    # The agreement above is not an accident of the model: another fill gives another map.
    ours = cl.occlusion(smooth_cnn, x, TARGETS, window=3, stride=1, fill="mean")
    ref = captum_occlusion(smooth_cnn, x, TARGETS, 3, 1, "zero")
    assert (ours - ref).abs().max() > 1e-3 * ref.abs().max()


# --------------------------------------------------------------- semantics, by hand
class LinearScore(nn.Module):
    """Class 0 scores sum(a * x) over one channel: every occlusion drop is a sum of a * (x - fill)."""

    def __init__(self, a: torch.Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a.double())

    def forward(self, x):
        s = (x * self.a).flatten(1).sum(dim=1)
        return torch.stack([s, -s], dim=1)


def test_overlapping_windows_are_averaged_not_maxed_on_a_hand_computed_row():
    # One row of four pixels, windows of 2 with stride 1 at columns 0, 1, 2. With a = 1, x = 1..4
    # and fill 0 the drops are 3, 5, 7; pixel 0 is in window 0 only, pixel 1 in windows 0 and 1...
    model = LinearScore(torch.ones(1, 1, 4)).eval()
    x = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]], dtype=torch.float64)
    out = cl.occlusion(model, x, 0, window=(1, 2), stride=1)
    expected = torch.tensor([3.0, (3 + 5) / 2, (5 + 7) / 2, 7.0], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, 0], expected, atol=1e-12, rtol=0)


def test_a_cut_off_last_window_is_placed_as_captum_places_it():
    # Six columns, window 4, stride 3: windows at 0 and 3 (the second cut to 3 columns), no
    # window at column 2. Drops with a = 1, x = 1..6: 1+2+3+4 = 10 and 4+5+6 = 15.
    model = LinearScore(torch.ones(1, 1, 6)).eval()
    x = torch.arange(1.0, 7.0, dtype=torch.float64).view(1, 1, 1, 6)
    out = cl.occlusion(model, x, 0, window=(1, 4), stride=(1, 3))
    expected = torch.tensor([10, 10, 10, 12.5, 15, 15], dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, 0], expected, atol=1e-12, rtol=0)
    assert cl.count_windows((1, 6), (1, 4), (1, 3)) == 2


def test_fill_values_are_what_replaces_the_window():
    a = torch.tensor([[[1.0, -2.0], [0.5, 3.0]]])
    model = LinearScore(a).eval()
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    for fill, replaced in [("zero", torch.zeros(2, 2)), (1.5, torch.full((2, 2), 1.5)), ("mean", torch.full((2, 2), 2.5))]:
        out = cl.occlusion(model, x, 0, window=1, stride=1, fill=fill)
        torch.testing.assert_close(out[0, 0], (a[0] * (x[0, 0] - replaced)).double(), atol=1e-12, rtol=0)


def test_window_as_large_as_the_image_gives_every_pixel_f_x_minus_f_fill(relu6_cnn, x):
    out = cl.occlusion(relu6_cnn, x, TARGETS, window=SIZE, stride=1, fill=0.25)
    with torch.no_grad():
        drop = relu6_cnn(x)[range(3), TARGETS] - relu6_cnn(torch.full_like(x, 0.25))[range(3), TARGETS]
    torch.testing.assert_close(out, drop.view(3, 1, 1, 1).expand_as(x), atol=1e-12, rtol=0)


def test_occluding_with_the_image_itself_gives_zero(relu6_cnn, x):
    out = cl.occlusion(relu6_cnn, x, TARGETS, window=3, stride=2, fill=x)
    assert out.abs().max() == 0


def test_blur_fill_is_a_normalised_gaussian_that_keeps_a_constant_image():
    flat = torch.full((1, 3, 9, 9), 0.3, dtype=torch.float64)
    torch.testing.assert_close(cl.make_baseline(flat, "blur"), flat, atol=1e-12, rtol=0)
    impulse = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    impulse[0, 0, 15, 15] = 1.0
    blurred = cl.gaussian_blur(impulse, 2.0)
    assert abs(float(blurred.sum()) - 1.0) < 1e-6  # mass kept (the tails beyond 3 sigma are cut)
    col = blurred[0, 0, :, 15] / blurred[0, 0, 15, 15]
    torch.testing.assert_close(col[17], torch.exp(torch.tensor(-4.0 / 8.0, dtype=torch.float64)), atol=1e-6, rtol=0)


@pytest.mark.parametrize("size,window,stride,expected", [(224, 16, 8, 27 * 27), (64, 10, 4, 15 * 15), (64, 8, 8, 64), (224, (32, 16), (16, 16), 13 * 14)])
def test_count_windows_is_the_number_of_forward_passes(relu6_cnn, size, window, stride, expected):
    assert cl.count_windows(size, window, stride) == expected
    if size == 64:  # and the method really makes that many passes (plus one on the clean image)
        counted = CountPasses(relu6_cnn).eval()
        cl.occlusion(counted, torch.rand(2, 3, size, size, dtype=torch.float64), 0, window=window, stride=stride, batch_size=50)
        assert counted.images == 2 * expected + 2


# ------------------------------------------------------------------------------ batching
def test_batched_equals_one_by_one(any_cnn, x):
    kw = dict(window=3, stride=2, fill="blur")
    batched = cl.occlusion(any_cnn, x, TARGETS, **kw)
    single = torch.cat([cl.occlusion(any_cnn, x[i : i + 1], t, **kw) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


def test_batch_size_does_not_change_the_map(relu6_cnn, x):
    reference = cl.occlusion(relu6_cnn, x, TARGETS, window=3, stride=1, batch_size=None)
    for batch_size in (1, 5, 36, 1000):
        out = cl.occlusion(relu6_cnn, x, TARGETS, window=3, stride=1, batch_size=batch_size)
        torch.testing.assert_close(out, reference, atol=BATCH_ATOL, rtol=0)


def test_progress_bar_does_not_change_the_map(relu6_cnn, x, capsys):
    quiet = cl.occlusion(relu6_cnn, x, TARGETS, window=3, stride=1, progress=False)
    shown = cl.occlusion(relu6_cnn, x, TARGETS, window=3, stride=1, progress=True)
    assert "occlusion" in capsys.readouterr().err
    assert torch.equal(quiet, shown)


def test_target_none_explains_the_predicted_class(any_cnn, x):
    with torch.no_grad():
        predicted = any_cnn(x).argmax(dim=1).tolist()
    auto = cl.occlusion(any_cnn, x, None, window=3, stride=2)
    assert torch.equal(auto, cl.occlusion(any_cnn, x, predicted, window=3, stride=2))
    assert not torch.allclose(auto, cl.occlusion(any_cnn, x, [(p + 1) % N_CLASSES for p in predicted], window=3, stride=2))


# ------------------------------------------------------------------- nothing is touched
def test_no_hook_or_state_left_after_a_normal_run(any_cnn, x, no_leftovers):
    check = no_leftovers(any_cnn)
    cl.occlusion(any_cnn, x, TARGETS, window=3, stride=2, batch_size=4)
    check()


def test_no_hook_or_state_left_after_the_forward_raises_mid_way(relu_inplace_cnn, x, no_leftovers):
    model = FailOnCall(relu_inplace_cnn, fail_on=3).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="forward failed on call 3"):
        cl.occlusion(model, x, TARGETS, window=3, stride=2, batch_size=4)
    check()


def test_no_hook_or_state_left_after_a_target_out_of_range(bn_dropout_cnn, x, no_leftovers):
    check = no_leftovers(bn_dropout_cnn)
    with pytest.raises(ValueError, match=f"out of range: the model has {N_CLASSES} classes"):
        cl.occlusion(bn_dropout_cnn, x, N_CLASSES, window=3, stride=2)
    check()


def test_callers_input_is_untouched(relu_inplace_cnn, x):
    x = x.clone().requires_grad_(True)
    before = x.detach().clone()
    cl.occlusion(relu_inplace_cnn, x, TARGETS, window=3, stride=2, fill="mean")
    assert torch.equal(x.detach(), before) and x.grad is None and x.requires_grad


def test_model_in_training_mode_warns_and_keeps_batchnorm_statistics(bn_dropout_cnn, x, no_leftovers):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match=r"training mode.*Call model\.eval\(\)"):
        cl.occlusion(bn_dropout_cnn, x, TARGETS, window=4, stride=4)
    check()


def test_model_in_eval_mode_gives_no_warning(bn_dropout_cnn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.occlusion(bn_dropout_cnn, x, TARGETS, window=4, stride=4)


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("window,match", [
    (9, r"window \(9 x 9\) is larger than the image \(8 x 8\) along the rows"),
    ((2, 10), r"window \(2 x 10\) is larger than the image \(8 x 8\) along the columns"),
])
def test_a_window_larger_than_the_image_is_refused(relu6_cnn, x, window, match):
    with pytest.raises(ValueError, match=match):
        cl.occlusion(relu6_cnn, x, 0, window=window, stride=1)


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_a_stride_of_zero_or_less_is_refused(relu6_cnn, x, stride):
    with pytest.raises(ValueError, match="stride must be at least 1 pixel"):
        cl.occlusion(relu6_cnn, x, 0, window=3, stride=stride)


def test_a_stride_larger_than_the_window_is_refused_saying_pixels_would_be_skipped(relu6_cnn, x):
    with pytest.raises(ValueError, match=r"stride 4 is larger than the window 3 along the rows: the pixels between"):
        cl.occlusion(relu6_cnn, x, 0, window=3, stride=4)


@pytest.mark.parametrize("window", [2.5, (2, 2, 2), True, "3"])
def test_a_window_that_is_not_ints_is_refused(relu6_cnn, x, window):
    with pytest.raises(TypeError, match="window must be an int or a pair of ints"):
        cl.occlusion(relu6_cnn, x, 0, window=window, stride=1)


def test_an_unknown_fill_lists_the_known_ones(relu6_cnn, x):
    with pytest.raises(ValueError, match="unknown fill 'grey'; choose one of zero, mean, blur, a number, or a tensor"):
        cl.occlusion(relu6_cnn, x, 0, window=3, stride=1, fill="grey")


def test_a_fill_tensor_of_the_wrong_shape_is_refused(relu6_cnn, x):
    with pytest.raises(ValueError, match=r"fill tensor must broadcast to the inputs' shape \(3, 3, 8, 8\)"):
        cl.occlusion(relu6_cnn, x, 0, window=3, stride=1, fill=torch.zeros(3, 4, 4))


def test_3d_input_is_rejected_with_a_hint_to_unsqueeze(relu6_cnn, x):
    with pytest.raises(ValueError, match=r"4 dimensions.*unsqueeze\(0\)"):
        cl.occlusion(relu6_cnn, x[0], 0, window=3, stride=1)


def test_integer_input_is_rejected_asking_for_floats(relu6_cnn, x):
    with pytest.raises(TypeError, match="floating-point"):
        cl.occlusion(relu6_cnn, (x * 255).to(torch.uint8), 0, window=3, stride=1)


def test_batch_size_zero_is_refused(relu6_cnn, x):
    with pytest.raises(ValueError, match="batch_size must be a positive int or None"):
        cl.occlusion(relu6_cnn, x, 0, window=3, stride=1, batch_size=0)
