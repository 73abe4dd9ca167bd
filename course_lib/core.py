"""The shared machinery every attribution method stands on.

- ``check_inputs`` / ``resolve_target``: clear errors for bad input.
- ``preserved_state``: the model's training flags, ``requires_grad`` and ``.grad`` are put back
  exactly as they were, even when the method raises.
- ``Hooks``: forward hooks and tensor hooks owned by one object and removed in ``finally``.
- ``logits_of``: the class scores of a plain module or of a Hugging Face model output.
- ``input_gradients``: d(score of target)/d(input), batched, the core of the gradient family.
"""
from __future__ import annotations

import contextlib
import difflib
import sys
import warnings
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

Target = int | Sequence[int] | torch.Tensor | None


def check_inputs(inputs: torch.Tensor, ndim: int | None = 4, name: str = "inputs") -> torch.Tensor:
    """Raise a clear error unless ``inputs`` is a floating-point batch with ``ndim`` dimensions."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (gradients need floats), got dtype "
            f"{inputs.dtype}: convert with {name}.float() (images: scale to [0, 1] and normalise "
            f"as the model expects)"
        )
    if ndim is not None and inputs.dim() != ndim:
        hint = ""
        if inputs.dim() == ndim - 1:
            hint = f": a single example? add the batch dimension with {name}.unsqueeze(0)"
        raise ValueError(
            f"{name} must be a batch with {ndim} dimensions (N x C x H x W for images), "
            f"got a {inputs.dim()}-D tensor of shape {tuple(inputs.shape)}{hint}"
        )
    if inputs.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0)")
    return inputs


def logits_of(output) -> torch.Tensor:
    """The N x K class scores of a model output: a tensor, a tuple, or an object with ``.logits``."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find class scores in a model output of type {type(output).__name__}")


def resolve_target(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """Turn ``target`` (int, sequence of ints, tensor or None) into N class indices.

    ``None`` means the predicted class of each example.
    """
    n, k = logits.shape[0], logits.shape[-1]
    if target is None:
        return logits.detach().argmax(dim=-1)
    if isinstance(target, bool):
        raise TypeError("target must be an int, a sequence of ints or None, got a bool")
    if isinstance(target, int):
        t = torch.full((n,), target, dtype=torch.long)
    else:
        t = torch.as_tensor(target)
        if t.is_floating_point():
            raise TypeError(f"target must hold integers (class indices), got dtype {t.dtype}")
        t = t.long().flatten()
        if t.numel() == 1:
            t = t.expand(n).clone()
        if t.numel() != n:
            raise ValueError(f"target has {t.numel()} entries but the batch has {n} examples")
    bad = (t < 0) | (t >= k)
    if bad.any():
        raise ValueError(
            f"target {t[bad].tolist()} out of range: the model has {k} classes (0 to {k - 1})"
        )
    return t.to(logits.device)


def warn_if_training(model: nn.Module) -> None:
    """Warn when ``model`` is in training mode: dropout and batch norm then change the maps."""
    if model.training:
        warnings.warn(
            "the model is in training mode: dropout and batch-norm statistics make attributions "
            "random and wrong. Call model.eval() before explaining it.",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside course_lib: a warning names the user's
    line (and is shown again for each new line) however deep inside course_lib it is raised."""
    frame, level = sys._getframe(2), 2  # level 1 is the function that calls warnings.warn
    while frame is not None and frame.f_globals.get("__name__", "").startswith("course_lib."):
        frame, level = frame.f_back, level + 1
    return level


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Restore every module's training flag, every parameter's ``requires_grad`` and ``.grad``,
    and every buffer (a model left in training mode updates its batch-norm statistics)."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode
        for p, requires_grad, grad in params:
            p.requires_grad_(requires_grad)
            p.grad = grad
        with torch.no_grad():
            for b, value in buffers:
                b.copy_(value)


def get_layer(model: nn.Module, name: str | nn.Module) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``), or a clear error."""
    if isinstance(name, nn.Module):
        if not any(m is name for m in model.modules()):
            raise ValueError("the given layer is not a sub-module of the model")
        return name
    modules = dict(model.named_modules())
    if name not in modules:
        close = difflib.get_close_matches(name, list(modules), n=5, cutoff=0.5)
        listing = close or [n for n in list(modules)[1:12]]
        raise ValueError(
            f"the model has no layer named {name!r}; "
            f"{'did you mean' if close else 'its layers include'}: {', '.join(listing)} "
            f"(all names: [n for n, _ in model.named_modules()])"
        )
    return modules[name]


class Hooks:
    """Owns forward hooks and tensor hooks; ``remove()`` (or leaving the ``with``) drops them all.

    Gradients of a layer's output are captured with a tensor hook registered inside a forward
    hook: module backward hooks break on in-place activations such as ``ReLU(inplace=True)``.
    """

    def __init__(self) -> None:
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def forward(self, module: nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_hook(fn))

    def forward_pre(self, module: nn.Module, fn: Callable) -> None:
        self._handles.append(module.register_forward_pre_hook(fn))

    def tensor(self, tensor: torch.Tensor, fn: Callable) -> None:
        self._handles.append(tensor.register_hook(fn))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()  # errors propagate: returning None does not swallow them


def batches(n: int, batch_size: int | None) -> Iterator[slice]:
    """Slices that cover range(n) in chunks of ``batch_size`` (all at once when None)."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size}")
    step = n if batch_size is None else batch_size
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def input_gradients(
    model: nn.Module, inputs: torch.Tensor, target: Target = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of each example's target score with respect to its input, and those targets.

    inputs: N x ... float -> (N x ... gradients, N target indices). The caller's tensor and the
    model's parameters are not touched: we differentiate a detached copy with ``autograd.grad``.
    """
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = logits_of(model(x))
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(
                f"the model must return N x K class scores, got shape {tuple(logits.shape)}"
            )
        t = resolve_target(target, logits)
        # Each example's score depends only on its own input, so the gradient of the sum
        # gives every example its own gradient in one backward pass.
        score = logits.gather(1, t[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.detach(), t
