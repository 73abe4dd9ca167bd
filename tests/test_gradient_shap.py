"""GradientSHAP: Captum's GradientShap given the same draws, the definition, seeds, batching,
no leftovers, clear errors.

Tolerances, all in float64:
- ``CAPTUM_ATOL = 1e-10``: with the baselines, noise and path points Captum drew (numpy's
  global generator for baselines and points, torch's for the noise), our estimate is Captum's.
- ``EXACT_ATOL = 1e-12``: closed forms (a linear model), batched against one by one.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap
from torch import nn

import course_lib as cl
from course_lib.attribution.gradient_shap import _gradient_shap
from tests.path_method_models import FailInBackward, FailOnCall, linear_model

pytestmark = pytest.mark.usefixtures("deterministic")

CAPTUM_ATOL = 1e-10
EXACT_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]
GS = dict(n_samples=6, stdev=0.1, seed=2, batch_size=4)


def references(x: torch.Tensor, k: int = 4, seed: int = 3) -> torch.Tensor:
    return torch.rand((k, *x.shape[1:]), generator=torch.Generator().manual_seed(seed), dtype=x.dtype)


# ------------------------------------------------------------------- agreement with Captum
def test_gradient_shap_with_captums_draws_is_captums_within_1e_10(any_cnn, x):
    refs, n, s, stdev = references(x), x.shape[0], 5, 0.1
    np.random.seed(11)
    torch.manual_seed(11)
    ref = GradientShap(any_cnn).attribute(x.clone().requires_grad_(), refs, n_samples=s, stdevs=stdev,
                                          target=TARGETS).detach()
    # Captum's draws, in its order: baselines (numpy), noise (torch), path points (numpy).
    np.random.seed(11)
    torch.manual_seed(11)
    which = np.random.choice(len(refs), s * n).tolist()
    noise = torch.normal(0, torch.tensor(stdev).repeat((n * s, *x.shape[1:]))).to(x.dtype)
    alphas = torch.tensor(np.random.uniform(0.0, 1.0, n * s), dtype=x.dtype)
    shape = (n, s, *x.shape[1:])
    ours = _gradient_shap(any_cnn, x, torch.tensor(TARGETS), refs[which].view(shape), noise.view(shape),
                          alphas.view(n, s), batch_size=4)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


# ------------------------------------------------------------------------- the definition
def test_gradient_shap_of_a_linear_model_without_noise_is_w_times_x_minus_the_mean_drawn_baseline(x):
    model = linear_model()
    refs = references(x, k=1)
    w = model[1].weight[TARGETS].view_as(x)
    ours = cl.gradient_shap(model, x, TARGETS, baselines=refs, n_samples=5, stdev=0.0)
    torch.testing.assert_close(ours, (x - refs) * w, atol=EXACT_ATOL, rtol=0)


def test_gradient_shap_with_one_baseline_no_noise_converges_to_integrated_gradients(smooth_cnn, x):
    b = references(x, k=1)
    ig = cl.integrated_gradients(smooth_cnn, x, TARGETS, baseline=b, n_steps=32)
    errors = [float((cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=b, n_samples=s, seed=1) - ig).norm() / ig.norm())
              for s in (4, 1024)]
    assert errors[1] < 0.25 * errors[0]  # Monte Carlo: 256 times the draws, 1/16 of the error
    assert errors[1] < 0.05


def test_gradient_shap_sums_to_the_expected_score_difference_on_average(smooth_cnn, x):
    # Per draw a point estimate; over many draws sum(attr) -> E[f(x + e)] - E[f(b)].
    refs, stdev = references(x), 0.05
    attr = cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=refs, n_samples=2048, stdev=stdev, seed=0,
                            batch_size=2048)
    g = torch.Generator().manual_seed(9)
    noisy = x[:, None] + stdev * torch.randn((3, 256, *x.shape[1:]), generator=g, dtype=x.dtype)
    t = torch.tensor(TARGETS)
    with torch.no_grad():
        f_noisy = smooth_cnn(noisy.flatten(0, 1)).view(3, 256, -1)[range(3), :, TARGETS].mean(1)
        f_refs = smooth_cnn(refs)[:, t].mean(0)
    expected = f_noisy - f_refs
    assert (attr.flatten(1).sum(1) - expected).abs().max() < 0.05 * expected.abs().max()


# --------------------------------------------------------------------- seeds and batching
def test_gradient_shap_same_seed_same_map_other_seed_other_map(smooth_cnn, x):
    refs = references(x)
    a = cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=refs, **GS)
    assert torch.equal(a, cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=refs, **GS))
    assert not torch.allclose(a, cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=refs, **{**GS, "seed": 3}))


def test_gradient_shap_does_not_touch_the_global_random_state(smooth_cnn, x):
    torch.manual_seed(123)
    np.random.seed(123)
    expected = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    cl.gradient_shap(smooth_cnn, x, TARGETS, baselines=references(x), **GS)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_gradient_shap_batched_equals_one_by_one(any_cnn, x):
    refs = references(x)
    batched = cl.gradient_shap(any_cnn, x, TARGETS, baselines=refs, **GS)
    single = torch.cat([cl.gradient_shap(any_cnn, x[i : i + 1], t, baselines=refs, **GS) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=EXACT_ATOL, rtol=0)


@pytest.mark.parametrize("size", [8, 5], ids=["3x8x8", "3x5x5"])
def test_gradient_shap_batch_size_never_changes_the_result(smooth_cnn, make_batch, size):
    x = make_batch(2, size)
    refs = references(x)
    reference = cl.gradient_shap(smooth_cnn, x, [1, 4], baselines=refs, n_samples=7, stdev=0.2, batch_size=None)
    for batch_size in (1, 3, 8):
        out = cl.gradient_shap(smooth_cnn, x, [1, 4], baselines=refs, n_samples=7, stdev=0.2, batch_size=batch_size)
        torch.testing.assert_close(out, reference, atol=EXACT_ATOL, rtol=0)


def test_gradient_shap_target_none_explains_the_clean_inputs_predicted_class(any_cnn, x):
    with torch.no_grad():
        predicted = any_cnn(x).argmax(1).tolist()
    refs = references(x)
    torch.testing.assert_close(cl.gradient_shap(any_cnn, x, baselines=refs, **GS),
                               cl.gradient_shap(any_cnn, x, predicted, baselines=refs, **GS), atol=0, rtol=0)


def test_gradient_shap_default_baseline_is_the_zero_input(relu6_cnn, x):
    torch.testing.assert_close(cl.gradient_shap(relu6_cnn, x, TARGETS, **GS),
                               cl.gradient_shap(relu6_cnn, x, TARGETS, baselines=torch.zeros_like(x[:1]), **GS),
                               atol=0, rtol=0)


# ------------------------------------------------------------------- nothing is touched
def test_gradient_shap_leaves_no_hook_or_state(any_cnn, x, no_leftovers):
    check = no_leftovers(any_cnn)
    cl.gradient_shap(any_cnn, x, TARGETS, baselines=references(x), **GS)
    check()


@pytest.mark.parametrize("fail_on", [1, 2])
def test_gradient_shap_leaves_no_hook_or_state_after_the_forward_raises(relu_inplace_cnn, x, no_leftovers, fail_on):
    model = FailOnCall(relu_inplace_cnn, fail_on).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match=f"forward failed on call {fail_on}"):
        cl.gradient_shap(model, x, TARGETS, baselines=references(x), **GS)
    check()


def test_gradient_shap_leaves_no_hook_or_state_after_the_backward_raises(relu_inplace_cnn, x, no_leftovers):
    model = nn.Sequential(relu_inplace_cnn[:2], FailInBackward(), relu_inplace_cnn[2:]).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="backward failed"):
        cl.gradient_shap(model, x, TARGETS, baselines=references(x), **GS)
    check()


def test_gradient_shap_in_training_mode_warns(bn_dropout_cnn, x, no_leftovers):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match="training mode"):
        cl.gradient_shap(bn_dropout_cnn, x, TARGETS, baselines=references(x), **GS)
    check()


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("n_samples", [0, -1, 1.5])
def test_gradient_shap_n_samples_must_be_a_positive_int(relu6_cnn, x, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        cl.gradient_shap(relu6_cnn, x, TARGETS, baselines=references(x), n_samples=n_samples)


def test_gradient_shap_negative_stdev_is_rejected(relu6_cnn, x):
    with pytest.raises(ValueError, match="stdev must be >= 0"):
        cl.gradient_shap(relu6_cnn, x, TARGETS, baselines=references(x), stdev=-0.1)


def test_gradient_shap_baselines_of_the_wrong_shape_or_units_are_rejected(relu6_cnn, x):
    with pytest.raises(ValueError, match="baselines must be K x 3 x 8 x 8"):
        cl.gradient_shap(relu6_cnn, x, TARGETS, baselines=torch.zeros(4, 3, 7, 7, dtype=x.dtype))
    with pytest.raises(ValueError, match=r"other units \(0..255"):
        cl.gradient_shap(relu6_cnn, x, TARGETS, baselines=references(x) * 255)


@pytest.mark.parametrize("target", [N_CLASSES, [0, 1, 99]])
def test_gradient_shap_target_out_of_range_names_the_number_of_classes(relu6_cnn, x, target, no_leftovers):
    check = no_leftovers(relu6_cnn)
    with pytest.raises(ValueError, match=rf"out of range: the model has {N_CLASSES} classes"):
        cl.gradient_shap(relu6_cnn, x, target, baselines=references(x))
    check()
