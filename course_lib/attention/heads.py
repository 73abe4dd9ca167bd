"""What each attention head looks at, measured over many sentences (Clark et al. 2019).

For every example and every head, ``head_statistics`` averages over the query tokens:

- ``cls``, ``sep``: the share of a row's attention on [CLS], on [SEP] (all [SEP]s of a pair);
- ``previous``, ``next``, ``self``: the weight on the token just before, just after, on itself
  (averaged over the queries that have such a neighbour);
- ``same_word``: for queries that are a piece of a split word ("un", "##for", ...), the share
  on the *other* pieces of that word; NaN for an example without a split word;
- ``entropy``: the entropy of the row in nats, between 0 (all weight on one token) and
  ln T (uniform). Heads that look "broadly" have high entropy.
"""
from __future__ import annotations

import math

import torch

from .maps import AttentionMaps

STATISTICS = ("cls", "sep", "previous", "next", "self", "same_word", "entropy")


def head_statistics(attention: AttentionMaps) -> dict[str, torch.Tensor]:
    """Per example and head, where the attention goes: AttentionMaps of N examples ->
    {statistic: N x layers x heads} for each name in ``STATISTICS``."""
    if not isinstance(attention, AttentionMaps):
        raise TypeError(f"head_statistics takes the AttentionMaps of attention_maps(...), got {type(attention).__name__}")
    if len(attention) == 0:
        raise ValueError("no examples: attention_maps returned nothing to summarise")
    rows = {name: [] for name in STATISTICS}
    for a, cls, sep, word_ids in zip(attention.maps, attention.cls, attention.sep, attention.word_ids):
        a = a.double()  # L x H x T x T
        rows["cls"].append(a[..., cls].sum(-1).mean(-1))
        rows["sep"].append(a[..., sep].sum(-1).mean(-1))
        for name, offset in (("previous", -1), ("next", 1), ("self", 0)):
            rows[name].append(_mean_or_nan(torch.diagonal(a, offset=offset, dim1=-2, dim2=-1), a))
        rows["same_word"].append(_same_word(a, word_ids))
        # entr(p) = -p ln p, and 0 at p = 0: rows with exact zeros (padding removed) are fine.
        rows["entropy"].append(torch.special.entr(a).sum(-1).mean(-1))
    return {name: torch.stack(values) for name, values in rows.items()}


def _mean_or_nan(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if values.shape[-1] == 0:
        return torch.full(like.shape[:2], math.nan, dtype=like.dtype)
    return values.mean(-1)


def _same_word(a: torch.Tensor, word_ids: list[int | None]) -> torch.Tensor:
    w = torch.tensor([-1 if i is None else i for i in word_ids])
    same = (w[:, None] == w[None, :]) & (w[:, None] >= 0) & ~torch.eye(len(w), dtype=torch.bool)
    queries = same.any(-1)  # pieces of a word that has more than one piece
    if not queries.any():
        return torch.full(a.shape[:2], math.nan, dtype=a.dtype)
    return (a * same).sum(-1)[..., queries].mean(-1)


def heads_table(stats: dict[str, torch.Tensor]):
    """A pandas DataFrame, one row per (layer, head): the mean of each statistic over the
    examples and its standard deviation (``<name>_sd``), NaNs (no split word) left out."""
    import pandas as pd

    first = next(iter(stats.values()))
    _, n_layers, n_heads = first.shape
    data = {}
    for name, values in stats.items():
        v = values.double()
        valid = ~torch.isnan(v)
        count = valid.sum(0).clamp(min=1)
        mean = torch.where(valid, v, 0.0).sum(0) / count
        var = torch.where(valid, (v - mean) ** 2, 0.0).sum(0) / (count - 1).clamp(min=1)
        mean = torch.where(valid.any(0), mean, math.nan)
        data[name] = mean.flatten().numpy()
        data[f"{name}_sd"] = var.sqrt().flatten().numpy()
    index = pd.MultiIndex.from_product([range(n_layers), range(n_heads)], names=["layer", "head"])
    return pd.DataFrame(data, index=index)
