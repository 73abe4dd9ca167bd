"""The machinery the segment methods share: check segments, and score coalitions of segments.

A *coalition* is a boolean vector over an image's M segments: segment k keeps the image's
pixels where it is True and takes the baseline's pixels where it is False. LIME, KernelSHAP,
exact Shapley and permutation sampling differ only in which coalitions they score and how
they combine the scores, so the scoring lives here, batched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from ..core import Target, batches, check_inputs, logits_of, preserved_state, resolve_target, warn_if_training
from .fill import Fill, make_baseline

# Show a progress bar by default only for calls this long: a count, not a clock, so that a
# notebook's outputs do not depend on the machine's speed.
PROGRESS_MIN_PASSES = 5000


def progress_bar(total: int, show: bool | None, desc: str):
    """A tqdm bar over ``total`` forward passes, or a silent stand-in.

    ``show=None``: a bar only when ``total`` >= PROGRESS_MIN_PASSES.
    """
    if show is None:
        show = total >= PROGRESS_MIN_PASSES
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pass")


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def check_segments(segments, inputs: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Segments for every image: (N x H x W long with ids 0..M_i-1, the M_i).

    ``segments``: H x W (the same for every image) or N x H x W, non-negative integers.
    Ids need not be consecutive; they are renumbered in increasing order, so ``segment_values``
    of the result and of the original agree on every id that occurs.
    """
    n, _, h, w = inputs.shape
    if not isinstance(segments, torch.Tensor):
        segments = torch.as_tensor(segments)
    if segments.is_floating_point() or segments.dtype == torch.bool or segments.is_complex():
        raise TypeError(f"segments must hold integer segment ids, got dtype {segments.dtype}")
    given = tuple(segments.shape)
    if segments.dim() == 2 and given == (h, w):
        segments = segments.expand(n, h, w)
    if segments.dim() != 3 or tuple(segments.shape) != (n, h, w):
        raise ValueError(
            f"segments must be H x W or N x H x W matching the inputs ({n} x {h} x {w}), got shape {given}"
        )
    if (segments < 0).any():
        raise ValueError("segment ids must be non-negative integers")
    out, counts = [], []
    for s in segments:
        ids, inverse = torch.unique(s.cpu().long(), return_inverse=True)
        out.append(inverse.view(h, w))
        counts.append(len(ids))
    return torch.stack(out).to(inputs.device), counts


@dataclass
class Prepared:
    """A checked batch: inputs, baselines, resolved targets, renumbered segments."""

    x: torch.Tensor  # N x C x H x W, detached
    baseline: torch.Tensor  # N x C x H x W
    target: torch.Tensor  # N class indices
    segments: torch.Tensor  # N x H x W long
    n_segments: list[int]  # M for each image


def prepare(model: nn.Module, inputs: torch.Tensor, target: Target, segments, baseline: Fill) -> Prepared:
    """Check everything before the first expensive pass; the target is fixed on the clean input."""
    check_inputs(inputs)
    warn_if_training(model)
    x = inputs.detach()
    segs, counts = check_segments(segments, x)
    base = make_baseline(x, baseline)
    with preserved_state(model), torch.no_grad():
        logits = logits_of(model(x))
        _check_logits(logits, len(x))
        t = resolve_target(target, logits)
    return Prepared(x, base, t, segs, counts)


def _check_logits(logits: torch.Tensor, n: int) -> None:
    if logits.dim() != 2 or logits.shape[0] != n:
        raise ValueError(f"the model must return N x K class scores, got shape {tuple(logits.shape)}")


def coalition_images(image: torch.Tensor, baseline: torch.Tensor, segments: torch.Tensor,
                     coalitions: torch.Tensor) -> torch.Tensor:
    """S x C x H x W images: the pixels of segment k from ``image`` where coalition[:, k] is True,
    else from ``baseline`` (both C x H x W; segments H x W; coalitions S x M bool)."""
    keep = coalitions[:, segments]  # S x H x W
    return torch.where(keep[:, None], image, baseline)


def coalition_scores(
    model: nn.Module,
    image: torch.Tensor,
    baseline: torch.Tensor,
    segments: torch.Tensor,
    target: int,
    coalitions: torch.Tensor,
    batch_size: int | None,
    bar=None,
) -> torch.Tensor:
    """The target's score (logit) for each coalition: S scores on the CPU (the fits that use them
    are small), ``batch_size`` images per pass on the image's device."""
    coalitions = coalitions.to(device=image.device, dtype=torch.bool)
    out = []
    with preserved_state(model), torch.no_grad():
        for chunk in batches(len(coalitions), batch_size):
            images = coalition_images(image, baseline, segments, coalitions[chunk])
            logits = logits_of(model(images))
            _check_logits(logits, len(images))
            out.append(logits[:, target].cpu())
            if bar is not None:
                bar.update(len(images))
    return torch.cat(out)


def per_example(p: Prepared) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, int, int]]:
    """(index, image, baseline, segments, target, M) for each example of a prepared batch."""
    for i in range(len(p.x)):
        yield i, p.x[i], p.baseline[i], p.segments[i], int(p.target[i]), p.n_segments[i]


def spread(values: torch.Tensor, segments: torch.Tensor, channels: int) -> torch.Tensor:
    """M per-segment values -> C x H x W map holding each pixel's segment value."""
    return values.to(segments.device)[segments].unsqueeze(0).expand(channels, *segments.shape).clone()


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
