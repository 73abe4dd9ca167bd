"""Baselines: the reference input that path and reference methods attribute against.

A baseline is defined in pixel space (values in [0, 1]) and then normalised the way the model
expects, so "black" is black for every model: with mean 0.5 and std 0.5 black is -1 and the
all-zero tensor is mid-grey; with ImageNet's mean and std zero is the mean colour.

- ``Normalization``: ``(pixels - mean) / std`` per channel, its inverse and a sanity check.
- ``pixel_baseline``: black, grey, white, uniform noise, a Gaussian blur of the input, or a
  dataset's mean colour (or mean image), as a batch shaped like the input.
- ``resolve_baseline``: what every method does with its ``baseline`` argument (None, a number,
  a 1 x ... or N x ... tensor), with clear errors for a wrong shape or units.
- ``average_over_baselines``: any method's attributions averaged over several baselines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..core import Target, check_inputs, logits_of, preserved_state, resolve_target
from ..perturbation.fill import gaussian_blur

PIXEL_BASELINES = ("black", "grey", "white", "uniform", "blur", "mean")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # ImageNet's mean colour, in [0, 1] pixel units
PIXEL_TOLERANCE = 0.05  # how far outside [0, 1] a denormalised input may stray before we object


@dataclass(frozen=True)
class Normalization:
    """A model's input normalisation: ``x = (pixels - mean) / std`` per channel.

    ``mean`` and ``std`` are one number (every channel) or one per channel. EfficientNet-Lite0
    and the Shapes models use ``Normalization(0.5, 0.5)``; torchvision's ImageNet models use
    ``Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))``.
    """

    mean: float | Sequence[float] = 0.0
    std: float | Sequence[float] = 1.0

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channels = x.shape[-3]
        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).flatten()
        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).flatten()
        for name, v in (("mean", mean), ("std", std)):
            if v.numel() not in (1, channels):
                raise ValueError(f"the normalisation has {v.numel()} {name} values for {channels} channels")
        if (std <= 0).any():
            raise ValueError(f"std must be positive, got {self.std}")
        return mean.expand(channels).view(-1, 1, 1), std.expand(channels).view(-1, 1, 1)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (... x C x H x W, in [0, 1]) -> model input."""
        mean, std = self._stats(pixels)
        return (pixels - mean) / std

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Model input -> pixels, without clipping (so that a wrong normalisation shows)."""
        mean, std = self._stats(x)
        return x * std + mean

    def check(self, x: torch.Tensor, name: str = "inputs") -> None:
        """Raise unless ``x`` denormalises to pixels in [0, 1] (within ``PIXEL_TOLERANCE``)."""
        p = self.pixels(x.detach())
        lo, hi = float(p.min()), float(p.max())
        if lo < -PIXEL_TOLERANCE or hi > 1 + PIXEL_TOLERANCE:
            raise ValueError(
                f"{name} do not look normalised with mean={self.mean}, std={self.std}: "
                f"undoing it gives pixel values in [{lo:.3g}, {hi:.3g}], not [0, 1]. "
                f"Pass the model's input (preprocessed), and the normalisation its preprocessing uses"
            )


def pixel_baseline(
    kind: str,
    inputs: torch.Tensor,
    normalization: Normalization,
    *,
    sigma: float = 10.0,
    seed: int = 0,
    mean_pixels: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """A baseline for each image of ``inputs``: N x C x H x W, normalised like the inputs.

    ``black``, ``grey`` (0.5) and ``white`` are constant images; ``uniform`` is noise drawn
    uniformly in [0, 1] from ``seed`` (the same draw for every example); ``blur`` is the input
    blurred with a Gaussian of ``sigma`` pixels; ``mean`` is ``mean_pixels``, a dataset's mean
    colour (C values, e.g. ``IMAGENET_MEAN``) or mean image (C x H x W), in pixel units.
    """
    check_inputs(inputs)
    if kind not in PIXEL_BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(PIXEL_BASELINES)}")
    x = inputs.detach()
    normalization.check(x)
    shape = (1, *x.shape[1:])
    if kind in ("black", "grey", "white"):
        pixels = torch.full(shape, {"black": 0.0, "grey": 0.5, "white": 1.0}[kind], dtype=x.dtype)
    elif kind == "uniform":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        pixels = torch.rand(shape, generator=generator, dtype=x.dtype)
    elif kind == "blur":
        pixels = gaussian_blur(normalization.pixels(x), sigma)
    else:
        if mean_pixels is None:
            raise ValueError(
                "baseline 'mean' needs mean_pixels=: the dataset's mean colour (C values in [0, 1], "
                "e.g. IMAGENET_MEAN) or its mean image (C x H x W)"
            )
        m = torch.as_tensor(mean_pixels, dtype=x.dtype).detach().cpu()
        if m.dim() == 1:
            m = m.view(-1, 1, 1)
        if m.dim() != 3 or m.shape[0] != x.shape[1]:
            raise ValueError(
                f"mean_pixels must be {x.shape[1]} values or a {x.shape[1]} x H x W image, got shape {tuple(m.shape)}"
            )
        if m.min() < 0 or m.max() > 1:
            raise ValueError("mean_pixels must be in pixel units, [0, 1] (not normalised, not 0..255)")
        pixels = m.expand(x.shape[1:])[None]
    baseline = normalization.normalize(pixels.to(x.device))
    return baseline.expand_as(x).clone()


def _as_model_units(b: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """``b`` in ``x``'s dtype and device; raises when it is not floating point or its values lie
    far outside the inputs' range (a baseline in 0..255 for inputs in [-1, 1])."""
    if not b.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor in the model's input units, got dtype "
            f"{b.dtype}: build it with pixel_baseline(kind, inputs, normalization)"
        )
    b = b.detach().to(dtype=x.dtype, device=x.device)
    lo, hi = float(x.min()), float(x.max())
    scale = max(hi - lo, abs(lo), abs(hi))
    b_lo, b_hi = float(b.min()), float(b.max())
    if scale > 0 and (b_lo < lo - 4 * scale or b_hi > hi + 4 * scale):
        raise ValueError(
            f"{name} values lie in [{b_lo:.3g}, {b_hi:.3g}] but the inputs' in [{lo:.3g}, {hi:.3g}]: "
            f"is it in other units (0..255, or not normalised)? A baseline is an input of the model: "
            f"normalise it like the inputs (pixel_baseline(kind, inputs, normalization) does)"
        )
    return b


def resolve_baseline(baseline, inputs: torch.Tensor, name: str = "baseline") -> torch.Tensor:
    """``baseline`` (None = zeros, a number, a 1 x ... or N x ... tensor) as an N x ... tensor.

    Raises when the shape does not fit, when it is not floating point, and when its values lie
    far outside the inputs' range: a baseline is an input of the model, in the model's units.
    """
    x = inputs.detach()
    if baseline is None:
        return torch.zeros_like(x)
    if isinstance(baseline, bool):
        raise TypeError(f"{name} must be None, a number or a tensor, got a bool")
    if isinstance(baseline, (int, float)):
        baseline = torch.tensor(float(baseline))
    if not isinstance(baseline, torch.Tensor):
        raise TypeError(f"{name} must be None, a number or a tensor, got {type(baseline).__name__}")
    if baseline.dim() > 0 and (baseline.shape[1:] != x.shape[1:] or baseline.shape[0] not in (1, x.shape[0])):
        raise ValueError(
            f"{name} must have the inputs' shape {tuple(x.shape)} or {(1, *x.shape[1:])} (one for all), "
            f"got {tuple(baseline.shape)}"
        )
    return _as_model_units(baseline, x, name).expand_as(x).clone()


def resolve_baselines(baselines, inputs: torch.Tensor, name: str = "baselines") -> torch.Tensor:
    """A set of K baselines (a K x ... tensor, or a sequence of ... or 1 x ... tensors) -> K x ..."""
    x = inputs.detach()
    example = tuple(x.shape[1:])
    if isinstance(baselines, torch.Tensor):
        b = baselines
    else:
        items = list(baselines)
        if not items or not all(isinstance(t, torch.Tensor) for t in items):
            raise TypeError(f"{name} must be a K x ... tensor or a non-empty sequence of tensors")
        b = torch.cat([t.reshape(1, *t.shape) if t.dim() == x.dim() - 1 else t for t in items])
    if b.dim() == x.dim() - 1:
        b = b[None]
    if b.dim() != x.dim() or tuple(b.shape[1:]) != example:
        raise ValueError(
            f"{name} must be K x {' x '.join(map(str, example))} (K reference inputs), got shape {tuple(b.shape)}"
        )
    if b.shape[0] == 0:
        raise ValueError(f"{name} is empty: give at least one reference input")
    return _as_model_units(b, x, name).clone()


def average_over_baselines(
    method: Callable[..., torch.Tensor],
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    baselines,
    **options,
) -> torch.Tensor:
    """The mean of ``method(model, inputs, target, baseline=b, **options)`` over the baselines.

    ``baselines``: a sequence of baselines (each as ``baseline=`` takes it) or a K x ... tensor
    (each row one baseline for every example). Shaped like ``method``'s output.
    """
    if isinstance(baselines, torch.Tensor):
        baselines = [b[None] for b in baselines]
    baselines = list(baselines)
    if not baselines:
        raise ValueError("baselines is empty: give at least one reference input")
    if target is None:
        # Fixed once on the inputs, so that every baseline explains the same class.
        with preserved_state(model), torch.no_grad():
            target = resolve_target(None, logits_of(model(inputs.detach()))).tolist()
    total = None
    for b in baselines:
        attr = method(model, inputs, target, baseline=b, **options)
        total = attr if total is None else total + attr
    return total / len(baselines)
