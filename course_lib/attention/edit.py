"""Run a BERT-family model with attention weights of our choosing (for counterfactual tests).

Jain and Wallace (2019) ask whether other attention weights would give the same prediction.
``attention_replaced`` answers it without touching the model's code: a forward hook on each
chosen self-attention module recomputes the module's output as ``edit(weights) @ values``.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .maps import EAGER_HINT

Edit = Callable[[torch.Tensor], torch.Tensor]


def self_attention_modules(model: nn.Module) -> list[nn.Module]:
    """The self-attention modules of a BERT-family model (BERT, RoBERTa, ELECTRA, MiniLM...),
    in layer order: those with ``query``, ``key`` and ``value`` projections."""
    found = [
        m for m in model.modules()
        if all(isinstance(getattr(m, p, None), nn.Linear) for p in ("query", "key", "value"))
        and hasattr(m, "attention_head_size")
    ]
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no BERT-style self-attention modules (with query, key and "
            "value projections and attention_head_size): attention_replaced supports the BERT family"
        )
    return found


@contextlib.contextmanager
def attention_replaced(model: nn.Module, edit: Edit, layers: int | Sequence[int] | None = None) -> Iterator[None]:
    """Inside the block, the self-attention of ``layers`` (all when None) mixes its values with
    ``edit(weights)`` instead of its own weights: edit maps N x heads x T x T -> N x heads x T x T.

    The model must use eager attention. The edited weights are also what ``output_attentions``
    returns. Hooks are removed on leaving the block, also after an error.
    """
    modules = self_attention_modules(model)
    chosen = range(len(modules)) if layers is None else [layers] if isinstance(layers, int) else list(layers)
    bad = [i for i in chosen if not -len(modules) <= i < len(modules)]
    if bad:
        raise ValueError(f"layers {bad} out of range: the model has {len(modules)} attention layers (0 to {len(modules) - 1})")

    def hook(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise ValueError(f"the attention module returned no weights to edit: {EAGER_HINT}")
        new = edit(weights)
        if not isinstance(new, torch.Tensor) or new.shape != weights.shape:
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            raise ValueError(f"edit must return a tensor shaped like the weights {tuple(weights.shape)}, got {got}")
        head_shape = (*hidden.shape[:-1], -1, module.attention_head_size)
        values = module.value(hidden).view(head_shape).transpose(1, 2)  # N x heads x T x d
        mixed = torch.matmul(new.to(values.dtype), values).transpose(1, 2).reshape(*hidden.shape[:-1], -1)
        return (mixed, new, *output[2:])

    handles = []
    try:
        for i in chosen:
            # prepend: run before transformers' own output-recording hooks, so that the
            # attentions it returns are the edited ones.
            handles.append(modules[i].register_forward_hook(hook, with_kwargs=True, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
