"""What goes where a part of the image is removed: the fill of occlusion, the baseline of Shapley.

Removing a pixel is impossible; a perturbation method can only replace it with something.
``make_baseline`` builds that replacement for a batch:

- ``"zero"``: zeros in the model's input space. After normalisation that is an image in its
  own right: mid-grey for mean 0.5 / std 0.5 (the course's models), near black-ish grey for
  ImageNet's mean and std.
- a number: that constant in the model's input space.
- ``"mean"``: each image's own per-channel mean colour.
- ``"blur"``: a Gaussian-blurred copy of the image (removes detail, keeps colour and layout).
- a tensor broadcastable to the inputs: used as it is.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from ..core import check_inputs

FILLS = ("zero", "mean", "blur")
BLUR_SIGMA_FRACTION = 1 / 16  # default blur: sigma = 1/16 of the larger side (14 px at 224)

Fill = str | float | torch.Tensor


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """N x C x H x W -> N x C x H x W, blurred with a Gaussian of ``sigma`` pixels (edges reflected)."""
    check_inputs(images, name="images")
    if sigma <= 0:
        raise ValueError(f"blur sigma must be positive (pixels), got {sigma}")
    n, c, h, w = images.shape
    out = images
    for dim, size in ((3, w), (2, h)):
        # Reflect padding needs a pad smaller than the side: truncate the kernel on tiny images.
        radius = max(0, min(int(math.ceil(3 * sigma)), size - 1))
        if radius == 0:
            continue
        t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
        kernel = torch.exp(-(t**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        if dim == 3:
            padded = F.pad(out, (radius, radius, 0, 0), mode="reflect")
            weight = kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1)
        else:
            padded = F.pad(out, (0, 0, radius, radius), mode="reflect")
            weight = kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1)
        out = F.conv2d(padded, weight, groups=c)
    return out


def make_baseline(inputs: torch.Tensor, fill: Fill = "zero", *, blur_sigma: float | None = None) -> torch.Tensor:
    """The replacement values for removed pixels: N x C x H x W, shaped like ``inputs``.

    ``fill``: "zero", "mean", "blur", a number, or a tensor broadcastable to ``inputs``.
    ``blur_sigma`` (pixels) applies to "blur"; default 1/16 of the image's larger side.
    """
    check_inputs(inputs)
    x = inputs.detach()
    if isinstance(fill, torch.Tensor):
        try:
            shape = torch.broadcast_shapes(fill.shape, x.shape)
        except RuntimeError:
            shape = None
        if shape != x.shape:
            raise ValueError(
                f"a fill tensor must broadcast to the inputs' shape {tuple(x.shape)}, "
                f"got shape {tuple(fill.shape)}"
            )
        return fill.detach().to(x).expand_as(x).clone()
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        return torch.full_like(x, float(fill))
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if fill == "blur":
        sigma = blur_sigma if blur_sigma is not None else BLUR_SIGMA_FRACTION * max(x.shape[-2:])
        return gaussian_blur(x, sigma)
    raise ValueError(
        f"unknown fill {fill!r}; choose one of {', '.join(FILLS)}, a number, or a tensor shaped like the inputs"
    )
