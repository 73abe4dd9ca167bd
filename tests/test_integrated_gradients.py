"""Integrated Gradients: agreement with Captum, the definition, batching, no leftovers, errors.

Tolerances, all in float64:
- ``CAPTUM_ATOL = 1e-10``: the Riemann left, right and middle rules at 8 steps, whose points and
  weights (k/8, 1/8) Captum's float32 rounding leaves exact.
- ``CAPTUM_GL_RTOL = 1e-7`` of the map's largest value for Gauss-Legendre: Captum rounds the
  weights to float32 (relative error up to 6e-8), we keep them in float64.
- Captum's trapezoid weights sum to (n - 1) / n: we check ours equals Captum's times n / (n - 1).
- ``EXACT_ATOL = 1e-12``: closed forms (a linear model), completeness against the returned
  delta, batched against one by one.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

import course_lib as cl
from tests.path_method_models import FailInBackward, FailOnCall, RowCounter, linear_model

pytestmark = pytest.mark.usefixtures("deterministic")

CAPTUM_ATOL = 1e-10
CAPTUM_GL_RTOL = 1e-7
EXACT_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]
IG = dict(n_steps=8, batch_size=5)  # 24 path points in chunks of 5: the last chunk is partial


def baseline_like(x: torch.Tensor, seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.rand(x.shape, generator=g, dtype=x.dtype)


def captum_ig(model, x, baseline, targets, method, n_steps):
    return IntegratedGradients(model).attribute(
        x.clone().requires_grad_(), baseline, target=targets, n_steps=n_steps, method=method,
        internal_batch_size=6,
    ).detach()


# ------------------------------------------------------------------- agreement with Captum
@pytest.mark.parametrize("method", ["riemann_left", "riemann_right", "riemann_middle"])
def test_ig_riemann_rules_match_captum_within_1e_10(any_cnn, x, method):
    b = baseline_like(x)
    ours = cl.integrated_gradients(any_cnn, x, TARGETS, baseline=b, method=method, **IG)
    ref = captum_ig(any_cnn, x, b, TARGETS, method, IG["n_steps"])
    assert ours.shape == x.shape and ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


def test_ig_gausslegendre_matches_captum_within_its_float32_weights(any_cnn, x):
    b = baseline_like(x)
    ours = cl.integrated_gradients(any_cnn, x, TARGETS, baseline=b, method="gausslegendre", **IG)
    ref = captum_ig(any_cnn, x, b, TARGETS, "gausslegendre", IG["n_steps"])
    assert (ours - ref).abs().max() <= CAPTUM_GL_RTOL * ref.abs().max()


def test_ig_gausslegendre_with_float32_rounded_weights_is_captum_to_1e_10(smooth_cnn, x):
    # The whole Gauss-Legendre difference is Captum's float32 weights: rebuild our sum with them.
    b, n_steps = baseline_like(x), IG["n_steps"]
    alphas, weights = cl.path_rule("gausslegendre", n_steps)
    grads = [cl.vanilla_gradient(smooth_cnn, b + float(a) * (x - b), TARGETS) for a in alphas]
    rounded = sum(g * float(w.float()) for g, w in zip(grads, weights)) * (x - b)
    ref = captum_ig(smooth_cnn, x, b, TARGETS, "gausslegendre", n_steps)
    torch.testing.assert_close(rounded, ref, atol=CAPTUM_ATOL, rtol=0)


def test_captum_trapezoid_is_short_by_a_factor_n_minus_1_over_n(any_cnn, x):
    b, n = baseline_like(x), IG["n_steps"]
    ours = cl.integrated_gradients(any_cnn, x, TARGETS, baseline=b, method="riemann_trapezoid", **IG)
    ref = captum_ig(any_cnn, x, b, TARGETS, "riemann_trapezoid", n)
    torch.testing.assert_close(ours * (n - 1) / n, ref, atol=1e-7 * float(ref.abs().max()), rtol=0)
    assert (ours - ref).abs().max() > 0.05 * ref.abs().max()


# ------------------------------------------------------------------------- the definition
@pytest.mark.parametrize("method", cl.IG_RULES)
@pytest.mark.parametrize("n_steps", [2, 3, 16])
def test_ig_of_a_linear_model_is_x_minus_baseline_times_w_exactly(x, method, n_steps):
    model = linear_model()
    b = baseline_like(x)
    attr, delta = cl.integrated_gradients(model, x, TARGETS, baseline=b, n_steps=n_steps, method=method,
                                          return_delta=True)
    w = model[1].weight[TARGETS].view_as(x)
    torch.testing.assert_close(attr, (x - b) * w, atol=EXACT_ATOL, rtol=0)
    assert delta.abs().max() < EXACT_ATOL


@pytest.mark.parametrize("method", cl.IG_RULES)
def test_path_rule_weights_sum_to_one_and_points_lie_on_the_path(method):
    for n in (2, 5, 50):
        alphas, weights = cl.path_rule(method, n)
        assert alphas.shape == weights.shape == (n,)
        assert alphas.dtype == weights.dtype == torch.float64
        assert float(weights.sum()) == pytest.approx(1.0, abs=1e-14)
        assert (alphas >= 0).all() and (alphas <= 1).all() and (weights > 0).all()


def test_path_rule_points_are_the_textbook_ones():
    exact = {
        "riemann_left": [0, 0.25, 0.5, 0.75],
        "riemann_right": [0.25, 0.5, 0.75, 1],
        "riemann_middle": [0.125, 0.375, 0.625, 0.875],
        "riemann_trapezoid": [0, 1 / 3, 2 / 3, 1],
    }
    for method, points in exact.items():
        torch.testing.assert_close(cl.path_rule(method, 4)[0], torch.tensor(points, dtype=torch.float64))
    torch.testing.assert_close(cl.path_rule("riemann_trapezoid", 4)[1],
                               torch.tensor([1 / 6, 1 / 3, 1 / 3, 1 / 6], dtype=torch.float64))


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_gauss_legendre_integrates_polynomials_of_degree_2n_minus_1_exactly_on_0_1(n):
    alphas, weights = cl.path_rule("gausslegendre", n)
    for degree in range(2 * n):
        assert float((weights * alphas**degree).sum()) == pytest.approx(1 / (degree + 1), abs=1e-14)
    # ... and not one degree more (visible above rounding for small n): it is no finer rule.
    if n <= 5:
        assert abs(float((weights * alphas ** (2 * n)).sum()) - 1 / (2 * n + 1)) > 1e-6


def test_ig_completeness_gap_is_the_returned_delta(any_cnn, x):
    b = baseline_like(x)
    attr, delta = cl.integrated_gradients(any_cnn, x, TARGETS, baseline=b, return_delta=True, **IG)
    with torch.no_grad():
        t = torch.tensor(TARGETS)[:, None]
        gap = any_cnn(x).gather(1, t)[:, 0] - any_cnn(b).gather(1, t)[:, 0]
    torch.testing.assert_close(delta, attr.flatten(1).sum(1) - gap, atol=EXACT_ATOL, rtol=0)
    assert delta.shape == (x.shape[0],)


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle", "riemann_trapezoid", "riemann_right"])
def test_ig_delta_falls_as_n_steps_grows(smooth_cnn, x, method):
    b = baseline_like(x)
    gaps = [float(cl.integrated_gradients(smooth_cnn, x, TARGETS, baseline=b, n_steps=n, method=method,
                                          return_delta=True)[1].abs().max())
            for n in (2, 4, 8, 16, 32)]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 0.1 * gaps[0]  # a first-order rule: error ~ 1/n, 16 times less


def test_ig_delta_falls_on_a_relu_network_too(relu6_cnn, x):
    b = baseline_like(x)
    coarse = cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=b, n_steps=4, return_delta=True)[1]
    fine = cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=b, n_steps=128, return_delta=True)[1]
    assert fine.abs().max() < 0.1 * coarse.abs().max()


def test_ig_of_the_identity_direction_is_symmetric_in_swapping_input_and_baseline(smooth_cnn, x):
    # Going backwards along the same path negates every attribution (the integral is odd).
    b = baseline_like(x)
    forward = cl.integrated_gradients(smooth_cnn, x, TARGETS, baseline=b, n_steps=16)
    backward = cl.integrated_gradients(smooth_cnn, b, TARGETS, baseline=x, n_steps=16)
    torch.testing.assert_close(forward, -backward, atol=EXACT_ATOL, rtol=0)


# ------------------------------------------------------------------------------ batching
def test_ig_batched_equals_one_by_one(any_cnn, x):
    b = baseline_like(x)
    batched = cl.integrated_gradients(any_cnn, x, TARGETS, baseline=b, **IG)
    single = torch.cat([cl.integrated_gradients(any_cnn, x[i : i + 1], t, baseline=b[i : i + 1], **IG)
                        for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=EXACT_ATOL, rtol=0)


def test_ig_batch_size_changes_the_chunks_never_the_result(relu6_cnn, x):
    b = baseline_like(x)
    reference = cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=b, n_steps=8, batch_size=None)
    for batch_size in (1, 3, 7, 24, 100):
        model = RowCounter(relu6_cnn).eval()
        out = cl.integrated_gradients(model, x, TARGETS, baseline=b, n_steps=8, batch_size=batch_size)
        torch.testing.assert_close(out, reference, atol=EXACT_ATOL, rtol=0)
        # The 3 inputs once (to fix the targets), then the 8 x 3 path points.
        assert sum(model.rows) == 3 + 8 * 3 and max(model.rows) <= batch_size


def test_ig_target_none_explains_the_predicted_class(any_cnn, x):
    with torch.no_grad():
        predicted = any_cnn(x).argmax(1).tolist()
    torch.testing.assert_close(cl.integrated_gradients(any_cnn, x, n_steps=4),
                               cl.integrated_gradients(any_cnn, x, predicted, n_steps=4), atol=0, rtol=0)


def test_ig_baseline_forms_agree(relu6_cnn, x):
    zeros = cl.integrated_gradients(relu6_cnn, x, TARGETS, n_steps=4)
    for form in (0.0, 0, torch.zeros(1, *x.shape[1:]), torch.zeros_like(x), torch.tensor(0.0)):
        torch.testing.assert_close(cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=form, n_steps=4),
                                   zeros, atol=0, rtol=0)


def test_ig_float32_model_and_inputs_stay_float32(relu6_cnn, x):
    attr, delta = cl.integrated_gradients(relu6_cnn.float(), x.float(), TARGETS, n_steps=4, return_delta=True)
    assert attr.dtype == delta.dtype == torch.float32


# ------------------------------------------------------------------- nothing is touched
def test_ig_leaves_no_hook_or_state_after_a_normal_run(any_cnn, x, no_leftovers):
    check = no_leftovers(any_cnn)
    cl.integrated_gradients(any_cnn, x, TARGETS, baseline=baseline_like(x), return_delta=True, **IG)
    check()


@pytest.mark.parametrize("fail_on", [1, 2, 4])
def test_ig_leaves_no_hook_or_state_after_the_forward_raises(relu_inplace_cnn, x, no_leftovers, fail_on):
    model = FailOnCall(relu_inplace_cnn, fail_on).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match=f"forward failed on call {fail_on}"):
        cl.integrated_gradients(model, x, TARGETS, **IG)
    check()


def test_ig_leaves_no_hook_or_state_after_the_backward_raises(relu_inplace_cnn, x, no_leftovers):
    model = nn.Sequential(relu_inplace_cnn[:2], FailInBackward(), relu_inplace_cnn[2:]).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="backward failed"):
        cl.integrated_gradients(model, x, TARGETS, **IG)
    check()


def test_ig_leaves_the_callers_input_and_baseline_untouched(relu_inplace_cnn, x):
    x = x.clone().requires_grad_(True)
    b = baseline_like(x.detach())
    before_x, before_b = x.detach().clone(), b.clone()
    cl.integrated_gradients(relu_inplace_cnn, x, TARGETS, baseline=b, **IG)
    assert torch.equal(x.detach(), before_x) and torch.equal(b, before_b)
    assert x.grad is None and x.requires_grad


def test_ig_in_training_mode_warns_and_leaves_batch_norm_statistics(bn_dropout_cnn, x, no_leftovers):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match="training mode"):
        cl.integrated_gradients(bn_dropout_cnn, x, TARGETS, **IG)
    check()


def test_ig_in_eval_mode_gives_no_warning(bn_dropout_cnn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.integrated_gradients(bn_dropout_cnn, x, TARGETS, **IG)


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("n_steps", [0, -3, 2.5, True])
def test_ig_n_steps_not_a_positive_int_is_rejected(relu6_cnn, x, n_steps):
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        cl.integrated_gradients(relu6_cnn, x, TARGETS, n_steps=n_steps)


def test_ig_unknown_rule_lists_the_known_ones(relu6_cnn, x):
    with pytest.raises(ValueError, match="unknown rule 'simpson'; choose one of riemann_left, riemann_right, "
                                         "riemann_middle, riemann_trapezoid, gausslegendre"):
        cl.integrated_gradients(relu6_cnn, x, TARGETS, method="simpson")


def test_ig_trapezoid_with_one_step_says_it_needs_two(relu6_cnn, x):
    with pytest.raises(ValueError, match="riemann_trapezoid needs n_steps >= 2"):
        cl.integrated_gradients(relu6_cnn, x, TARGETS, n_steps=1, method="riemann_trapezoid")


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 3, 4, 4), (3, 8, 8, 3)])
def test_ig_baseline_of_the_wrong_shape_names_both_shapes(relu6_cnn, x, shape):
    with pytest.raises(ValueError, match=r"baseline must have the inputs' shape \(3, 3, 8, 8\) or \(1, 3, 8, 8\)"):
        cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=torch.zeros(shape, dtype=x.dtype))


def test_ig_baseline_in_0_255_units_is_rejected(relu6_cnn, x):
    inputs = (x - 0.5) / 0.5  # normalised to [-1, 1]
    with pytest.raises(ValueError, match=r"other units \(0..255, or not normalised\)"):
        cl.integrated_gradients(relu6_cnn, inputs, TARGETS, baseline=torch.full_like(x, 255.0))


def test_ig_integer_baseline_is_rejected(relu6_cnn, x):
    with pytest.raises(TypeError, match="baseline must be a floating-point tensor"):
        cl.integrated_gradients(relu6_cnn, x, TARGETS, baseline=torch.zeros(x.shape, dtype=torch.uint8))


def test_ig_single_example_without_batch_dimension_is_rejected_with_a_hint(relu6_cnn, x):
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        cl.integrated_gradients(relu6_cnn, x[0, 0, 0], 0)


@pytest.mark.parametrize("target", [N_CLASSES, [0, 1, 99]])
def test_ig_target_out_of_range_names_the_number_of_classes(relu6_cnn, x, target, no_leftovers):
    check = no_leftovers(relu6_cnn)
    with pytest.raises(ValueError, match=rf"out of range: the model has {N_CLASSES} classes"):
        cl.integrated_gradients(relu6_cnn, x, target)
    check()


def test_ig_works_on_feature_vectors_not_only_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double().eval()
    v = torch.randn(5, 4, dtype=torch.float64)
    attr, delta = cl.integrated_gradients(model, v, 1, n_steps=64, return_delta=True)
    assert attr.shape == v.shape
    assert delta.abs().max() < 1e-10  # 64-point Gauss-Legendre on a smooth 1-D integrand
    assert np.isfinite(attr.numpy()).all()
