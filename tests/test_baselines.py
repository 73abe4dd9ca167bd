"""Baselines: defined in pixels, normalised like the inputs; clear errors for wrong units or
shapes; averaging any method over several baselines."""
from __future__ import annotations

import pytest
import torch

import course_lib as cl
from course_lib.attribution.baselines import resolve_baseline, resolve_baselines

pytestmark = pytest.mark.usefixtures("deterministic")

HALF = cl.Normalization(0.5, 0.5)  # EfficientNet-Lite0 and the Shapes models
IMAGENET = cl.Normalization(cl.IMAGENET_MEAN, (0.229, 0.224, 0.225))
TARGETS = [0, 3, 1]


def normalised(x: torch.Tensor, norm: cl.Normalization = HALF) -> torch.Tensor:
    return norm.normalize(x)


# --------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("norm", [HALF, IMAGENET, cl.Normalization()], ids=["half", "imagenet", "identity"])
def test_normalization_round_trips_and_maps_pixels_as_torchvision_normalize(x, norm):
    from torchvision.transforms.functional import normalize

    mean = list(norm.mean) if isinstance(norm.mean, tuple) else [norm.mean] * 3
    std = list(norm.std) if isinstance(norm.std, tuple) else [norm.std] * 3
    torch.testing.assert_close(norm.normalize(x), normalize(x, mean, std), atol=1e-15, rtol=0)
    torch.testing.assert_close(norm.pixels(norm.normalize(x)), x, atol=1e-15, rtol=0)


def test_normalization_with_the_wrong_number_of_channels_says_so(x):
    with pytest.raises(ValueError, match="2 mean values for 3 channels"):
        cl.Normalization((0.5, 0.5), 0.5).normalize(x)


def test_normalization_check_rejects_unnormalised_and_0_255_inputs(x):
    HALF.check(normalised(x))  # fine
    with pytest.raises(ValueError, match=r"do not look normalised with mean=0.5, std=0.5.*\[1, 1.25\]"):
        HALF.check(x * 0.5 + 1.0)  # pixel values 1 .. 1.25 after undoing it
    with pytest.raises(ValueError, match="do not look normalised"):
        HALF.check(x * 255)


# ------------------------------------------------------------------------- pixel baselines
@pytest.mark.parametrize("kind, pixel", [("black", 0.0), ("grey", 0.5), ("white", 1.0)])
@pytest.mark.parametrize("norm", [HALF, IMAGENET], ids=["half", "imagenet"])
def test_constant_baselines_are_that_pixel_value_under_any_normalisation(x, kind, pixel, norm):
    b = cl.pixel_baseline(kind, normalised(x, norm), norm)
    assert b.shape == x.shape and b.dtype == x.dtype
    torch.testing.assert_close(norm.pixels(b), torch.full_like(x, pixel), atol=1e-15, rtol=0)


def test_black_is_minus_one_and_grey_is_zero_for_mean_and_std_one_half(x):
    assert torch.equal(cl.pixel_baseline("black", normalised(x), HALF), torch.full_like(x, -1.0))
    assert torch.equal(cl.pixel_baseline("grey", normalised(x), HALF), torch.zeros_like(x))


def test_dataset_mean_colour_under_imagenet_normalisation_is_the_zero_input(x):
    b = cl.pixel_baseline("mean", normalised(x, IMAGENET), IMAGENET, mean_pixels=cl.IMAGENET_MEAN)
    torch.testing.assert_close(b, torch.zeros_like(x), atol=1e-15, rtol=0)


def test_mean_baseline_takes_a_mean_image_too(x):
    image = x[0]
    b = cl.pixel_baseline("mean", normalised(x), HALF, mean_pixels=image)
    torch.testing.assert_close(HALF.pixels(b), image.expand_as(x), atol=1e-15, rtol=0)


def test_uniform_baseline_is_seeded_the_same_for_every_example_and_in_range(x):
    b = cl.pixel_baseline("uniform", normalised(x), HALF, seed=3)
    p = HALF.pixels(b)
    assert (p >= 0).all() and (p <= 1).all() and p.std() > 0.2
    assert torch.equal(b[0], b[1]) and torch.equal(b, cl.pixel_baseline("uniform", normalised(x), HALF, seed=3))
    assert not torch.equal(b, cl.pixel_baseline("uniform", normalised(x), HALF, seed=4))


def test_blur_baseline_blurs_in_pixel_space_and_keeps_a_constant_image(x):
    from scipy.ndimage import gaussian_filter

    inputs = normalised(x)
    b = cl.pixel_baseline("blur", inputs, HALF, sigma=1.0)
    expected = torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, 1.0, 1.0), mode="mirror", truncate=3.0))
    torch.testing.assert_close(HALF.pixels(b), expected, atol=1e-12, rtol=0)
    flat = torch.full_like(x, 0.3)
    torch.testing.assert_close(HALF.pixels(cl.pixel_baseline("blur", normalised(flat), HALF, sigma=2.0)), flat,
                               atol=1e-12, rtol=0)


def test_unknown_baseline_lists_the_known_ones(x):
    with pytest.raises(ValueError, match="unknown baseline 'noise'; choose one of black, grey, white, uniform, blur, mean"):
        cl.pixel_baseline("noise", normalised(x), HALF)


def test_mean_baseline_needs_its_colour_in_pixel_units(x):
    with pytest.raises(ValueError, match="needs mean_pixels="):
        cl.pixel_baseline("mean", normalised(x), HALF)
    with pytest.raises(ValueError, match="must be 3 values"):
        cl.pixel_baseline("mean", normalised(x), HALF, mean_pixels=(0.5, 0.5))
    with pytest.raises(ValueError, match=r"pixel units, \[0, 1\]"):
        cl.pixel_baseline("mean", normalised(x), HALF, mean_pixels=(124.0, 116.0, 104.0))


def test_pixel_baseline_refuses_inputs_that_are_not_normalised_as_stated(x):
    with pytest.raises(ValueError, match="do not look normalised"):
        cl.pixel_baseline("black", x * 255, HALF)


# ------------------------------------------------------------------ resolving a baseline
def test_resolve_baseline_accepts_none_numbers_and_broadcast_tensors(x):
    assert torch.equal(resolve_baseline(None, x), torch.zeros_like(x))
    assert torch.equal(resolve_baseline(0.25, x), torch.full_like(x, 0.25))
    one = torch.rand((1, *x.shape[1:]), dtype=x.dtype)
    assert torch.equal(resolve_baseline(one, x), one.expand_as(x))
    assert torch.equal(resolve_baseline(one.float(), x), one.float().double().expand_as(x))


def test_resolve_baseline_errors(x):
    with pytest.raises(ValueError, match=r"inputs' shape \(3, 3, 8, 8\) or \(1, 3, 8, 8\).*got \(3, 8, 8\)"):
        resolve_baseline(torch.zeros(3, 8, 8), x)
    with pytest.raises(TypeError, match="floating-point tensor in the model's input units"):
        resolve_baseline(torch.zeros(x.shape, dtype=torch.long), x)
    with pytest.raises(TypeError, match="got a bool"):
        resolve_baseline(True, x)
    with pytest.raises(ValueError, match=r"other units \(0..255"):
        resolve_baseline(torch.full_like(x, 255.0), normalised(x))


def test_resolve_baselines_takes_a_stack_or_a_list(x):
    refs = torch.rand((2, *x.shape[1:]), dtype=x.dtype)
    assert torch.equal(resolve_baselines(refs, x), refs)
    assert torch.equal(resolve_baselines([refs[0], refs[1:2]], x), refs)
    assert torch.equal(resolve_baselines(refs[0], x), refs[:1])
    with pytest.raises(ValueError, match="baselines must be K x 3 x 8 x 8"):
        resolve_baselines(torch.zeros(2, 3, 4, 4), x)
    with pytest.raises(TypeError, match="non-empty sequence"):
        resolve_baselines([], x)


# ----------------------------------------------------------------- averaging over baselines
def test_average_over_baselines_is_the_mean_of_the_method_per_baseline(relu6_cnn, x):
    inputs = normalised(x)
    refs = [cl.pixel_baseline(k, inputs, HALF) for k in ("black", "white")] + [0.0]
    opts = dict(n_steps=4, batch_size=None)
    expected = sum(cl.integrated_gradients(relu6_cnn, inputs, TARGETS, baseline=b, **opts) for b in refs) / 3
    ours = cl.average_over_baselines(cl.integrated_gradients, relu6_cnn, inputs, TARGETS, baselines=refs, **opts)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=0)


def test_average_over_baselines_with_target_none_explains_the_inputs_predicted_class(relu6_cnn, x, no_leftovers):
    inputs = normalised(x)
    with torch.no_grad():
        predicted = relu6_cnn(inputs).argmax(1).tolist()
    refs = torch.stack([cl.pixel_baseline("white", inputs, HALF)[0], torch.zeros_like(inputs[0])])
    check = no_leftovers(relu6_cnn)
    auto = cl.average_over_baselines(cl.deeplift, relu6_cnn, inputs, baselines=refs)
    check()
    torch.testing.assert_close(auto, cl.average_over_baselines(cl.deeplift, relu6_cnn, inputs, predicted,
                                                               baselines=refs), atol=0, rtol=0)


def test_average_over_no_baselines_is_an_error(relu6_cnn, x):
    with pytest.raises(ValueError, match="baselines is empty"):
        cl.average_over_baselines(cl.deeplift, relu6_cnn, x, TARGETS, baselines=[])
