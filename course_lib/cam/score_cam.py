"""Score-CAM (Wang et al. 2020): channel weights from forward passes, no gradients.

Each channel's activation map A_k is upsampled to the input size and scaled to [0, 1], giving a
mask M_k; the image is multiplied by it and the model scores the masked image. The K target
scores of an example, passed through a softmax over channels, are the weights:

    w_k = softmax_k( S(x * M_k) ),    map = relu( sum_k w_k A_k ).

The softmax over channels is pytorch-grad-cam's choice too (a baseline score subtracted from
every S, as in the paper's "increase of confidence", cancels in it). One difference: we upsample
the masks as we upsample every map (``align_corners=False``, pixel centres aligned);
pytorch-grad-cam upsamples them with ``align_corners=True``, which stretches the map by up to
half a cell. Override ``ScoreCAM.masks`` to change it. The cost is one forward pass per channel
per image, in chunks of ``batch_size`` masked images.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core import Target, batches, logits_of
from .base import BaseCAM, Captured, upsample_maps


def channel_masks(activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """n x h x w activation maps -> n x H x W masks: upsampled, then min-max scaled to [0, 1]
    (a constant map gives an all-zero mask)."""
    up = upsample_maps(activations, size)
    flat = up.flatten(1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    span = (hi - lo).view(-1, 1, 1)
    return torch.where(span > 0, (up - lo.view(-1, 1, 1)) / torch.where(span > 0, span, 1.0), 0.0)


class ScoreCAM(BaseCAM):
    """w_k = softmax over channels of the target score of the image masked by channel k."""

    uses_gradients = False

    def __init__(self, batch_size: int | None = 64, progress: bool | None = None) -> None:
        self.batch_size = batch_size
        self.progress = progress

    def masks(self, activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """n x h x w activation maps -> n x H x W masks in [0, 1] (see ``channel_masks``)."""
        return channel_masks(activations, size)

    def channel_weights(self, c: Captured) -> torch.Tensor:
        n, k = c.activations.shape[:2]
        size = tuple(c.inputs.shape[-2:])
        pairs = list(batches(n * k, self.batch_size))
        show = self.progress if self.progress is not None else n * k >= 2000
        if show:
            from tqdm.auto import tqdm

            pairs = tqdm(pairs, desc=f"Score-CAM: {n * k} forward passes", unit="batch")
        scores = torch.empty(n * k, dtype=c.logits.dtype)
        with torch.no_grad():
            for chunk in pairs:
                # Flat index i * k + j is channel j of example i: masks are made chunk by chunk,
                # so memory stays at batch_size images whatever K is.
                idx = torch.arange(chunk.start, chunk.stop)
                example, channel = idx // k, idx % k
                masks = self.masks(c.activations[example, channel], size)
                masked = c.inputs[example] * masks[:, None].to(c.inputs.dtype)
                logits = logits_of(c.model(masked))
                scores[chunk] = logits.gather(1, c.targets[example][:, None])[:, 0].cpu()
        return torch.softmax(scores.view(n, k), dim=1).to(c.activations.device)


def score_cam(
    model: nn.Module,
    inputs: torch.Tensor,
    target: Target = None,
    *,
    layer: str | nn.Module,
    upsample: bool = True,
    relu: bool = True,
    batch_size: int | None = 64,
    progress: bool | None = None,
) -> torch.Tensor:
    """Score-CAM: N x C x H x W -> N x H x W, with K forward passes per image (K = the layer's channels).

    ``batch_size`` masked images go through the model at once; ``progress`` shows a progress
    bar (by default when there are 2000 passes or more).
    """
    return ScoreCAM(batch_size, progress)(model, inputs, target, layer=layer, upsample=upsample, relu=relu)
