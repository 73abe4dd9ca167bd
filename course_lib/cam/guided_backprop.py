"""Guided Backpropagation (Springenberg et al. 2015) and Guided Grad-CAM (Selvaraju et al. 2017).

Guided backprop is the input gradient with one change at every ReLU-like activation: on the way
back, the gradient passes only where the activation passed its input forward (the ordinary
derivative) *and* where the gradient arriving from above is positive:

    R_in = 1[x in the linear range] * relu(R_out).

The usual implementations swap or hook the model's ``nn.ReLU`` modules, which misses ``ReLU6``
(Captum) and activations called as functions in ``forward`` (``F.relu``), and tutorials leave
the hooks behind. Here a torch function mode (``torch.overrides.TorchFunctionMode``) sees every
call of the activation functions during one forward pass, module or functional, and routes them
through a guided version; the model itself is never touched.

Intercepted: ``F.relu``, ``torch.relu`` and ``Tensor.relu`` (and their in-place ``relu_``),
``F.relu6``, and ``F.hardtanh`` (which ``nn.ReLU6`` and ``nn.Hardtanh`` call), with their
in-place forms. Other activations (GELU, SiLU, LeakyReLU) are left alone and get the plain
gradient; when none of the intercepted ones runs, a warning says so.
"""
from __future__ import annotations

import inspect
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..core import Target, _caller_stacklevel, check_inputs, logits_of, preserved_state, resolve_target, warn_if_training
from .grad_cam import grad_cam


class _GuidedClamp(torch.autograd.Function):
    """clamp(x, lo, hi) forward; backward: the clamp's own derivative times relu(gradient)."""

    @staticmethod
    def forward(ctx, x, lo, hi, inplace):
        passes = x > lo if hi is None else (x > lo) & (x < hi)
        ctx.save_for_backward(passes)  # not x: an in-place call overwrites it
        if inplace:
            ctx.mark_dirty(x)
            return x.clamp_(lo, hi)
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (passes,) = ctx.saved_tensors
        return grad.clamp(min=0) * passes, None, None, None


def _parse(fn, args, kwargs, names, fixed=None):
    """The call's (input, lower, upper, in place), reading the named arguments of ``fn``."""
    b = inspect.signature(fn).bind(*args, **kwargs)
    b.apply_defaults()
    values = {**b.arguments, **(fixed or {})}
    return tuple(values[n] for n in names)


def _relu(args, kwargs):
    return _parse(F.relu, args, kwargs, ("input", "lo", "hi", "inplace"), {"lo": 0.0, "hi": None})


def _relu6(args, kwargs):
    return _parse(F.relu6, args, kwargs, ("input", "lo", "hi", "inplace"), {"lo": 0.0, "hi": 6.0})


def _hardtanh(args, kwargs):
    return _parse(F.hardtanh, args, kwargs, ("input", "min_val", "max_val", "inplace"))


def _hardtanh_(args, kwargs):
    # The builtin has no Python signature: F.hardtanh's, with inplace forced.
    return _parse(F.hardtanh, args, kwargs, ("input", "min_val", "max_val", "inplace"), {"inplace": True})


def _tensor_relu(inplace):
    return lambda args, kwargs: (args[0] if args else kwargs["input"], 0.0, None, inplace)


# Each intercepted function -> a parser of its arguments into (input, lower, upper, in place).
_RELU_LIKE = {
    F.relu: _relu,
    F.relu6: _relu6,
    F.hardtanh: _hardtanh,
    torch.relu: _tensor_relu(False),
    torch.relu_: _tensor_relu(True),  # F.relu_ is this function
    torch.Tensor.relu: _tensor_relu(False),
    torch.Tensor.relu_: _tensor_relu(True),
    F.hardtanh_: _hardtanh_,
}


class GuidedActivations(TorchFunctionMode):
    """``with GuidedActivations() as mode:`` every ReLU-like call in the block is guided on the
    way back; ``mode.count`` is how many such calls ran. Only the forward pass must be inside."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        parse = _RELU_LIKE.get(func)
        if parse is None:
            return func(*args, **kwargs)
        x, lo, hi, inplace = parse(args, kwargs)
        self.count += 1
        return _GuidedClamp.apply(x, lo, hi, inplace)


def _guided_gradients(model: nn.Module, inputs: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        with GuidedActivations() as mode:
            logits = logits_of(model(x))
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the model must return N x K class scores, got shape {tuple(logits.shape)}")
        t = resolve_target(target, logits)
        (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), x)
    if mode.count == 0:
        warnings.warn(
            "no ReLU-like activation (relu, relu6, hardtanh) ran in the forward pass: guided "
            "backprop is the plain gradient for this model",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )
    return grad.detach(), t


def guided_backprop(model: nn.Module, inputs: torch.Tensor, target: Target = None) -> torch.Tensor:
    """Guided backpropagation: N x C x H x W -> N x C x H x W (signed, like a gradient)."""
    check_inputs(inputs)
    warn_if_training(model)
    with preserved_state(model):
        grad, _ = _guided_gradients(model, inputs, target)
    return grad


def guided_grad_cam(
    model: nn.Module, inputs: torch.Tensor, target: Target = None, *, layer: str | nn.Module
) -> torch.Tensor:
    """Guided backprop times the upsampled Grad-CAM of ``layer``: N x C x H x W -> N x C x H x W."""
    check_inputs(inputs)
    warn_if_training(model)
    with preserved_state(model):
        grad, t = _guided_gradients(model, inputs, target)
    # The same classes for both factors, also when target is None.
    return grad * grad_cam(model, inputs, t, layer=layer)[:, None]
