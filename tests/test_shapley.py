"""Exact Shapley values over segments and permutation sampling: the axioms on games solved by
hand, agreement with Captum, convergence with honest standard errors, cost, leftovers, errors.

Tolerances (float64 models and inputs):
- ``AXIOM_ATOL = 1e-10``: efficiency, symmetry, null player and the hand-computed values.
- ``CAPTUM_RTOL = 1e-6`` of the largest |value|: Captum's ``ShapleyValues`` (every order of
  arrival) and ``ShapleyValueSampling`` return float32 maps. Measured: at most 1.3e-7 for
  ShapleyValueSampling; ShapleyValues accumulates M! float32 terms (8e-7 here with five
  segments, 5e-6 with six), so it is held to ``CAPTUM_ALL_ORDERS_RTOL = 2e-5``.
"""
from __future__ import annotations

import math

import pytest
import torch
from captum.attr import ShapleyValues, ShapleyValueSampling

import course_lib as cl
from tests.perturbation_games import GAMES, CountPasses, FailOnCall, GameModel, ones_image, tiles

pytestmark = pytest.mark.usefixtures("deterministic")

AXIOM_ATOL = 1e-10
CAPTUM_RTOL = 1e-6
CAPTUM_ALL_ORDERS_RTOL = 2e-5
N_CLASSES = 5
TARGETS = [0, 3, 1]
SEGMENTS = cl.grid_segments(8, 8, 2, 3)
SMALL_SEGMENTS = cl.grid_segments(8, 8, 1, 5)  # five segments: 120 orders for Captum's ShapleyValues


def values(maps, segments=SEGMENTS):
    return cl.segment_values(maps, segments)


def mask_for_captum(segments, x):
    return segments[None, None].expand(1, x.shape[1], *segments.shape).contiguous()


# --------------------------------------------------------------- the axioms, by hand
@pytest.mark.parametrize("game", list(GAMES))
def test_exact_shapley_gives_the_hand_computed_values(game):
    fn, expected = GAMES[game]
    phi = values(cl.exact_shapley(GameModel(fn).eval(), ones_image(), 0, segments=tiles()), tiles())[0]
    torch.testing.assert_close(phi, torch.tensor(expected, dtype=torch.float64), atol=AXIOM_ATOL, rtol=0)


def test_exact_shapley_symmetry_and_null_player_on_an_and_game():
    # Tiles 0 and 1 are interchangeable (symmetry: equal values); tiles 2-5 never change the
    # score (null players: zero); for class 1 (score -g) every value flips sign.
    model = GameModel(GAMES["and"][0]).eval()
    phi = values(cl.exact_shapley(model, ones_image(2), [0, 1], segments=tiles()), tiles())
    assert abs(float(phi[0, 0] - phi[0, 1])) < AXIOM_ATOL and float(phi[0, 0]) > 1
    assert phi[:, 2:].abs().max() < AXIOM_ATOL
    torch.testing.assert_close(phi[1], -phi[0], atol=AXIOM_ATOL, rtol=0)


def test_exact_shapley_efficiency_values_sum_to_f_x_minus_f_baseline(any_cnn, x):
    for fill in ("zero", "blur"):
        phi = values(cl.exact_shapley(any_cnn, x, TARGETS, segments=SEGMENTS, baseline=fill))
        with torch.no_grad():
            gap = any_cnn(x)[range(3), TARGETS] - any_cnn(cl.make_baseline(x, fill))[range(3), TARGETS]
        assert gap.abs().min() > 1e-4
        torch.testing.assert_close(phi.sum(dim=1), gap, atol=AXIOM_ATOL, rtol=0)


def test_exact_shapley_is_linear_in_the_game():
    # phi(v + 2 w) = phi(v) + 2 phi(w): the OR game plus twice the mixed game.
    g_or, g_mixed = GAMES["or"][0], GAMES["mixed"][0]
    combined = GameModel(lambda p: g_or(p) + 2 * g_mixed(p)).eval()
    phi = values(cl.exact_shapley(combined, ones_image(), 0, segments=tiles()), tiles())[0]
    expected = torch.tensor(GAMES["or"][1], dtype=torch.float64) + 2 * torch.tensor(GAMES["mixed"][1], dtype=torch.float64)
    torch.testing.assert_close(phi, expected, atol=AXIOM_ATOL, rtol=0)


def test_shapley_from_values_on_a_three_player_game_solved_on_paper():
    # v(S) for S coded by bits (player 0 = bit 0): v = 0, 1, 2, 4, 3, 4, 5, 9
    # phi_0 = 1/3 (1) + 1/6 (4-2) + 1/6 (4-3) + 1/3 (9-5) = 1/3 + 1/3 + 1/6 + 4/3 = 13/6
    v = torch.tensor([0.0, 1.0, 2.0, 4.0, 3.0, 4.0, 5.0, 9.0])
    phi = cl.shapley_from_values(v)
    assert abs(float(phi[0]) - 13 / 6) < 1e-12
    assert abs(float(phi.sum()) - 9.0) < 1e-12
    with pytest.raises(ValueError, match="all 2\\^M coalitions, got 6 values"):
        cl.shapley_from_values(torch.zeros(6))


# ------------------------------------------------------------------- agreement with Captum
def test_exact_shapley_matches_captum_shapley_values_over_all_orders(any_cnn, x):
    for i, t in enumerate(TARGETS):
        xi = x[i : i + 1]
        ours = cl.exact_shapley(any_cnn, xi, t, segments=SMALL_SEGMENTS, baseline="mean")
        ref = ShapleyValues(any_cnn).attribute(
            xi, baselines=cl.make_baseline(xi, "mean"), target=t, feature_mask=mask_for_captum(SMALL_SEGMENTS, xi),
            perturbations_per_eval=8,
        )
        assert ref.abs().max() > 0
        assert (ours - ref).abs().max() <= CAPTUM_ALL_ORDERS_RTOL * ref.abs().max()


def test_permutation_shapley_matches_captum_shapley_value_sampling_given_the_same_orders(any_cnn, x):
    for i, t in enumerate(TARGETS):
        xi = x[i : i + 1]
        ours = cl.permutation_shapley(any_cnn, xi, t, segments=SEGMENTS, n_permutations=9, seed=20 + i, baseline="blur")
        torch.manual_seed(20 + i)
        ref = ShapleyValueSampling(any_cnn).attribute(
            xi, baselines=cl.make_baseline(xi, "blur"), target=t, feature_mask=mask_for_captum(SEGMENTS, xi),
            n_samples=9, perturbations_per_eval=8,
        )
        assert ref.abs().max() > 0
        assert (ours - ref).abs().max() <= CAPTUM_RTOL * ref.abs().max()


def test_captum_sampling_comparison_fails_with_other_orders(smooth_cnn, x):
    xi = x[:1]
    ours = cl.permutation_shapley(smooth_cnn, xi, 0, segments=SEGMENTS, n_permutations=3, seed=1)
    torch.manual_seed(2)
    ref = ShapleyValueSampling(smooth_cnn).attribute(xi, target=0, feature_mask=mask_for_captum(SEGMENTS, xi), n_samples=3)
    assert (ours - ref).abs().max() > 1e-3 * ref.abs().max()


# ---------------------------------------------------------- sampling: unbiased, honest errors
def test_permutation_shapley_is_exact_with_zero_error_on_an_additive_game():
    # Every order gives every tile the same marginal contribution.
    model = GameModel(GAMES["additive"][0]).eval()
    phi, se = cl.permutation_shapley(model, ones_image(), 0, segments=tiles(), n_permutations=5, return_stderr=True)
    torch.testing.assert_close(values(phi, tiles())[0], torch.tensor(GAMES["additive"][1], dtype=torch.float64), atol=AXIOM_ATOL, rtol=0)
    assert se.abs().max() < AXIOM_ATOL


def test_permutation_shapley_efficiency_holds_for_every_sample_size(any_cnn, x):
    with torch.no_grad():
        gap = any_cnn(x)[range(3), TARGETS] - any_cnn(torch.zeros_like(x))[range(3), TARGETS]
    for n in (1, 4):
        phi = values(cl.permutation_shapley(any_cnn, x, TARGETS, segments=SEGMENTS, n_permutations=n))
        torch.testing.assert_close(phi.sum(dim=1), gap, atol=AXIOM_ATOL, rtol=0)


def test_permutation_shapley_converges_and_its_standard_errors_are_honest(smooth_cnn, x):
    # The estimate's error against the exact values must shrink like 1 / sqrt(n), and the
    # reported standard errors must describe it: most |error| / stderr below 3.
    xi = x[2:3]
    exact = values(cl.exact_shapley(smooth_cnn, xi, 4, segments=SEGMENTS))[0]
    errors, z_scores = [], []
    for n in (4, 16, 64, 256):
        per_seed = []
        for seed in range(5):
            est, se = cl.permutation_shapley(smooth_cnn, xi, 4, segments=SEGMENTS, n_permutations=n, seed=seed,
                                             return_stderr=True)
            est, se = values(est)[0], values(se)[0]
            per_seed.append(float((est - exact).norm() / exact.norm()))
            if n >= 16:  # with fewer orders the standard error itself is too noisy to judge
                z_scores.append((est - exact) / se)
        errors.append(sum(per_seed) / len(per_seed))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert errors[-1] < errors[0] / 4, errors  # 1 / sqrt(n) predicts a factor of 8
    z = torch.cat(z_scores)
    assert float((z.abs() < 3).double().mean()) >= 0.9, z


def test_permutation_shapley_standard_error_is_nan_with_one_order(relu6_cnn, x):
    _, se = cl.permutation_shapley(relu6_cnn, x[:1], 0, segments=SEGMENTS, n_permutations=1, return_stderr=True)
    assert torch.isnan(se).all()


# --------------------------------------------------------------------------- cost, batching
def test_exact_shapley_costs_two_to_the_m_passes_and_permutations_2_plus_n_m_minus_1(relu6_cnn, x):
    counted = CountPasses(relu6_cnn).eval()
    cl.exact_shapley(counted, x, TARGETS, segments=SEGMENTS, batch_size=20)
    assert counted.images == 3 + 3 * 2**6
    counted.images = 0
    cl.permutation_shapley(counted, x, TARGETS, segments=SEGMENTS, n_permutations=7, batch_size=20)
    assert counted.images == 3 + 3 * (2 + 7 * 5)


@pytest.mark.parametrize("method", ["exact_shapley", "permutation_shapley"])
def test_batched_equals_one_by_one_and_batch_size_does_not_matter(any_cnn, x, method):
    fn = getattr(cl, method)
    kw = {} if method == "exact_shapley" else {"n_permutations": 6, "seed": 3}
    segs = torch.stack([SEGMENTS, cl.grid_segments(8, 8, 2, 2), SMALL_SEGMENTS])
    batched = fn(any_cnn, x, TARGETS, segments=segs, batch_size=None, **kw)
    single = torch.cat([fn(any_cnn, x[i : i + 1], t, segments=segs[i], batch_size=7, **kw) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=1e-12, rtol=0)


def test_permutation_shapley_same_seed_same_values_global_rng_untouched(smooth_cnn, x):
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    a = cl.permutation_shapley(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_permutations=4, seed=8)
    assert torch.equal(torch.rand(2), expected)
    assert torch.equal(a, cl.permutation_shapley(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_permutations=4, seed=8))
    assert not torch.allclose(a, cl.permutation_shapley(smooth_cnn, x, TARGETS, segments=SEGMENTS, n_permutations=4, seed=9))


def test_all_coalitions_are_indexed_by_their_bits():
    z = cl.all_coalitions(3)
    assert z.shape == (8, 3)
    assert z[5].tolist() == [True, False, True]  # 5 = 0b101: segments 0 and 2
    assert len({tuple(r) for r in z.tolist()}) == 8


# ------------------------------------------------------------------- nothing is touched
@pytest.mark.parametrize("method", ["exact_shapley", "permutation_shapley"])
def test_no_hook_or_state_left_after_a_normal_run_or_a_failing_forward(any_cnn, x, no_leftovers, method):
    fn = getattr(cl, method)
    kw = {} if method == "exact_shapley" else {"n_permutations": 3}
    check = no_leftovers(any_cnn)
    fn(any_cnn, x, TARGETS, segments=SEGMENTS, batch_size=16, **kw)
    check()
    failing = FailOnCall(any_cnn, fail_on=3).eval()
    check = no_leftovers(failing)
    with pytest.raises(RuntimeError, match="forward failed on call 3"):
        fn(failing, x, TARGETS, segments=SEGMENTS, batch_size=16, **kw)
    check()


def test_training_mode_warns_and_keeps_batchnorm_statistics(bn_dropout_cnn, x, no_leftovers):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match="training mode"):
        cl.exact_shapley(bn_dropout_cnn, x, TARGETS, segments=SMALL_SEGMENTS)
    check()


# ------------------------------------------------------------------------- clear errors
def test_exact_shapley_beyond_the_limit_says_how_many_passes_it_would_take(relu6_cnn, x):
    counted = CountPasses(relu6_cnn).eval()
    thirteen = cl.grid_segments(8, 8, 1, 8).clone()
    thirteen[4:, :5] += 8  # 8 + 5 = 13 segments
    with pytest.raises(ValueError, match=r"13 segments would take 8,192 forward passes per image.*kernel_shap or permutation_shapley"):
        cl.exact_shapley(counted, x, TARGETS, segments=thirteen)
    assert counted.images <= len(x)  # refused before any coalition was scored
    out = cl.exact_shapley(relu6_cnn, x[:1], 0, segments=cl.grid_segments(8, 8, 2, 2), max_segments=4)
    assert out.shape == x[:1].shape


def test_bad_arguments_are_refused(relu6_cnn, x):
    with pytest.raises(ValueError, match="n_permutations must be an int >= 1, got 0"):
        cl.permutation_shapley(relu6_cnn, x, 0, segments=SEGMENTS, n_permutations=0)
    with pytest.raises(ValueError, match=r"segments must be H x W or N x H x W matching the inputs"):
        cl.exact_shapley(relu6_cnn, x, 0, segments=torch.zeros(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"4 dimensions.*unsqueeze"):
        cl.exact_shapley(relu6_cnn, x[0], 0, segments=SEGMENTS)
    with pytest.raises(ValueError, match=f"the model has {N_CLASSES} classes"):
        cl.permutation_shapley(relu6_cnn, x, 7, segments=SEGMENTS, n_permutations=2)


def test_shapley_weights_of_all_sizes_sum_to_one():
    # The weights |S|! (M-|S|-1)! / M! over all S without k sum to 1 (an average of contributions).
    m = 7
    total = sum(math.comb(m - 1, s) * math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m))
    assert abs(total - 1) < 1e-12
    const = torch.full((2**m,), 3.0)
    const[0] = 0.0  # v = 3 for every non-empty coalition: a symmetric game, 3/7 each
    torch.testing.assert_close(cl.shapley_from_values(const), torch.full((m,), 3 / 7, dtype=torch.float64))


def test_coalition_values_are_the_scores_exact_shapley_uses_and_respect_the_limit(relu6_cnn, x):
    segs = torch.stack([SEGMENTS, cl.grid_segments(8, 8, 2, 2), SMALL_SEGMENTS])
    tables = cl.coalition_values(relu6_cnn, x, TARGETS, segments=segs, baseline="mean")
    assert [len(t) for t in tables] == [2**6, 2**4, 2**5]
    with torch.no_grad():
        assert abs(float(tables[1][-1] - relu6_cnn(x[1:2])[0, TARGETS[1]])) < 1e-12  # the image itself
        assert abs(float(tables[1][0] - relu6_cnn(cl.make_baseline(x, "mean")[1:2])[0, TARGETS[1]])) < 1e-12
    exact = values(cl.exact_shapley(relu6_cnn, x, TARGETS, segments=segs, baseline="mean"), segs)
    for i, table in enumerate(tables):
        m = len(table).bit_length() - 1
        torch.testing.assert_close(cl.shapley_from_values(table), exact[i, :m], atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="6 segments would take 64 forward passes"):
        cl.coalition_values(relu6_cnn, x, TARGETS, segments=SEGMENTS, max_segments=5)
