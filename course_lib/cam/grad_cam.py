"""CAM (Zhou et al. 2016), Grad-CAM (Selvaraju et al. 2017), Grad-CAM++ (Chattopadhay et al.
2018), HiResCAM (Draelos and Carin 2020) and LayerCAM (Jiang et al. 2021).

Each is a few lines on top of ``BaseCAM``: the weights it gives each channel of the layer's
activations A (N x K x h x w), or its own weighted sum. Every function has the call shape

    method(model, inputs, target=None, *, layer, upsample=True, relu=True) -> N x H x W

(N x h x w, the layer's size, with ``upsample=False``); ``layer`` is a name from
``model.named_modules()`` or the module itself. The maps are not normalised.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core import Target, get_layer
from .base import BaseCAM, Captured


class CAM(BaseCAM):
    """w_k = the classifier's weight from channel k to the target class.

    Only for networks whose ``layer`` is followed by global average pooling and one linear
    layer (``fc``, by default the model's last ``nn.Linear``); checked on the logits.
    """

    uses_gradients = False

    def __init__(self, fc: str | nn.Module | None = None) -> None:
        self.fc = fc

    def channel_weights(self, c: Captured) -> torch.Tensor:
        fc = _last_linear(c.model) if self.fc is None else get_layer(c.model, self.fc)
        if not isinstance(fc, nn.Linear) or fc.in_features != c.activations.shape[1]:
            raise ValueError(
                f"CAM needs a linear layer from the {c.activations.shape[1]} channels of the layer "
                f"to the classes, got {fc}"
            )
        w, b = fc.weight.detach(), fc.bias.detach() if fc.bias is not None else 0.0
        # CAM is only defined when logits = W . mean_ij(A) + b; say so rather than draw nonsense.
        expected = c.activations.mean(dim=(2, 3)) @ w.T.to(c.activations.dtype) + b
        gap = (expected - c.logits).abs().max()
        if gap > 1e-4 * (1.0 + c.logits.abs().max()):
            raise ValueError(
                f"CAM needs a network that ends in global average pooling and a linear layer "
                f"after the chosen layer: the logits differ from fc(mean of the activations) by "
                f"up to {float(gap):.3g}. Use grad_cam, which needs no such structure."
            )
        return w[c.targets]


def _last_linear(model: nn.Module) -> nn.Module:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("CAM needs a final nn.Linear classifier and the model has none")
    return linears[-1]


class GradCAM(BaseCAM):
    """w_k = the mean over space of dS/dA_k: the gradient, globally average-pooled."""

    def channel_weights(self, c: Captured) -> torch.Tensor:
        return c.gradients.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    """w_k = sum_ij alpha_kij relu(dY/dA_kij), with Y = exp(S) and the paper's closed form

    alpha_kij = Y'' / (2 Y'' + sum_ab A_kab Y''') = g^2 / (2 g^2 + sum_ab A_kab g^3),

    where g = dS/dA_kij and, for a network that is piecewise linear in A (ReLU), the second and
    third derivatives of exp(S) are exp(S) g^2 and exp(S) g^3. The factor exp(S) cancels in
    alpha and scales every weight of an example by the same positive number, so we drop it
    (it overflows float32 for scores above about 88). Where g = 0, alpha is 0.
    """

    def channel_weights(self, c: Captured) -> torch.Tensor:
        g, a = c.gradients, c.activations
        g2, g3 = g.pow(2), g.pow(3)
        denominator = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(denominator != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0.0)
        return (alpha * g.clamp(min=0)).sum(dim=(2, 3))


class HiResCAM(BaseCAM):
    """sum_k dS/dA_k * A_k element-wise: Grad-CAM without averaging the gradient over space."""

    def combine(self, c: Captured) -> torch.Tensor:
        return (c.gradients * c.activations).sum(dim=1)


class LayerCAM(BaseCAM):
    """sum_k relu(dS/dA_k) * A_k element-wise: only positive gradients, kept per position."""

    def combine(self, c: Captured) -> torch.Tensor:
        return (c.gradients.clamp(min=0) * c.activations).sum(dim=1)


def cam(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
    fc: str | nn.Module | None = None,
) -> torch.Tensor:
    """Class activation map of a network ending in GAP + linear: N x C x H x W -> N x H x W.

    ``layer`` is the one pooled into the classifier ``fc`` (default: the last ``nn.Linear``).
    """
    return CAM(fc)(model, inputs, target, layer=layer, upsample=upsample, relu=relu)


def grad_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
) -> torch.Tensor:
    """Grad-CAM, channels weighted by their mean gradient: N x C x H x W -> N x H x W."""
    return GradCAM()(model, inputs, target, layer=layer, upsample=upsample, relu=relu)


def grad_cam_plus_plus(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
) -> torch.Tensor:
    """Grad-CAM++, positive gradients weighted by the closed-form alphas: N x C x H x W -> N x H x W."""
    return GradCAMPlusPlus()(model, inputs, target, layer=layer, upsample=upsample, relu=relu)


def hires_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
) -> torch.Tensor:
    """HiResCAM, sum over channels of gradient x activation: N x C x H x W -> N x H x W."""
    return HiResCAM()(model, inputs, target, layer=layer, upsample=upsample, relu=relu)


def layer_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
) -> torch.Tensor:
    """LayerCAM, sum over channels of relu(gradient) x activation: N x C x H x W -> N x H x W."""
    return LayerCAM()(model, inputs, target, layer=layer, upsample=upsample, relu=relu)
