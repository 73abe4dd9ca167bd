"""The gradient saliency family: agreement with Captum, batching, no leftovers, clear errors.

Tolerances, all in float64:
- ``CAPTUM_ATOL = 1e-10``: vanilla gradients, gradient x input, and the noise tunnel methods
  when the noise standard deviation is a power of two (then Captum's float32 noise and ours
  are bit for bit the same, see ``batch_of`` in conftest.py).
- ``CAPTUM_FLOAT32_NOISE_RTOL = 1e-6`` of the map's largest value, for any other noise level:
  Captum rounds its noise to float32 after scaling, we scale in float64.
- ``BATCH_ATOL = 1e-12``: batched against one by one (only the summation order may differ).
"""
from __future__ import annotations

import warnings

import pytest
import torch
from captum.attr import InputXGradient, NoiseTunnel, Saliency
from torch import nn

import course_lib as cl

pytestmark = pytest.mark.usefixtures("deterministic")

CAPTUM_ATOL = 1e-10
CAPTUM_FLOAT32_NOISE_RTOL = 1e-6
BATCH_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]  # one per example of the 3-example batch

# Six samples in chunks of four: the last chunk is a partial one.
NT = dict(n_samples=6, noise_level=0.25, batch_size=4, seed=3)

METHODS = {
    "vanilla_gradient": (cl.vanilla_gradient, {}),
    "vanilla_gradient_max_abs": (cl.vanilla_gradient, {"reduce": "max_abs"}),
    "gradient_x_input": (cl.gradient_x_input, {}),
    "smoothgrad": (cl.smoothgrad, NT),
    "smoothgrad_x_input": (cl.smoothgrad, {**NT, "multiply_by_inputs": True}),
    "smoothgrad_squared": (cl.smoothgrad_squared, NT),
    "vargrad": (cl.vargrad, NT),
}
NOISY = ("smoothgrad", "smoothgrad_x_input", "smoothgrad_squared", "vargrad")
NT_FUNCTIONS = {"smoothgrad": cl.smoothgrad, "smoothgrad_sq": cl.smoothgrad_squared, "vargrad": cl.vargrad}


@pytest.fixture(params=list(METHODS))
def method(request):
    """(name, call) where call(model, inputs, target) runs the method with its test options."""
    fn, kwargs = METHODS[request.param]
    return request.param, lambda model, inputs, target=None, **kw: fn(model, inputs, target, **{**kwargs, **kw})


def captum_noise_tunnel(model, x, targets, nt_type, multiply_by_inputs, *, n_samples,
                        noise_level, batch_size, seed):
    """Captum's NoiseTunnel set up to draw our noise: one example per call, seeded globally."""
    out = []
    for i, t in enumerate(targets):
        xi = x[i : i + 1].clone()
        torch.manual_seed(seed)
        if multiply_by_inputs:
            nt, extra = NoiseTunnel(InputXGradient(model)), {}
        else:
            nt, extra = NoiseTunnel(Saliency(model)), {"abs": False}
        out.append(
            nt.attribute(
                xi, nt_type=nt_type, nt_samples=n_samples, nt_samples_batch_size=batch_size,
                stdevs=float(cl.noise_stdev(xi, noise_level)), target=t, **extra,
            )
        )
    return torch.cat(out)


# ------------------------------------------------------------------- agreement with Captum
def test_vanilla_gradient_matches_captum_saliency_within_1e_10(any_cnn, x):
    ours = cl.vanilla_gradient(any_cnn, x, TARGETS)
    ref = Saliency(any_cnn).attribute(x.clone().requires_grad_(), target=TARGETS, abs=False)
    assert ours.shape == x.shape
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


def test_vanilla_gradient_max_abs_matches_captum_abs_saliency_max_over_channels_within_1e_10(any_cnn, x):
    ours = cl.vanilla_gradient(any_cnn, x, TARGETS, reduce="max_abs")
    ref = Saliency(any_cnn).attribute(x.clone().requires_grad_(), target=TARGETS, abs=True).amax(dim=1)
    assert ours.shape == (x.shape[0], *x.shape[2:])
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


def test_gradient_x_input_matches_captum_input_x_gradient_within_1e_10(any_cnn, x):
    ours = cl.gradient_x_input(any_cnn, x, TARGETS)
    ref = InputXGradient(any_cnn).attribute(x.clone().requires_grad_(), target=TARGETS)
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


@pytest.mark.parametrize("multiply_by_inputs", [False, True], ids=["saliency", "input_x_gradient"])
@pytest.mark.parametrize("nt_type", list(NT_FUNCTIONS))
def test_smoothgrad_family_matches_captum_noise_tunnel_within_1e_10(any_cnn, x, nt_type, multiply_by_inputs):
    ours = NT_FUNCTIONS[nt_type](any_cnn, x, TARGETS, multiply_by_inputs=multiply_by_inputs, **NT)
    assert float(cl.noise_stdev(x, NT["noise_level"])[0]) == 0.25  # exact: see conftest.batch_of
    ref = captum_noise_tunnel(any_cnn, x, TARGETS, nt_type, multiply_by_inputs, **NT)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=CAPTUM_ATOL, rtol=0)


@pytest.mark.parametrize("nt_type", list(NT_FUNCTIONS))
def test_captum_comparison_fails_with_other_noise(smooth_cnn, x, nt_type):
    # The agreement above is not an accident of the model: with another seed it is gone.
    ours = NT_FUNCTIONS[nt_type](smooth_cnn, x, TARGETS, **NT)
    ref = captum_noise_tunnel(smooth_cnn, x, TARGETS, nt_type, False, **{**NT, "seed": NT["seed"] + 1})
    assert (ours - ref).abs().max() > 1e-3 * ref.abs().max()


@pytest.mark.parametrize("multiply_by_inputs", [False, True], ids=["saliency", "input_x_gradient"])
@pytest.mark.parametrize("nt_type", list(NT_FUNCTIONS))
def test_smoothgrad_family_matches_captum_at_any_noise_level_within_1e_6_relative(
    smooth_cnn, x, nt_type, multiply_by_inputs
):
    opts = {**NT, "noise_level": 0.15}
    ours = NT_FUNCTIONS[nt_type](smooth_cnn, x, TARGETS, multiply_by_inputs=multiply_by_inputs, **opts)
    ref = captum_noise_tunnel(smooth_cnn, x, TARGETS, nt_type, multiply_by_inputs, **opts)
    assert (ours - ref).abs().max() <= CAPTUM_FLOAT32_NOISE_RTOL * ref.abs().max()


def test_relu6_fixture_saturates_so_the_captum_checks_cover_the_clip(relu6_cnn, x):
    with torch.no_grad():
        pre = relu6_cnn[0](x)
    assert (pre > 6).any() and (pre < 0).any() and ((pre > 0) & (pre < 6)).any()


# ------------------------------------------------------------------------------ batching
def test_batched_equals_one_by_one(any_cnn, x, method):
    _, run = method
    batched = run(any_cnn, x, TARGETS)
    single = torch.cat([run(any_cnn, x[i : i + 1], t) for i, t in enumerate(TARGETS)])
    torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


@pytest.mark.parametrize("size", [8, 5], ids=["3x8x8", "3x5x5"])
@pytest.mark.parametrize("fn", list(NT_FUNCTIONS.values()), ids=list(NT_FUNCTIONS))
def test_smoothgrad_batch_size_does_not_change_the_result(smooth_cnn, make_batch, fn, size):
    # 3 x 5 x 5 = 75 values per example: torch draws normals in blocks of 16, so noise drawn in
    # chunks of copies would change with the chunk size for this shape.
    x = make_batch(2, size)
    opts = dict(n_samples=7, noise_level=0.2, seed=5)
    reference = fn(smooth_cnn, x, [1, 4], batch_size=7, **opts)
    for batch_size in (1, 3, 4, None):
        torch.testing.assert_close(
            fn(smooth_cnn, x, [1, 4], batch_size=batch_size, **opts), reference, atol=BATCH_ATOL, rtol=0
        )


def test_smoothgrad_same_seed_same_map_other_seed_other_map(smooth_cnn, x):
    a = cl.smoothgrad(smooth_cnn, x, TARGETS, **NT)
    assert torch.equal(a, cl.smoothgrad(smooth_cnn, x, TARGETS, **NT))
    assert not torch.allclose(a, cl.smoothgrad(smooth_cnn, x, TARGETS, **{**NT, "seed": 4}))


def test_smoothgrad_does_not_touch_the_global_random_state(smooth_cnn, x):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    cl.smoothgrad(smooth_cnn, x, TARGETS, **NT)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------- nothing is touched
@pytest.mark.parametrize("requires_grad", [False, True])
def test_callers_input_is_untouched(relu_inplace_cnn, x, method, requires_grad):
    _, run = method
    x = x.clone().requires_grad_(requires_grad)
    old_grad = None
    if requires_grad:
        old_grad = torch.full_like(x, 7.0)
        x.grad = old_grad.clone()
    before = x.detach().clone()
    run(relu_inplace_cnn, x, TARGETS)
    assert torch.equal(x.detach(), before), "the input's values changed"
    assert x.requires_grad == requires_grad
    if requires_grad:
        assert torch.equal(x.grad, old_grad), "the input's .grad changed"
    else:
        assert x.grad is None


def test_no_hook_or_state_left_after_a_normal_run(any_cnn, x, method, no_leftovers):
    _, run = method
    check = no_leftovers(any_cnn)
    run(any_cnn, x, TARGETS)
    check()


class FailOnCall(nn.Module):
    """Wraps a model; its forward raises on call number ``fail_on``."""

    def __init__(self, inner: nn.Module, fail_on: int) -> None:
        super().__init__()
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError(f"forward failed on call {self.calls}")
        return self.inner(x)


class _FailingBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward failed")


class FailInBackward(nn.Module):
    def forward(self, x):
        return _FailingBackward.apply(x)


def test_no_hook_or_state_left_after_the_forward_raises(relu_inplace_cnn, x, method, no_leftovers):
    name, run = method
    # Noise-tunnel methods: call 1 fixes the target on the clean input, call 2 is a noisy chunk.
    fail_on = 2 if name in NOISY else 1
    model = FailOnCall(relu_inplace_cnn, fail_on).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match=f"forward failed on call {fail_on}"):
        run(model, x, TARGETS)
    check()


def test_no_hook_or_state_left_after_the_backward_raises(relu_inplace_cnn, x, method, no_leftovers):
    _, run = method
    model = nn.Sequential(relu_inplace_cnn[:2], FailInBackward(), relu_inplace_cnn[2:]).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="backward failed"):
        run(model, x, TARGETS)
    check()


def test_no_hook_or_state_left_after_a_target_out_of_range(relu6_cnn, x, method, no_leftovers):
    # The number of classes is only known after the forward pass.
    _, run = method
    check = no_leftovers(relu6_cnn)
    with pytest.raises(ValueError, match=f"{N_CLASSES} classes"):
        run(relu6_cnn, x, N_CLASSES)
    check()


# ------------------------------------------------------------------- clear errors, warnings
def test_3d_input_is_rejected_with_a_hint_to_unsqueeze(relu_inplace_cnn, x, method):
    _, run = method
    with pytest.raises(ValueError, match=r"4 dimensions.*unsqueeze\(0\)"):
        run(relu_inplace_cnn, x[0], 0)


def test_integer_input_is_rejected_asking_for_floats(relu_inplace_cnn, x, method):
    _, run = method
    with pytest.raises(TypeError, match=r"floating-point.*\.float\(\)"):
        run(relu_inplace_cnn, (x * 255).to(torch.uint8), 0)


@pytest.mark.parametrize("target", [N_CLASSES, -1, [0, 1, 99]])
def test_target_out_of_range_names_the_number_of_classes(relu_inplace_cnn, x, method, target):
    _, run = method
    with pytest.raises(ValueError, match=rf"out of range: the model has {N_CLASSES} classes \(0 to 4\)"):
        run(relu_inplace_cnn, x, target)


def test_target_list_of_the_wrong_length_says_both_lengths(relu_inplace_cnn, x, method):
    _, run = method
    with pytest.raises(ValueError, match="target has 2 entries but the batch has 3 examples"):
        run(relu_inplace_cnn, x, [0, 1])


@pytest.mark.parametrize("fn", [cl.vanilla_gradient, cl.gradient_x_input, cl.smoothgrad, cl.vargrad])
def test_unknown_channel_reduction_lists_the_known_ones(relu_inplace_cnn, x, fn):
    with pytest.raises(ValueError, match="unknown channel reduction 'mean'; choose one of max_abs, sum_abs, signed"):
        fn(relu_inplace_cnn, x, TARGETS, reduce="mean")


@pytest.mark.parametrize("n_samples", [0, -3])
@pytest.mark.parametrize("fn", list(NT_FUNCTIONS.values()), ids=list(NT_FUNCTIONS))
def test_n_samples_not_positive_is_rejected(relu_inplace_cnn, x, fn, n_samples):
    with pytest.raises(ValueError, match=f"n_samples must be a positive int, got {n_samples}"):
        fn(relu_inplace_cnn, x, TARGETS, n_samples=n_samples)


def test_negative_noise_level_is_rejected(relu_inplace_cnn, x):
    with pytest.raises(ValueError, match="noise_level must be >= 0"):
        cl.smoothgrad(relu_inplace_cnn, x, TARGETS, noise_level=-0.1)


def test_model_in_training_mode_warns_to_call_eval_at_the_callers_line(bn_dropout_cnn, x, method, no_leftovers):
    _, run = method
    bn_dropout_cnn.train()
    check = no_leftovers(bn_dropout_cnn)
    with pytest.warns(UserWarning, match=r"training mode.*Call model\.eval\(\)") as record:
        run(bn_dropout_cnn, x, TARGETS)
    # Pointing at the caller's line keeps the warning visible in every notebook cell.
    assert all(w.filename == __file__ for w in record if "training mode" in str(w.message))
    check()  # still in training mode, batch-norm running statistics unchanged


def test_model_in_eval_mode_gives_no_warning(bn_dropout_cnn, x, method):
    _, run = method
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run(bn_dropout_cnn, x, TARGETS)


def test_target_none_explains_the_predicted_class(any_cnn, x, method):
    _, run = method
    with torch.no_grad():
        predicted = any_cnn(x).argmax(dim=1).tolist()
    other = [(p + 1) % N_CLASSES for p in predicted]
    auto = run(any_cnn, x, None)
    torch.testing.assert_close(auto, run(any_cnn, x, predicted), atol=0, rtol=0)
    assert not torch.allclose(auto, run(any_cnn, x, other))


@pytest.mark.parametrize("target", [2, torch.tensor(2), [2], torch.tensor([2, 2, 2])])
def test_target_forms_give_the_same_map(relu6_cnn, x, target):
    expected = cl.vanilla_gradient(relu6_cnn, x, [2, 2, 2])
    torch.testing.assert_close(cl.vanilla_gradient(relu6_cnn, x, target), expected, atol=0, rtol=0)


# ------------------------------------------------------------------------------ semantics
def test_reduce_channels_max_abs_sum_abs_signed_on_a_hand_made_tensor():
    a = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]], [[2.0, 1.0]]]], dtype=torch.float64)  # 1 x 3 x 1 x 2
    assert torch.equal(cl.reduce_channels(a, "max_abs"), torch.tensor([[[3.0, 2.0]]], dtype=torch.float64))
    assert torch.equal(cl.reduce_channels(a, "sum_abs"), torch.tensor([[[6.0, 3.5]]], dtype=torch.float64))
    assert torch.equal(cl.reduce_channels(a, "signed"), torch.tensor([[[0.0, -0.5]]], dtype=torch.float64))
    assert torch.equal(cl.reduce_channels(a), cl.reduce_channels(a, "max_abs"))  # the default
    assert cl.REDUCTIONS == ("max_abs", "sum_abs", "signed")


def test_reduce_channels_rejects_a_map_without_channels():
    with pytest.raises(ValueError, match="attributions must be a batch with 4 dimensions"):
        cl.reduce_channels(torch.zeros(1, 4, 4))


@pytest.mark.parametrize("how", cl.REDUCTIONS)
def test_reduce_option_equals_reduce_channels_of_the_full_map(relu6_cnn, x, how):
    for fn, kw in [(cl.vanilla_gradient, {}), (cl.gradient_x_input, {}), (cl.smoothgrad, NT)]:
        full = fn(relu6_cnn, x, TARGETS, **kw)
        torch.testing.assert_close(fn(relu6_cnn, x, TARGETS, reduce=how, **kw), cl.reduce_channels(full, how))


def test_gradient_x_input_is_gradient_times_input(relu6_cnn, x):
    grad = cl.vanilla_gradient(relu6_cnn, x, TARGETS)
    torch.testing.assert_close(cl.gradient_x_input(relu6_cnn, x, TARGETS), grad * x, atol=0, rtol=0)


def test_noise_stdev_is_noise_level_times_each_examples_range(x):
    x = x.clone()
    x[1] *= 4.0
    torch.testing.assert_close(cl.noise_stdev(x, 0.1), torch.tensor([0.1, 0.4, 0.1], dtype=x.dtype))


def test_smoothgrad_with_noise_level_0_equals_vanilla_gradient(smooth_cnn, x):
    opts = {**NT, "noise_level": 0.0}
    vanilla = cl.vanilla_gradient(smooth_cnn, x, TARGETS)
    torch.testing.assert_close(cl.smoothgrad(smooth_cnn, x, TARGETS, **opts), vanilla, atol=BATCH_ATOL, rtol=0)
    torch.testing.assert_close(cl.smoothgrad_squared(smooth_cnn, x, TARGETS, **opts), vanilla**2, atol=BATCH_ATOL, rtol=0)
    torch.testing.assert_close(cl.vargrad(smooth_cnn, x, TARGETS, **opts), torch.zeros_like(x), atol=BATCH_ATOL, rtol=0)


@pytest.mark.parametrize("multiply_by_inputs", [False, True])
def test_smoothgrad_squared_and_vargrad_are_nonnegative_and_vargrad_is_sq_minus_mean_squared(
    any_cnn, x, multiply_by_inputs
):
    opts = {**NT, "multiply_by_inputs": multiply_by_inputs}
    mean = cl.smoothgrad(any_cnn, x, TARGETS, **opts)
    sq = cl.smoothgrad_squared(any_cnn, x, TARGETS, **opts)
    var = cl.vargrad(any_cnn, x, TARGETS, **opts)
    assert (sq >= 0).all() and (var >= 0).all()
    assert var.max() > 0
    torch.testing.assert_close(var, sq - mean**2, atol=BATCH_ATOL, rtol=0)


def test_vargrad_of_a_float32_linear_model_is_zero_not_negative_rounding():
    # Every copy has the same gradient: mean of squares minus square of mean cancels to
    # rounding error, negative about a third of the time in float32 unless it is clamped.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, N_CLASSES)).eval()
    with torch.no_grad():
        model[1].weight.mul_(torch.rand(N_CLASSES, 3 * 8 * 8) * 37.0)
    x = torch.rand(2, 3, 8, 8)
    for n_samples in (3, 6, 25):
        var = cl.vargrad(model, x, 1, n_samples=n_samples)
        assert (var >= 0).all()
        assert var.max() <= 1e-5 * model[1].weight.abs().max() ** 2
