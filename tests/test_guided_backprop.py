"""Guided backprop and Guided Grad-CAM: the definition on ReLU, ReLU6 and functional F.relu,
agreement with Captum and pytorch-grad-cam where they apply, batching, no leftovers.

The reference is computed on a deep copy whose ReLU-like modules (or functional calls) are
replaced by an out-of-place activation with a tensor hook that zeroes negative gradients:
R_in = 1[x in the linear range] * relu(R_out), the definition.

Tolerances (float64): ``REF_ATOL = 1e-12`` against the replaced-module reference and Captum
(the same backward pass); ``BATCH_ATOL = 1e-12`` batched against one by one.
"""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from captum.attr import GuidedBackprop
from pytorch_grad_cam import GuidedBackpropReLUModel
from torch import nn

import course_lib as cl

pytestmark = pytest.mark.usefixtures("deterministic")

REF_ATOL = 1e-12
BATCH_ATOL = 1e-12
N_CLASSES = 5
TARGETS = [0, 3, 1]


class ReferenceGuided(nn.Module):
    """clamp(x, lo, hi), out of place, with the gradient from above clipped at 0 on the way back."""

    def __init__(self, lo: float, hi: float | None) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x):
        y = F.relu(x) if self.hi is None else F.hardtanh(x, self.lo, self.hi)
        if y.requires_grad:
            y.register_hook(lambda g: g.clamp(min=0))
        return y


def replaced(model: nn.Module) -> nn.Module:
    """A deep copy with every nn.ReLU / nn.ReLU6 / nn.Hardtanh swapped for ``ReferenceGuided``."""
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                setattr(parent, name, ReferenceGuided(0.0, None))
            elif isinstance(child, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
                setattr(parent, name, ReferenceGuided(child.min_val, child.max_val))
            else:
                swap(child)

    swap(model)
    return model


def reference(model, x, targets):
    """Guided backprop by definition: the plain input gradient of the replaced copy."""
    return cl.vanilla_gradient(replaced(model), x, targets)


class FunctionalReLUNet(nn.Module):
    """Calls its activations as functions in forward, as torchvision's Inception does: module
    hooks and module swaps never see them. ``guided_reference`` swaps them for the reference."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, N_CLASSES)
        self.inplace = inplace
        self.guided_reference = False

    def act(self, x, how: str):
        if self.guided_reference:
            return ReferenceGuided(0.0, 6.0 if how == "F.relu6" else None)(x)
        if how == "F.relu":
            return F.relu(x, inplace=self.inplace)
        if how == "F.relu6":
            return F.relu6(x, inplace=self.inplace)
        return x.relu_() if self.inplace else torch.relu(x)  # the tensor method, torch.relu

    def forward(self, x):
        x = self.act(self.conv1(x), "F.relu")
        x = self.act(self.conv2(x), "tensor")
        x = self.act(x * 20.0, "F.relu6")
        return self.fc(x.mean((2, 3)))


def functional_net(inplace: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = FunctionalReLUNet(inplace).double().eval()
    with torch.no_grad():
        model.conv1.weight.mul_(5.0)  # some units above 6: the ReLU6 clip is exercised
    g = torch.Generator().manual_seed(1)
    model.conv1.weight.grad = torch.randn(model.conv1.weight.shape, generator=g, dtype=torch.float64)
    return model


def function_mode_depth() -> int:
    return torch._C._len_torch_function_stack()


# ------------------------------------------------------------------------- the definition
@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout"])
def test_guided_backprop_equals_the_replaced_module_reference(make_cnn, x, kind):
    model = make_cnn(kind)
    ours = cl.guided_backprop(model, x, TARGETS)
    ref = reference(model, x, TARGETS)
    assert ours.shape == x.shape and ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=REF_ATOL, rtol=0)
    # ... and it is not the plain gradient, so the comparison can fail.
    assert (ours - cl.vanilla_gradient(model, x, TARGETS)).abs().max() > 1e-3 * ours.abs().max()


@pytest.mark.parametrize("inplace", [False, True])
def test_guided_backprop_sees_functional_relu_relu6_and_tensor_relu_in_forward(x, inplace):
    model = functional_net(inplace)
    ours = cl.guided_backprop(model, x, TARGETS)
    ref_model = functional_net(inplace)
    ref_model.guided_reference = True
    ref = cl.vanilla_gradient(ref_model, x, TARGETS)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, ref, atol=REF_ATOL, rtol=0)
    assert (ours - cl.vanilla_gradient(model, x, TARGETS)).abs().max() > 1e-3 * ours.abs().max()


def test_the_functional_net_saturates_its_relu6(x):
    model = functional_net()
    with torch.no_grad():
        pre = torch.relu(model.conv2(F.relu(model.conv1(x)))) * 20.0  # the input of the F.relu6
    assert (pre > 6).any() and ((pre > 0) & (pre < 6)).any()


def test_guided_backprop_on_efficientnet_lite0_relu6_equals_the_reference():
    loaded = cl.load_model("efficientnet_lite0")
    x = F.interpolate(loaded.preprocess(cl.load_photo("chelsea"))[None], size=96, mode="bilinear", antialias=True)
    ours = cl.guided_backprop(loaded.model, x, 282)
    ref = reference(loaded.model, x, 282)
    assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max()
    # Captum overrides only nn.ReLU: on this ReLU6 network it returns the plain gradient.
    captum = GuidedBackprop(loaded.model).attribute(x.clone().requires_grad_(), target=282)
    plain = cl.vanilla_gradient(loaded.model, x, 282)
    torch.testing.assert_close(captum, plain, atol=1e-6 * plain.abs().max(), rtol=0)
    assert (ours - captum).abs().max() > 0.1 * ours.abs().max()


# ------------------------------------------------------------- Captum and pytorch-grad-cam
def test_guided_backprop_matches_captum_on_relu_networks(make_cnn, x):
    model = make_cnn("relu_inplace")
    ours = cl.guided_backprop(model, x, TARGETS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Captum warns that it sets backward hooks
        theirs = GuidedBackprop(model).attribute(x.clone().requires_grad_(), target=TARGETS)
    torch.testing.assert_close(ours, theirs, atol=REF_ATOL, rtol=0)


def test_captum_returns_the_plain_gradient_on_relu6_and_functional_relu(make_cnn, x):
    # The traps our implementation avoids, pinned so that the tests above mean something.
    for model in (make_cnn("relu6"), functional_net()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = GuidedBackprop(model).attribute(x.clone().requires_grad_(), target=TARGETS)
        torch.testing.assert_close(theirs, cl.vanilla_gradient(model, x, TARGETS), atol=REF_ATOL, rtol=0)
        assert (theirs - cl.guided_backprop(model, x, TARGETS)).abs().max() > 1e-3 * theirs.abs().max()


def test_guided_backprop_matches_pytorch_grad_cam_on_a_relu_network(make_cnn, x):
    model = make_cnn("relu_inplace")
    ours = cl.guided_backprop(model, x, TARGETS)
    for i, t in enumerate(TARGETS):
        theirs = GuidedBackpropReLUModel(copy.deepcopy(model), device="cpu")(x[i : i + 1].clone(), t)
        # It returns H x W x C float64 numpy for the first example.
        torch.testing.assert_close(ours[i].permute(1, 2, 0), torch.from_numpy(theirs), atol=REF_ATOL, rtol=0)


# ------------------------------------------------------------------------- Guided Grad-CAM
def test_guided_grad_cam_is_guided_backprop_times_upsampled_grad_cam(make_cnn, x):
    model = make_cnn("relu_inplace")
    ggc = cl.guided_grad_cam(model, x, TARGETS, layer="3")
    expected = cl.guided_backprop(model, x, TARGETS) * cl.grad_cam(model, x, TARGETS, layer="3")[:, None]
    assert ggc.shape == x.shape and ggc.abs().max() > 0
    torch.testing.assert_close(ggc, expected, atol=0, rtol=0)


def test_guided_grad_cam_target_none_uses_the_predicted_class_for_both_factors(make_cnn, x):
    model = make_cnn("relu6")
    with torch.no_grad():
        predicted = model(x).argmax(dim=1).tolist()
    torch.testing.assert_close(cl.guided_grad_cam(model, x, layer="3"),
                               cl.guided_grad_cam(model, x, predicted, layer="3"), atol=0, rtol=0)


# ------------------------------------------------------------------------------ batching
@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout"])
def test_batched_equals_one_by_one(make_cnn, x, kind):
    model = make_cnn(kind)
    for run in (cl.guided_backprop, lambda m, xx, t: cl.guided_grad_cam(m, xx, t, layer="1")):
        batched = run(model, x, TARGETS)
        single = torch.cat([run(model, x[i : i + 1], t) for i, t in enumerate(TARGETS)])
        torch.testing.assert_close(batched, single, atol=BATCH_ATOL, rtol=0)


# ------------------------------------------------------------------------ nothing left behind
@pytest.mark.parametrize("kind", ["relu_inplace", "relu6", "batchnorm_dropout"])
def test_no_hook_mode_or_state_left_and_modules_untouched(make_cnn, x, kind, no_leftovers):
    model = make_cnn(kind)
    types = [type(m) for m in model.modules()]
    check = no_leftovers(model)
    cl.guided_backprop(model, x, TARGETS)
    cl.guided_grad_cam(model, x, TARGETS, layer="1")
    check()
    assert [type(m) for m in model.modules()] == types, "a module was replaced"
    assert function_mode_depth() == 0, "a torch function mode was left active"


def test_later_gradients_are_plain_after_guided_backprop(make_cnn, x):
    # The leak of hook-based tutorials: after them, every gradient method is silently guided.
    model = make_cnn("relu_inplace")
    before = cl.vanilla_gradient(model, x, TARGETS)
    cl.guided_backprop(model, x, TARGETS)
    torch.testing.assert_close(cl.vanilla_gradient(model, x, TARGETS), before, atol=0, rtol=0)


class FailOnCall(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        x = self.inner[:2](x)  # a guided ReLU has run: the mode is active
        raise RuntimeError("forward failed")


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


def test_nothing_left_after_the_forward_raises(make_cnn, x, no_leftovers):
    model = FailOnCall(make_cnn("relu_inplace")).eval()
    check = no_leftovers(model)
    for run in (cl.guided_backprop, lambda m, xx, t: cl.guided_grad_cam(m, xx, t, layer="inner.1")):
        with pytest.raises(RuntimeError, match="forward failed"):
            run(model, x, TARGETS)
        assert function_mode_depth() == 0
    check()
    # The mode is gone: a plain forward and backward are plain again.
    inner = model.inner
    torch.testing.assert_close(cl.vanilla_gradient(inner, x, TARGETS),
                               cl.vanilla_gradient(copy.deepcopy(inner), x, TARGETS), atol=0, rtol=0)


def test_nothing_left_after_the_backward_raises(make_cnn, x, no_leftovers):
    base = make_cnn("relu_inplace")
    model = nn.Sequential(base[:2], FailInBackward(), nn.Sequential(*base[2:])).eval()
    check = no_leftovers(model)
    with pytest.raises(RuntimeError, match="backward failed"):
        cl.guided_backprop(model, x, TARGETS)
    assert function_mode_depth() == 0
    check()


def test_nothing_left_after_a_target_out_of_range(make_cnn, x, no_leftovers):
    model = make_cnn("relu6")
    check = no_leftovers(model)
    with pytest.raises(ValueError, match=f"out of range: the model has {N_CLASSES} classes"):
        cl.guided_backprop(model, x, N_CLASSES)
    assert function_mode_depth() == 0
    check()


def test_callers_input_is_untouched(make_cnn, x):
    model = make_cnn("relu_inplace")
    x = x.clone().requires_grad_(True)
    x.grad = torch.full_like(x, 7.0)
    before = x.detach().clone()
    cl.guided_backprop(model, x, TARGETS)
    assert torch.equal(x.detach(), before) and torch.equal(x.grad, torch.full_like(x, 7.0))


# ------------------------------------------------------------------------- warnings, errors
def test_a_model_without_relu_like_activations_gets_a_warning_at_the_callers_line(make_cnn, x):
    model = make_cnn("smooth")  # Softplus and Tanh
    with pytest.warns(UserWarning, match="no ReLU-like activation.*plain gradient") as record:
        ours = cl.guided_backprop(model, x, TARGETS)
    assert all(w.filename == __file__ for w in record)
    torch.testing.assert_close(ours, cl.vanilla_gradient(model, x, TARGETS), atol=0, rtol=0)


def test_relu_models_give_no_warning(make_cnn, x):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cl.guided_backprop(make_cnn("relu6"), x, TARGETS)


def test_training_mode_warns_and_is_kept(make_cnn, x, no_leftovers):
    model = make_cnn("batchnorm_dropout").train()
    check = no_leftovers(model)
    with pytest.warns(UserWarning, match="training mode"):
        cl.guided_backprop(model, x, TARGETS)
    check()


def test_3d_input_is_rejected_with_a_hint_to_unsqueeze(make_cnn, x):
    with pytest.raises(ValueError, match=r"4 dimensions.*unsqueeze\(0\)"):
        cl.guided_backprop(make_cnn("relu6"), x[0], 0)
