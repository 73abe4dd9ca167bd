"""The pipeline every class activation map shares, after pytorch-grad-cam's ``BaseCAM``.

One forward pass records a layer's activations A (N x K x h x w) and one backward pass the
gradients dS/dA of each example's target score S; a variant turns them into an N x h x w map;
the base applies the ReLU and the upsampling. A new CAM overrides one small piece:

- ``channel_weights(c)``: one weight per channel (N x K); the map is sum_k w_k A_k
  (CAM, Grad-CAM, Grad-CAM++, Score-CAM);
- ``combine(c)``: the whole weighted sum, when the weights vary over space (HiResCAM,
  LayerCAM).

Unlike pytorch-grad-cam, the activations are copies taken when the layer returns, so a layer
followed by an in-place activation (``ReLU(inplace=True)``) gives its own output; its gradients
are captured by a tensor hook registered at the same moment, which sees the gradient of that
same value (a hook registered before an in-place change receives the gradient of the value
before the change). Nothing is left on the model: the hooks go in ``finally``, the mode and
``.grad`` are untouched (we ask ``torch.autograd.grad`` for the input's gradient only).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core import (
    Hooks,
    Target,
    check_inputs,
    get_layer,
    logits_of,
    preserved_state,
    resolve_target,
    warn_if_training,
)


@dataclass
class Captured:
    """What one forward (and backward) pass recorded at ``layer`` for a batch."""

    model: nn.Module
    layer: nn.Module
    inputs: torch.Tensor  # N x C x H x W, detached
    targets: torch.Tensor  # N class indices
    logits: torch.Tensor  # N x classes, detached
    activations: torch.Tensor  # N x K x h x w, a copy of the layer's output
    gradients: torch.Tensor | None  # N x K x h x w, d(target score)/d(activations), or None


def capture(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target,
    layer: nn.Module,
    *,
    gradients: bool = True,
) -> Captured:
    """Run ``model`` on ``inputs`` once, recording ``layer``'s output and, with ``gradients``,
    the gradient of each example's target score with respect to it.

    inputs: N x C x H x W -> activations and gradients N x K x h x w. Hooks are removed
    before returning, also when the model raises.
    """
    seen: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []

    def on_forward(_module, _inputs, output):
        if not isinstance(output, torch.Tensor):
            raise TypeError(
                f"the layer returns a {type(output).__name__}, not a tensor: choose a layer "
                f"whose output is one N x K x h x w feature map"
            )
        # A copy: the next module may overwrite this tensor in place (ReLU(inplace=True)).
        seen.append(output.detach().clone())
        if gradients and output.requires_grad:
            hooks.tensor(output, grads.append)

    x = inputs.detach().clone().requires_grad_(gradients)
    with Hooks() as hooks, torch.set_grad_enabled(gradients):
        hooks.forward(layer, on_forward)
        logits = logits_of(model(x))
        if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"the model must return N x K class scores, got shape {tuple(logits.shape)}")
        if not seen:
            raise ValueError("the layer never ran during the forward pass: is it part of this model's forward?")
        if len(seen) > 1:
            raise ValueError(
                f"the layer ran {len(seen)} times in one forward pass (a module used twice): "
                f"choose a layer that runs once"
            )
        acts = seen[0]
        if acts.dim() != 4 or acts.shape[0] != x.shape[0]:
            raise ValueError(
                f"a CAM needs an N x K x h x w feature map, the layer returns shape {tuple(acts.shape)}"
            )
        t = resolve_target(target, logits)
        grad = None
        if gradients:
            # Each example's score depends only on its own input (eval mode), so the gradient
            # of the sum gives every example its own gradient in one backward pass.
            score = logits.gather(1, t[:, None]).sum()
            torch.autograd.grad(score, x)
            if not grads:
                raise RuntimeError("the target score does not depend on the layer's output")
            grad = grads[0].detach()
    return Captured(model, layer, inputs.detach(), t, logits.detach(), acts, grad)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of N x h x w maps to N x H x W (pixel centres aligned, like
    OpenCV's ``resize``, which pytorch-grad-cam uses)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


class BaseCAM:
    """The CAM pipeline: capture -> channel weights -> weighted sum -> ReLU -> upsampling.

    Subclasses override ``channel_weights`` (N x K) or ``combine`` (N x h x w).
    """

    uses_gradients = True

    def channel_weights(self, c: Captured) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define channel_weights or combine")

    def combine(self, c: Captured) -> torch.Tensor:
        """sum_k w_k A_k: N x h x w."""
        w = self.channel_weights(c)
        return torch.einsum("nk,nkhw->nhw", w.to(c.activations.dtype), c.activations)

    def __call__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        target: Target = None,
        *,
        layer: str | nn.Module,
        upsample: bool = True,
        relu: bool = True,
    ) -> torch.Tensor:
        """inputs: N x C x H x W -> N x H x W maps (N x h x w, the layer's size, without ``upsample``)."""
        check_inputs(inputs)
        module = get_layer(model, layer)
        warn_if_training(model)
        with preserved_state(model):
            c = capture(model, inputs, target, module, gradients=self.uses_gradients)
            maps = self.combine(c)
        if relu:
            # Before upsampling, as the papers (and pytorch-grad-cam) do: only evidence for the class.
            maps = maps.clamp(min=0)
        if upsample:
            maps = upsample_maps(maps, tuple(inputs.shape[-2:]))
        return maps
