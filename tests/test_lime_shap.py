"""LIME and KernelSHAP on segments: agreement with Captum given the same samples and weights,
hand-computed answers, convergence to exact Shapley values, superpixels, batching, errors.

Tolerances (float64 models and inputs), relative to the largest |score| the surrogate is
fitted to (float32 rounding of the scores is what limits Captum, whatever the values' size):
- ``LIME_CAPTUM_RTOL = 1e-6``: Captum's ``Lime`` fits its surrogate in float32 (it casts
  samples, scores and weights with ``.float()``). Measured: at most 1.3e-7.
- ``KERNEL_SHAP_CAPTUM_RTOL = 5e-5``: Captum's ``KernelShap`` fits in float32 and imposes
  phi_0 = f(baseline) and efficiency only softly (weight 10^6 on the full and empty
  coalitions); we solve the constrained problem exactly in float64. Measured: at most 4e-6.
- ``FIT_ATOL = 1e-10``: our surrogate fits against scikit-learn's in float64 on the same data.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr import KernelShap, Lime
from captum.attr._core.lime import default_perturb_func
from sklearn.linear_model import LinearRegression, Ridge

import course_lib as cl
from course_lib.zoo import make_shapes
from course_lib.perturbation.coalitions import coalition_images
from tests.perturbation_games import GAMES, CountPasses, FailOnCall, GameModel, ones_image, tiles

pytestmark = pytest.mark.usefixtures("deterministic")

LIME_CAPTUM_RTOL = 1e-6
KERNEL_SHAP_CAPTUM_RTOL = 5e-5
FIT_ATOL = 1e-10
BATCH_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]
SEGMENTS = cl.grid_segments(8, 8, 2, 3)  # six tiles on the 8 x 8 fixture images


def mask_for_captum(segments, x):
    """Captum wants a feature mask broadcastable to one example, contiguous."""
    return segments[None, None].expand(1, x.shape[1], *segments.shape).contiguous()


def captum_lime(model, xi, target, segments, n_samples, seed, kernel_width=0.25, alpha=1.0, fill="zero"):
    similarity = lambda _orig, _perturbed, z, **kw: cl.lime_kernel(z.bool(), kernel_width).float()  # noqa: E731
    explainer = Lime(model, interpretable_model=SkLearnRidge(alpha=alpha), similarity_func=similarity)
    torch.manual_seed(seed)
    return explainer.attribute(xi, baselines=cl.make_baseline(xi, fill), target=target,
                               feature_mask=mask_for_captum(segments, xi), n_samples=n_samples,
                               perturbations_per_eval=16)


def captum_kernel_shap(model, xi, target, segments, n_samples, seed, fill="zero"):
    torch.manual_seed(seed)
    return KernelShap(model).attribute(xi, baselines=cl.make_baseline(xi, fill), target=target,
                                       feature_mask=mask_for_captum(segments, xi), n_samples=n_samples,
                                       perturbations_per_eval=16)


def scores_of(model, xi, target, segments, z, fill="zero"):
    with torch.no_grad():
        images = coalition_images(xi[0], cl.make_baseline(xi, fill)[0], segments, z)
        return model(images)[:, target]


# ------------------------------------------------------------------- agreement with Captum
@pytest.mark.parametrize("fill", ["zero", "blur"])
def test_lime_matches_captum_lime_given_the_same_samples_and_weights_within_1e_6(any_cnn, x, fill):
    for i, t in enumerate(TARGETS):
        xi = x[i : i + 1]
        ours = cl.lime(any_cnn, xi, t, segments=SEGMENTS, n_samples=60, seed=11 + i, baseline=fill)
        ref = captum_lime(any_cnn, xi, t, SEGMENTS, 60, 11 + i, fill=fill)
        scale = scores_of(any_cnn, xi, t, SEGMENTS, cl.lime_coalitions(6, 60, 11 + i), fill).abs().max()
        assert ref.abs().max() > 0
        assert (ours - ref).abs().max() <= LIME_CAPTUM_RTOL * scale


def test_lime_coalitions_are_captums_default_draws():
    ours = cl.lime_coalitions(7, 50, seed=4)
    torch.manual_seed(4)
    theirs = torch.cat([default_perturb_func(torch.zeros(1), num_interp_features=7) for _ in range(50)])
    assert torch.equal(ours, theirs.bool())


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_kernel_shap_matches_captum_kernel_shap_within_5e_5(any_cnn, x, fill):
    for i, t in enumerate(TARGETS):
        xi = x[i : i + 1]
        ours = cl.kernel_shap(any_cnn, xi, t, segments=SEGMENTS, n_samples=50, seed=3 + i, baseline=fill)
        ref = captum_kernel_shap(any_cnn, xi, t, SEGMENTS, 50, 3 + i, fill=fill)
        scale = scores_of(any_cnn, xi, t, SEGMENTS, cl.kernel_shap_coalitions(6, 50, 3 + i), fill).abs().max()
        assert ref.abs().max() > 0
        assert (ours - ref).abs().max() <= KERNEL_SHAP_CAPTUM_RTOL * scale


def test_captum_comparison_fails_with_another_seed(smooth_cnn, x):
    xi = x[:1]
    ours = cl.kernel_shap(smooth_cnn, xi, 0, segments=SEGMENTS, n_samples=20, seed=3)
    ref = captum_kernel_shap(smooth_cnn, xi, 0, SEGMENTS, 20, 4)
    assert (ours - ref).abs().max() > 1e-3 * ref.abs().max()
    ours = cl.lime(smooth_cnn, xi, 0, segments=SEGMENTS, n_samples=20, seed=3)
    assert (ours - captum_lime(smooth_cnn, xi, 0, SEGMENTS, 20, 4)).abs().max() > 1e-3 * ours.abs().max()


def test_weighted_ridge_equals_scikit_learn_ridge_in_float64(relu6_cnn, x):
    xi = x[:1]
    z = cl.lime_coalitions(6, 40, seed=2)
    y = scores_of(relu6_cnn, xi, 1, SEGMENTS, z)
    w = cl.lime_kernel(z, 0.3)
    for alpha in (0.0, 0.5, 1.0):
        coef, intercept = cl.weighted_ridge(z, y, w, alpha)
        ref = Ridge(alpha=alpha, solver="svd").fit(z.double().numpy(), y.numpy(), sample_weight=w.numpy())
        np.testing.assert_allclose(coef.numpy(), ref.coef_, atol=FIT_ATOL, rtol=0)
        assert abs(float(intercept) - ref.intercept_) < FIT_ATOL


def test_lime_kernel_is_exp_of_cosine_distance_to_the_full_image():
    z = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    # cosine distances to (1,1,1,1): 0, 1 - 1/2, and 1 for the empty coalition
    expected = torch.exp(-torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64) / (2 * 0.5**2))
    torch.testing.assert_close(cl.lime_kernel(z, 0.5), expected, atol=1e-15, rtol=0)


def test_constrained_fit_equals_a_very_heavily_weighted_plain_regression(relu6_cnn, x):
    # Captum's way: the full and empty coalitions as ordinary rows with weight 1e6. In float64
    # that converges to our exact constraints as the weight grows.
    z = cl.kernel_shap_coalitions(6, 40, seed=1)
    y = scores_of(relu6_cnn, x[:1], 2, SEGMENTS, z)
    exact = cl.constrained_shap_fit(z[2:], y[2:], float(y[0]), float(y[1]))
    w = np.ones(len(z))
    w[:2] = 1e9
    soft = LinearRegression().fit(z.double().numpy(), y.numpy(), sample_weight=w)
    np.testing.assert_allclose(exact.numpy(), soft.coef_, atol=1e-6 * float(exact.abs().max()), rtol=0)


# --------------------------------------------------------------- known answers, by hand
@pytest.mark.parametrize("game", ["additive", "and", "or", "mixed"])
def test_kernel_shap_over_all_coalitions_with_the_kernel_weights_is_exactly_shapley(game):
    # The theorem behind KernelSHAP: the kernel-weighted regression over every coalition gives
    # the Shapley values. Checked on games whose values are known by hand.
    fn, expected = GAMES[game]
    model = GameModel(fn).eval()
    z = cl.all_coalitions(6)
    y = scores_of(model, ones_image(), 0, tiles(), z)
    full, empty = z.all(dim=1), ~z.any(dim=1)
    inner = ~(full | empty)
    phi = cl.constrained_shap_fit(z[inner], y[inner], float(y[full]), float(y[empty]),
                                  weights=cl.shapley_kernel(6, z[inner].sum(dim=1)))
    torch.testing.assert_close(phi, torch.tensor(expected, dtype=torch.float64), atol=1e-10, rtol=0)


def test_lime_and_kernel_shap_recover_an_additive_model_exactly():
    # For an additive game the score is exactly linear in the coalition: any sample that spans
    # the space gives the true terms, to rounding (LIME with no ridge penalty).
    fn, expected = GAMES["additive"]
    model = GameModel(fn).eval()
    expected = torch.tensor(expected, dtype=torch.float64)
    phi = cl.segment_values(cl.kernel_shap(model, ones_image(), 0, segments=tiles(), n_samples=40), tiles())[0]
    torch.testing.assert_close(phi, expected, atol=1e-10, rtol=0)
    coef = cl.segment_values(cl.lime(model, ones_image(), 0, segments=tiles(), n_samples=40, alpha=0.0), tiles())[0]
    torch.testing.assert_close(coef, expected, atol=1e-10, rtol=0)


def test_lime_ridge_penalty_shrinks_the_weights_towards_zero():
    model = GameModel(GAMES["additive"][0]).eval()
    norms = [float(cl.lime(model, ones_image(), 0, segments=tiles(), n_samples=40, alpha=a).abs().sum()) for a in (0.0, 1.0, 10.0)]
    assert norms[0] > norms[1] > norms[2]


def test_kernel_shap_values_sum_exactly_to_f_x_minus_f_baseline(any_cnn, x):
    out = cl.kernel_shap(any_cnn, x, TARGETS, segments=SEGMENTS, n_samples=12, baseline="blur")
    with torch.no_grad():
        fx = any_cnn(x)[range(3), TARGETS]
        fb = any_cnn(cl.make_baseline(x, "blur"))[range(3), TARGETS]
    torch.testing.assert_close(cl.segment_values(out, SEGMENTS).sum(dim=1), fx - fb, atol=1e-10, rtol=0)


def test_kernel_shap_converges_to_exact_shapley_as_samples_grow(smooth_cnn, x):
    xi = x[1:2]
    exact = cl.segment_values(cl.exact_shapley(smooth_cnn, xi, 2, segments=SEGMENTS), SEGMENTS)[0]
    errors = []
    for n_samples in (20, 80, 320, 1280):
        per_seed = [
            cl.segment_values(cl.kernel_shap(smooth_cnn, xi, 2, segments=SEGMENTS, n_samples=n_samples, seed=s), SEGMENTS)[0]
            for s in range(4)
        ]
        errors.append(float(torch.stack([(p - exact).norm() for p in per_seed]).mean() / exact.norm()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.25 * errors[0] and errors[-1] < 0.05, errors


def test_kernel_shap_draws_sizes_in_proportion_to_the_shapley_kernel():
    m = 6
    z = cl.kernel_shap_coalitions(m, 20_002, seed=0)
    assert z[0].all() and not z[1].any()
    sizes = z[2:].sum(dim=1)
    assert sizes.min() >= 1 and sizes.max() <= m - 1
    freq = torch.bincount(sizes, minlength=m)[1:m].double() / len(sizes)
    k = torch.arange(1, m, dtype=torch.float64)
    expected = (1 / (k * (m - k))) / (1 / (k * (m - k))).sum()
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)


def test_shapley_kernel_matches_its_formula():
    # pi = (M - 1) / (C(M, k) k (M - k)): M = 4, k = 1 -> 3 / (4 * 3) = 1/4; k = 2 -> 3 / (6 * 4) = 1/8
    torch.testing.assert_close(cl.shapley_kernel(4, torch.tensor([1, 2, 3])), torch.tensor([0.25, 0.125, 0.25], dtype=torch.float64))
    assert torch.isinf(cl.shapley_kernel(4, torch.tensor([0, 4]))).all()


# ------------------------------------------------------------------------------ batching
@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_batched_equals_one_by_one_and_segments_may_differ_per_image(any_cnn, x, method):
    fn = getattr(cl, method)
    segs = torch.stack([SEGMENTS, cl.grid_segments(8, 8, 2, 2), cl.grid_segments(8, 8, 3, 3)])
    batched = fn(any_cnn, x, TARGETS, segments=segs, n_samples=30, seed=5)
    single = torch.cat([fn(any_cnn, x[i : i + 1], t, segments=segs[i], n_samples=30, seed=5) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_batch_size_does_not_change_the_result_and_costs_n_samples_passes(relu6_cnn, x, method):
    fn = getattr(cl, method)
    counted = CountPasses(relu6_cnn).eval()
    reference = fn(counted, x, TARGETS, segments=SEGMENTS, n_samples=25, batch_size=None)
    assert counted.images == 3 + 3 * 25  # the clean batch, then n_samples per image
    for batch_size in (1, 7):
        out = fn(relu6_cnn, x, TARGETS, segments=SEGMENTS, n_samples=25, batch_size=batch_size)
        torch.testing.assert_close(out, reference, atol=BATCH_ATOL, rtol=0)


@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_same_seed_same_map_other_seed_other_map_global_rng_untouched(smooth_cnn, x, method):
    fn = getattr(cl, method)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = fn(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_samples=20, seed=1)
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a, fn(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_samples=20, seed=1))
    assert not torch.allclose(a, fn(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_samples=20, seed=2))


def test_segment_ids_need_not_be_consecutive(relu6_cnn, x):
    gappy = SEGMENTS * 10 + 3
    a = cl.kernel_shap(relu6_cnn, x, TARGETS, segments=gappy, n_samples=20)
    assert torch.equal(a, cl.kernel_shap(relu6_cnn, x, TARGETS, segments=SEGMENTS, n_samples=20))


# ------------------------------------------------------------------- nothing is touched
@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_no_hook_or_state_left_after_a_normal_run(any_cnn, x, no_leftovers, method):
    check = no_leftovers(any_cnn)
    getattr(cl, method)(any_cnn, x, TARGETS, segments=SEGMENTS, n_samples=10, batch_size=4)
    check()


@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_no_hook_or_state_left_after_the_forward_raises_mid_way(relu_inplace_cnn, x, no_leftovers, method):
    model = FailOnCall(relu_inplace_cnn, fail_on=3).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="forward failed on call 3"):
        getattr(cl, method)(model, x, TARGETS, segments=SEGMENTS, n_samples=10, batch_size=4)
    check()


@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_training_mode_warns_and_keeps_batchnorm_statistics(bn_dropout_cnn, x, no_leftovers, method):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match="training mode"):
        getattr(cl, method)(bn_dropout_cnn, x, TARGETS, segments=SEGMENTS, n_samples=10)
    check()


def test_callers_input_is_untouched(relu_inplace_cnn, x):
    x = x.clone().requires_grad_(True)
    before = x.detach().clone()
    cl.lime(relu_inplace_cnn, x, TARGETS, segments=SEGMENTS, n_samples=10)
    cl.kernel_shap(relu_inplace_cnn, x, TARGETS, segments=SEGMENTS, n_samples=10)
    assert torch.equal(x.detach(), before) and x.grad is None


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("method", ["lime", "kernel_shap"])
def test_segments_that_do_not_match_the_image_are_refused(relu6_cnn, x, method):
    fn = getattr(cl, method)
    with pytest.raises(ValueError, match=r"segments must be H x W or N x H x W matching the inputs \(3 x 8 x 8\), got shape \(7, 8\)"):
        fn(relu6_cnn, x, TARGETS, segments=SEGMENTS[:7], n_samples=10)
    with pytest.raises(ValueError, match=r"got shape \(2, 8, 8\)"):
        fn(relu6_cnn, x, TARGETS, segments=SEGMENTS.expand(2, 8, 8), n_samples=10)
    with pytest.raises(TypeError, match="segments must hold integer segment ids"):
        fn(relu6_cnn, x, TARGETS, segments=SEGMENTS.float(), n_samples=10)
    with pytest.raises(ValueError, match="segment ids must be non-negative"):
        fn(relu6_cnn, x, TARGETS, segments=SEGMENTS - 1, n_samples=10)


def test_bad_sample_counts_and_kernel_widths_are_refused(relu6_cnn, x):
    with pytest.raises(ValueError, match="n_samples must be an int >= 1, got 0"):
        cl.lime(relu6_cnn, x, 0, segments=SEGMENTS, n_samples=0)
    with pytest.raises(ValueError, match="n_samples must be an int >= 2, got 1"):
        cl.kernel_shap(relu6_cnn, x, 0, segments=SEGMENTS, n_samples=1)
    with pytest.raises(ValueError, match="kernel_width must be positive"):
        cl.lime(relu6_cnn, x, 0, segments=SEGMENTS, n_samples=10, kernel_width=0)
    with pytest.raises(ValueError, match="alpha"):
        cl.lime(relu6_cnn, x, 0, segments=SEGMENTS, n_samples=10, alpha=-1)


def test_kernel_shap_warns_when_the_fit_is_underdetermined(relu6_cnn, x):
    with pytest.warns(UserWarning, match=r"fewer random coalitions \(3\) than unknowns \(5\)"):
        cl.kernel_shap(relu6_cnn, x[:1], 0, segments=SEGMENTS, n_samples=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.kernel_shap(relu6_cnn, x[:1], 0, segments=SEGMENTS, n_samples=7)


@pytest.mark.parametrize("target", [N_CLASSES, [0, 1, 99]])
def test_target_out_of_range_names_the_number_of_classes(relu6_cnn, x, target):
    with pytest.raises(ValueError, match=rf"the model has {N_CLASSES} classes"):
        cl.lime(relu6_cnn, x, target, segments=SEGMENTS, n_samples=10)


# ------------------------------------------------------------------------- superpixels
def test_superpixels_give_consecutive_ids_near_the_requested_count_per_image():
    images = make_shapes(2, seed=0).images
    segs = cl.superpixels(images, 10)
    assert segs.shape == (len(images), *images.shape[-2:]) and segs.dtype == torch.long
    for s in segs:
        ids = torch.unique(s)
        assert torch.equal(ids, torch.arange(len(ids)))
        assert 4 <= len(ids) <= 20
    assert torch.equal(cl.superpixels(images[0], 10), segs[0])  # a single image gives H x W
    assert torch.equal(cl.superpixels(images, 10), segs)  # deterministic


def test_superpixels_refuse_normalised_images_with_a_hint(make_batch):
    with pytest.raises(ValueError, match=r"expects RGB values in \[0, 1\].*denormalise"):
        cl.superpixels(make_batch(1, 16) * 2 - 1, 8)
    with pytest.raises(ValueError, match="needs RGB images"):
        cl.superpixels(torch.rand(1, 1, 16, 16), 8)


def test_grid_segments_segment_values_and_segment_map_round_trip():
    seg = cl.grid_segments(4, 6, 2, 3)
    assert seg.tolist()[0] == [0, 0, 1, 1, 2, 2] and seg.tolist()[3] == [3, 3, 4, 4, 5, 5]
    values = torch.tensor([[1.0, -2.0, 3.0, 0.5, 0.0, 7.0]])
    maps = cl.segment_map(values, seg)
    assert maps.shape == (1, 4, 6)
    torch.testing.assert_close(cl.segment_values(maps, seg), values)
    with pytest.raises(ValueError, match="cannot cut a 4 x 6 image into 5 x 3 tiles"):
        cl.grid_segments(4, 6, 5, 3)
