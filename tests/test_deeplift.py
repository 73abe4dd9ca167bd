"""DeepLift (rescale rule) and DeepLiftShap: Captum where it is right, the definition where it
is not, batching, no leftovers (no function mode left active either), clear errors.

Tolerances, all in float64:
- ``CAPTUM_ATOL = 1e-10``: DeepLift and DeepLiftShap on models whose activations are all in
  Captum's table (ReLU, ELU, Softplus, Tanh, max pooling), batch norm included.
- ``EXACT_ATOL = 1e-12``: summation-to-delta (sum of attributions = f(x) - f(b)), closed forms,
  batched against one by one.
Captum has no rule for ReLU6 (``nn.ReLU6`` calls ``F.hardtanh``) nor for activations called as
functions: there we test against the definition, and that Captum silently returns
gradient x (input - baseline).
"""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import DeepLift, DeepLiftShap
from torch import nn
from torch.overrides import _get_current_function_mode_stack

import course_lib as cl
from tests.path_method_models import (
    FailInBackward,
    FailOnCall,
    maxpool_model,
    functional_model,
    linear_model,
)

pytestmark = pytest.mark.usefixtures("deterministic")

CAPTUM_ATOL = 1e-10
EXACT_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]
CAPTUM_KINDS = ("relu_inplace", "batchnorm_dropout", "smooth")  # activations in Captum's table


def baseline_like(x: torch.Tensor, seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.rand(x.shape, generator=g, dtype=x.dtype)


def scores(model, inputs, targets):
    with torch.no_grad():
        return model(inputs).gather(1, torch.as_tensor(targets).view(-1, 1))[:, 0]


def captum_deeplift(model, x, b, targets):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns that it sets hooks
        return DeepLift(model).attribute(x.clone().requires_grad_(), b, target=targets).detach()


@pytest.fixture(params=CAPTUM_KINDS)
def captum_cnn(request, make_cnn):
    return make_cnn(request.param)


# ------------------------------------------------------------------- agreement with Captum
def test_deeplift_matches_captum_within_1e_10_where_captum_has_the_rules(captum_cnn, x):
    b = baseline_like(x)
    ours = cl.deeplift(captum_cnn, x, TARGETS, baseline=b)
    ref = captum_deeplift(captum_cnn, x, b, TARGETS)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


def captum_deeplift_nondeterministic(model, x, b, targets):
    # Captum's max-pooling rule calls max_unpool2d, which has no deterministic implementation.
    torch.use_deterministic_algorithms(False)
    try:
        return captum_deeplift(model, x, b, targets)
    finally:
        torch.use_deterministic_algorithms(True)


def test_deeplift_matches_captum_on_max_pooling_and_elu(x):
    model = maxpool_model()
    b = baseline_like(x)
    ours = cl.deeplift(model, x, TARGETS, baseline=b)
    torch.testing.assert_close(ours, captum_deeplift_nondeterministic(model, x, b, TARGETS), atol=CAPTUM_ATOL, rtol=0)


def test_deeplift_is_complete_on_relu_then_max_pooling_where_captum_0_9_is_not(x):
    # Captum 0.9 gives the pooling's gradient to the ReLU before its rule has run (issue #1104).
    model = maxpool_model(adjacent=True)
    b = baseline_like(x)
    gap = scores(model, x, TARGETS) - scores(model, b, TARGETS)
    ours = cl.deeplift(model, x, TARGETS, baseline=b)
    torch.testing.assert_close(ours.flatten(1).sum(1), gap, atol=EXACT_ATOL, rtol=0)
    ref = captum_deeplift_nondeterministic(model, x, b, TARGETS)
    assert (ref.flatten(1).sum(1) - gap).abs().max() > 1e-3


def test_deeplift_shap_matches_captum_within_1e_10(captum_cnn, x):
    refs = torch.rand((4, *x.shape[1:]), generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    ours = cl.deeplift_shap(captum_cnn, x, TARGETS, baselines=refs, batch_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = DeepLiftShap(captum_cnn).attribute(x.clone().requires_grad_(), refs, target=TARGETS).detach()
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


# ------------------------------------------------------------- the definition: ReLU6 etc.
def test_captum_deeplift_on_relu6_is_gradient_times_difference_and_incomplete(relu6_cnn, x):
    b = baseline_like(x)
    ref = captum_deeplift(relu6_cnn, x, b, TARGETS)
    grad_times_diff = cl.vanilla_gradient(relu6_cnn, x, TARGETS) * (x - b)
    torch.testing.assert_close(ref, grad_times_diff, atol=CAPTUM_ATOL, rtol=0)
    gap = ref.flatten(1).sum(1) - (scores(relu6_cnn, x, TARGETS) - scores(relu6_cnn, b, TARGETS))
    assert gap.abs().max() > 1e-3  # the fixture saturates: ReLU6's rescale rule matters


def test_deeplift_is_complete_on_relu6_where_captum_is_not(relu6_cnn, x):
    b = baseline_like(x)
    attr, delta = cl.deeplift(relu6_cnn, x, TARGETS, baseline=b, return_delta=True)
    gap = scores(relu6_cnn, x, TARGETS) - scores(relu6_cnn, b, TARGETS)
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, atol=EXACT_ATOL, rtol=0)
    torch.testing.assert_close(delta, attr.flatten(1).sum(1) - gap, atol=EXACT_ATOL, rtol=0)
    assert not torch.allclose(attr, captum_deeplift(relu6_cnn, x, b, TARGETS))


@pytest.mark.parametrize("kind", ["relu", "relu6", "smooth", "mixed"])
def test_deeplift_is_complete_with_functional_and_inplace_activations(x, kind):
    model = functional_model(kind)
    b = baseline_like(x)
    attr, delta = cl.deeplift(model, x, TARGETS, baseline=b, return_delta=True)
    gap = scores(model, x, TARGETS) - scores(model, b, TARGETS)
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, atol=EXACT_ATOL, rtol=0)
    assert delta.abs().max() < EXACT_ATOL
    # Not an accident of a tiny gap, and not what plain gradients give.
    assert gap.abs().min() > 1e-3
    plain = (cl.vanilla_gradient(model, x, TARGETS) * (x - b)).flatten(1).sum(1)
    assert (plain - gap).abs().max() > 1e-4


def test_deeplift_is_complete_on_every_fixture_model(any_cnn, x):
    b = baseline_like(x)
    attr, delta = cl.deeplift(any_cnn, x, TARGETS, baseline=b, return_delta=True)
    gap = scores(any_cnn, x, TARGETS) - scores(any_cnn, b, TARGETS)
    torch.testing.assert_close(attr.flatten(1).sum(1), gap, atol=EXACT_ATOL, rtol=0)


def test_deeplift_is_complete_on_overlapping_max_pooling(x):
    # A position can win several overlapping windows: its shares must add up, not overwrite.
    model = maxpool_model(adjacent=True, overlapping=True)
    b = baseline_like(x)
    attr, delta = cl.deeplift(model, x, TARGETS, baseline=b, return_delta=True)
    assert delta.abs().max() < EXACT_ATOL


def test_deeplift_rescale_rule_by_hand_on_one_hidden_unit_layer():
    # f(x) = sum_j v_j relu(w_j . x + c_j): the multiplier of unit j is
    # (relu(z_j) - relu(z0_j)) / (z_j - z0_j), so attr_i = (x_i - b_i) sum_j v_j m_j w_ji.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1, bias=False)).double().eval()
    x = torch.randn(2, 4, dtype=torch.float64)
    b = torch.randn(2, 4, dtype=torch.float64)
    w, c, v = model[0].weight, model[0].bias, model[2].weight[0]
    with torch.no_grad():
        z, z0 = x @ w.T + c, b @ w.T + c
        m = (z.relu() - z0.relu()) / (z - z0)
        expected = (x - b) * ((v * m) @ w)
    torch.testing.assert_close(cl.deeplift(model, x, 0, baseline=b), expected, atol=EXACT_ATOL, rtol=0)


def test_deeplift_of_a_linear_model_is_x_minus_baseline_times_w(x):
    model = linear_model()
    b = baseline_like(x)
    w = model[1].weight[TARGETS].view_as(x)
    torch.testing.assert_close(cl.deeplift(model, x, TARGETS, baseline=b), (x - b) * w, atol=EXACT_ATOL, rtol=0)


def test_deeplift_against_the_input_itself_is_zero(relu6_cnn, x):
    assert cl.deeplift(relu6_cnn, x, TARGETS, baseline=x.clone()).abs().max() == 0


def test_deeplift_shap_is_the_mean_of_deeplift_over_the_baselines(relu6_cnn, x):
    refs = torch.rand((3, *x.shape[1:]), generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    mean = sum(cl.deeplift(relu6_cnn, x, TARGETS, baseline=r[None]) for r in refs) / 3
    ours = cl.deeplift_shap(relu6_cnn, x, TARGETS, baselines=refs)
    torch.testing.assert_close(ours, mean, atol=EXACT_ATOL, rtol=0)
    as_list = cl.deeplift_shap(relu6_cnn, x, TARGETS, baselines=[r for r in refs])
    torch.testing.assert_close(as_list, ours, atol=0, rtol=0)


# ------------------------------------------------------------------------------ batching
def test_deeplift_batched_equals_one_by_one(any_cnn, x):
    b = baseline_like(x)
    batched = cl.deeplift(any_cnn, x, TARGETS, baseline=b)
    single = torch.cat([cl.deeplift(any_cnn, x[i : i + 1], t, baseline=b[i : i + 1]) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=EXACT_ATOL, rtol=0)


def test_deeplift_and_deeplift_shap_batch_size_never_changes_the_result(relu6_cnn, x):
    b = baseline_like(x)
    refs = torch.rand((4, *x.shape[1:]), generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    dl = cl.deeplift(relu6_cnn, x, TARGETS, baseline=b, batch_size=None)
    dls = cl.deeplift_shap(relu6_cnn, x, TARGETS, baselines=refs, batch_size=None)
    for batch_size in (1, 2, 5):
        torch.testing.assert_close(cl.deeplift(relu6_cnn, x, TARGETS, baseline=b, batch_size=batch_size),
                                   dl, atol=EXACT_ATOL, rtol=0)
        torch.testing.assert_close(cl.deeplift_shap(relu6_cnn, x, TARGETS, baselines=refs, batch_size=batch_size),
                                   dls, atol=EXACT_ATOL, rtol=0)


def test_deeplift_target_none_explains_the_predicted_class(any_cnn, x):
    with torch.no_grad():
        predicted = any_cnn(x).argmax(1).tolist()
    torch.testing.assert_close(cl.deeplift(any_cnn, x), cl.deeplift(any_cnn, x, predicted), atol=0, rtol=0)
    torch.testing.assert_close(cl.deeplift(any_cnn, x, batch_size=2), cl.deeplift(any_cnn, x, predicted),
                               atol=0, rtol=0)
    refs = torch.zeros((2, *x.shape[1:]), dtype=x.dtype)
    torch.testing.assert_close(cl.deeplift_shap(any_cnn, x, baselines=refs),
                               cl.deeplift_shap(any_cnn, x, predicted, baselines=refs), atol=0, rtol=0)


# ------------------------------------------------------------------- nothing is touched
def _no_mode_active() -> bool:
    return len(_get_current_function_mode_stack()) == 0


def test_deeplift_leaves_no_hook_mode_or_state_after_a_normal_run(any_cnn, x, no_leftovers):
    check = no_leftovers(any_cnn)
    cl.deeplift(any_cnn, x, TARGETS, baseline=baseline_like(x), return_delta=True)
    cl.deeplift_shap(any_cnn, x, TARGETS, baselines=baseline_like(x)[:2])
    check()
    assert _no_mode_active()
    # ReLU6 answers with its plain gradient again: nothing of the rescale rule stayed on.
    torch.testing.assert_close(cl.vanilla_gradient(any_cnn, x, TARGETS),
                               torch.autograd.functional.jacobian(lambda v: any_cnn(v)[range(3), TARGETS].sum(), x),
                               atol=EXACT_ATOL, rtol=0)


@pytest.mark.parametrize("fn", ["deeplift", "deeplift_shap"])
def test_deeplift_leaves_no_hook_mode_or_state_after_the_forward_raises(relu_inplace_cnn, x, no_leftovers, fn):
    model = FailOnCall(relu_inplace_cnn, 1).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="forward failed on call 1"):
        if fn == "deeplift":
            cl.deeplift(model, x, TARGETS)
        else:
            cl.deeplift_shap(model, x, TARGETS, baselines=x[:2])
    check()
    assert _no_mode_active()


def test_deeplift_leaves_no_hook_mode_or_state_after_the_backward_raises(relu_inplace_cnn, x, no_leftovers):
    model = nn.Sequential(relu_inplace_cnn[:2], FailInBackward(), relu_inplace_cnn[2:]).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="backward failed"):
        cl.deeplift(model, x, TARGETS)
    check()
    assert _no_mode_active()


def test_deeplift_leaves_the_callers_input_untouched(relu_inplace_cnn, x):
    x = x.clone().requires_grad_(True)
    before = x.detach().clone()
    cl.deeplift(relu_inplace_cnn, x, TARGETS)
    assert torch.equal(x.detach(), before) and x.grad is None and x.requires_grad


@pytest.mark.filterwarnings("ignore:DeepLift is not complete")  # dropout differs between input and baseline rows
def test_deeplift_in_training_mode_warns_and_leaves_batch_norm_statistics(bn_dropout_cnn, x, no_leftovers):
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match="training mode"):
        cl.deeplift(bn_dropout_cnn, x, TARGETS)
    check()


# ------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("target", [N_CLASSES, [0, 1, 99]])
def test_deeplift_target_out_of_range_names_the_number_of_classes(relu6_cnn, x, target, no_leftovers):
    check = no_leftovers(relu6_cnn)
    with pytest.raises(ValueError, match=rf"out of range: the model has {N_CLASSES} classes"):
        cl.deeplift(relu6_cnn, x, target)
    with pytest.raises(ValueError, match=rf"out of range: the model has {N_CLASSES} classes"):
        cl.deeplift_shap(relu6_cnn, x, target, baselines=x[:2])
    check()
    assert _no_mode_active()


def test_deeplift_target_list_of_the_wrong_length_says_both_lengths(relu6_cnn, x):
    with pytest.raises(ValueError, match="target has 2 entries but the batch has 3 examples"):
        cl.deeplift(relu6_cnn, x, [0, 1], batch_size=1)
    with pytest.raises(ValueError, match="target has 2 entries but the batch has 3 examples"):
        cl.deeplift_shap(relu6_cnn, x, [0, 1], baselines=x[:2])


def test_deeplift_baseline_of_the_wrong_shape_is_rejected(relu6_cnn, x):
    with pytest.raises(ValueError, match="baseline must have the inputs' shape"):
        cl.deeplift(relu6_cnn, x, TARGETS, baseline=torch.zeros(2, 3, 8, 8, dtype=x.dtype))
    with pytest.raises(ValueError, match=r"baselines must be K x 3 x 8 x 8"):
        cl.deeplift_shap(relu6_cnn, x, TARGETS, baselines=torch.zeros(2, 3, 4, 4, dtype=x.dtype))


def test_deeplift_warns_at_the_callers_line_about_activations_off_the_batch(x):
    class Gated(nn.Module):
        """A gate computed from a parameter (no batch), and examples moved into the channels."""

        def __init__(self):
            super().__init__()
            self.gate = nn.Parameter(torch.tensor([0.3, -0.2], dtype=torch.float64))

        def forward(self, v):
            h = F.relu(v.reshape(1, -1, *v.shape[2:])).reshape(v.shape[0], -1)[:, :N_CLASSES]
            return h * torch.sigmoid(self.gate).sum()

    with pytest.warns(UserWarning, match=r"plain gradient of 2 activation call\(s\).*6 rows.*return_delta") as record:
        cl.deeplift(Gated().eval(), x, TARGETS)
    assert all(w.filename == __file__ for w in record)
    assert _no_mode_active()


def test_deeplift_gives_no_warning_on_an_ordinary_model(any_cnn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.deeplift(any_cnn, x, TARGETS, baseline=baseline_like(x))
        cl.deeplift_shap(any_cnn, x, TARGETS, baselines=baseline_like(x)[:2])


class _Maximum(nn.Module):
    """max(v1, v2) + v3 through torch.maximum, for which DeepLift has no rule: N x 3 -> N x 1."""

    def forward(self, v):
        return torch.maximum(v[:, :1], v[:, 1:2]) + v[:, 2:]


class _Clamp(nn.Module):
    """clamp(v, 0, 6) summed (Tensor.clamp, not an activation function): N x 2 -> N x 1."""

    def forward(self, v):
        return v.clamp(0, 6).sum(dim=1, keepdim=True)


@pytest.mark.parametrize("model, point, baseline, gap", [
    (_Maximum(), [[3.0, 1.0, 2.0]], [[0.0, 2.0, 0.0]], 2.0),  # sums to 5 where f(x) - f(b) = 3
    (_Clamp(), [[8.0, -1.0]], [[1.0, 1.0]], -4.0),  # sums to 0 where f(x) - f(b) = 4
])
def test_deeplift_warns_at_the_callers_line_when_an_operation_without_a_rule_breaks_completeness(
        model, point, baseline, gap):
    x, b = torch.tensor(point, dtype=torch.float64), torch.tensor(baseline, dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"not complete on 1 of 1 examples.*no rule") as record:
        _, delta = cl.deeplift(model.eval(), x, 0, baseline=b, return_delta=True)
    assert float(delta) == pytest.approx(gap)
    assert all(w.filename == __file__ for w in record)
    with pytest.warns(UserWarning, match=r"not complete on 1 of 2 \(input, baseline\) pairs"):
        cl.deeplift_shap(model.eval(), x, 0, baselines=torch.cat([b, x]))
    assert _no_mode_active()


def test_deeplift_does_not_warn_where_the_gap_is_rounding_or_the_change_is_zero(relu6_cnn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.deeplift(relu6_cnn.float(), x.float(), TARGETS, baseline=baseline_like(x).float())
        cl.deeplift(_Maximum().eval(), torch.tensor([[3.0, 1.0, 2.0]]), 0)  # baseline 0: max's gradient is exact
        cl.deeplift(relu6_cnn.double(), x, TARGETS, baseline=x.clone())


def test_deeplift_is_complete_with_functional_and_adaptive_max_pooling(x):
    class Pools(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 6, 3, padding=1)
            self.fc = nn.Linear(24, N_CLASSES)

        def forward(self, v):
            h = F.max_pool2d(F.relu(self.conv(v)), 2, 2, 0, 1, False)  # positional, as some code writes it
            return self.fc(F.adaptive_max_pool2d(h, 2).flatten(1))

    torch.manual_seed(0)
    model = Pools().double().eval()
    attr, delta = cl.deeplift(model, x, TARGETS, baseline=baseline_like(x), return_delta=True)
    assert delta.abs().max() < EXACT_ATOL and attr.abs().max() > 0
