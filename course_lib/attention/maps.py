"""Attention weights of a Hugging Face encoder, per example, with padding removed.

``attention_maps(model, texts, tokenizer)`` runs the model with ``output_attentions=True`` and
returns, for every example, one layers x heads x T x T tensor: row ``i`` is the distribution
of query token ``i`` ("from") over the key tokens ("to"), so every row sums to 1. Padding
positions are cut away, so ``T`` is the example's own length; [CLS], [SEP] and the other
special tokens are kept and marked, and every token knows which word it is a piece of.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn

from ..core import batches, preserved_state, warn_if_training

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EAGER_HINT = (
    'load the model with eager attention: AutoModel.from_pretrained(name, attn_implementation="eager"), '
    'or switch a loaded one with model.set_attn_implementation("eager")'
)


@dataclass
class AttentionMaps:
    """The attention of N examples. ``maps[i]``: layers x heads x T_i x T_i (rows: queries,
    columns: keys; padding removed). ``tokens[i]``, ``word_ids[i]`` (None for special tokens)
    and the boolean masks ``special[i]``, ``cls[i]``, ``sep[i]`` all have length T_i."""

    maps: list[torch.Tensor]
    tokens: list[list[str]]
    word_ids: list[list[int | None]]
    special: list[torch.Tensor]
    cls: list[torch.Tensor]
    sep: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.maps)

    @property
    def layers(self) -> int:
        return self.maps[0].shape[0]

    @property
    def heads(self) -> int:
        return self.maps[0].shape[1]

    def select(self, index: int | slice | Sequence[int]) -> "AttentionMaps":
        """The examples at ``index`` (an int, a slice or a list of ints), as AttentionMaps."""
        if isinstance(index, int):
            index = [index]
        idx = range(len(self))[index] if isinstance(index, slice) else list(index)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return AttentionMaps(*(pick(getattr(self, f)) for f in ("maps", "tokens", "word_ids", "special", "cls", "sep")))


def attention_maps(
    model: nn.Module,
    inputs: str | Sequence[str] | Mapping[str, torch.Tensor],
    tokenizer,
    *,
    batch_size: int | None = 32,
) -> AttentionMaps:
    """Self-attention weights of every layer and head, one tensor per example.

    inputs: a string, N strings, or a tokenizer's output for them (``input_ids`` and
    ``attention_mask``, N x T, any padding side) -> :class:`AttentionMaps` with ``maps[i]``
    layers x heads x T_i x T_i. ``model`` is a Hugging Face encoder (or a model that, like
    ``SentimentClassifier``, returns ``.attentions`` when called with ``output_attentions=True``)
    loaded with eager attention; ``batch_size`` examples go through the model at a time.
    """
    if tokenizer is None or not hasattr(tokenizer, "convert_ids_to_tokens"):
        raise TypeError(
            "attention_maps needs the model's tokenizer (to tokenize strings and name the tokens), "
            f"got {type(tokenizer).__name__}: pass e.g. loaded.tokenizer"
        )
    if isinstance(inputs, str):
        inputs = [inputs]
    if isinstance(inputs, Mapping):
        if "input_ids" not in inputs:
            raise ValueError(f"inputs must hold 'input_ids' (N x T); got the keys {sorted(inputs)}")
        ids = torch.as_tensor(inputs["input_ids"])
        if ids.dim() != 2:
            raise ValueError(f"input_ids must be N x T, got shape {tuple(ids.shape)}: add the batch dimension")
        # A fast tokenizer's output knows the word of every piece; a plain dict does not.
        knows_words = bool(getattr(inputs, "encodings", None))
        chunks = [
            ({k: torch.as_tensor(inputs[k])[s] for k in MODEL_INPUTS if k in inputs},
             [inputs.word_ids(i) for i in range(s.start, s.stop)] if knows_words else None)
            for s in batches(ids.shape[0], batch_size)
        ]
    elif isinstance(inputs, Sequence) and inputs and all(isinstance(t, str) for t in inputs):
        chunks = []
        for s in batches(len(inputs), batch_size):
            enc = tokenizer(list(inputs[s]), padding=True, return_tensors="pt")
            word_ids = [enc.word_ids(i) for i in range(len(enc["input_ids"]))] if enc.encodings else None
            chunks.append(({k: enc[k] for k in MODEL_INPUTS if k in enc}, word_ids))
    else:
        raise TypeError(
            "inputs must be a string, a non-empty list of strings, or a tokenizer's output "
            f"(a dict with input_ids N x T), got {type(inputs).__name__}"
        )

    accepted = _forward_arguments(model)
    warn_if_training(model)  # dropout on the attention probabilities would make every map random
    device = next(model.parameters()).device
    result = AttentionMaps([], [], [], [], [], [])
    with preserved_state(model), torch.no_grad():
        for batch, word_ids in chunks:
            ids = batch["input_ids"].long()
            mask = batch.get("attention_mask")
            mask = torch.ones_like(ids) if mask is None else torch.as_tensor(mask)
            kwargs = {k: torch.as_tensor(v).to(device) for k, v in batch.items() if k in accepted}
            kwargs["input_ids"], kwargs["attention_mask"] = ids.to(device), mask.to(device)
            stacked = torch.stack(_attentions(model, kwargs), dim=1).cpu()  # N x L x H x T x T
            for i in range(ids.shape[0]):
                keep = mask[i].bool()
                tokens = tokenizer.convert_ids_to_tokens(ids[i][keep].tolist())
                special = _special_mask(ids[i][keep], tokenizer)
                wid = word_ids[i] if word_ids is not None else None
                wid = [w for w, k in zip(wid, keep.tolist()) if k] if wid is not None else _word_ids_from_pieces(tokens, special)
                result.maps.append(stacked[i][:, :, keep][:, :, :, keep].contiguous())
                result.tokens.append(tokens)
                result.word_ids.append(wid)
                result.special.append(special)
                result.cls.append(ids[i][keep] == _token_id(tokenizer, "cls"))
                result.sep.append(ids[i][keep] == _token_id(tokenizer, "sep"))
    return result


def _forward_arguments(model: nn.Module) -> set[str]:
    params = inspect.signature(model.forward).parameters
    if "output_attentions" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise TypeError(
            f"{type(model).__name__}.forward takes no output_attentions argument: attention_maps needs a "
            "Hugging Face model (or one that returns .attentions when called with output_attentions=True)"
        )
    return {"token_type_ids"} & set(params)


def _attentions(model: nn.Module, kwargs: dict) -> list[torch.Tensor]:
    out = model(**kwargs, output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        impl = _attn_implementation(model)
        raise ValueError(
            f"the model returned no attention weights (its attention implementation is {impl!r}; "
            f"fused kernels such as 'sdpa' never form the T x T matrix): {EAGER_HINT}"
        )
    return list(attentions)


def _attn_implementation(model: nn.Module) -> str | None:
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            return config._attn_implementation
    return None


def _token_id(tokenizer, which: str) -> int:
    value = getattr(tokenizer, f"{which}_token_id", None)
    return -1 if value is None else int(value)  # -1 never matches: the tokenizer has no such token


def _special_mask(ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """True where ``ids`` holds a special token ([CLS], [SEP], [PAD], [MASK], ...) but not [UNK],
    which stands for a real word."""
    special = set(getattr(tokenizer, "all_special_ids", [])) - {getattr(tokenizer, "unk_token_id", None)}
    return torch.tensor([int(i) in special for i in ids.tolist()], dtype=torch.bool)


def _word_ids_from_pieces(tokens: list[str], special: torch.Tensor) -> list[int | None]:
    """Word index of each token, read from the piece markers when the tokenizer cannot say:
    WordPiece marks continuations ("##ing"), byte-level BPE and SentencePiece mark word starts
    ("Ġword", "▁word")."""
    starts_marked = any(t.startswith(("Ġ", "▁")) for t in tokens)
    word_ids, word, previous_special = [], -1, True
    for tok, is_special in zip(tokens, special.tolist()):
        if is_special:
            word_ids.append(None)
            previous_special = True
            continue
        if starts_marked:
            new_word = tok.startswith(("Ġ", "▁")) or previous_special
        else:
            new_word = not tok.startswith("##") or previous_special
        word += int(new_word)
        word_ids.append(word)
        previous_special = False
    return word_ids


def average_attention(maps: torch.Tensor, layers=None, heads=None) -> torch.Tensor:
    """Mean attention over the chosen ``layers`` and ``heads`` (all when None):
    layers x heads x T x T -> T x T. Rows still sum to 1."""
    if maps.dim() != 4:
        raise ValueError(f"maps must be layers x heads x T x T, got shape {tuple(maps.shape)}")
    layer_idx = range(maps.shape[0]) if layers is None else layers
    head_idx = range(maps.shape[1]) if heads is None else heads
    return maps[list(_as_list(layer_idx))][:, list(_as_list(head_idx))].mean(dim=(0, 1))


def _as_list(index) -> list[int]:
    return [index] if isinstance(index, int) else list(index)


def word_level_attention(
    attention: torch.Tensor, tokens: Sequence[str], word_ids: Sequence[int | None]
) -> tuple[torch.Tensor, list[str]]:
    """Attention between words instead of word pieces (Clark et al. 2019): ... x T x T -> ... x W x W.

    The attention *to* a split word is the sum over its pieces, the attention *from* it is the
    mean over its pieces, so every row still sums to 1. Special tokens stay units of their own.
    Returns the word-level maps and the words (pieces joined, "##" removed).
    """
    if attention.shape[-1] != len(tokens) or len(tokens) != len(word_ids):
        raise ValueError(
            f"attention is {tuple(attention.shape)} but there are {len(tokens)} tokens and "
            f"{len(word_ids)} word ids: they must describe the same T positions"
        )
    units, words, seen = [], [], {}
    for pos, (tok, w) in enumerate(zip(tokens, word_ids)):
        if w is None or w not in seen:
            if w is not None:
                seen[w] = len(units)
            units.append([pos])
            words.append(tok)
        else:
            units[seen[w]].append(pos)
            piece = tok[2:] if tok.startswith("##") else tok
            words[seen[w]] += piece
    # A T x W matrix that sums the key side over pieces, and a W x T one that averages the queries.
    to_words = torch.zeros(len(tokens), len(units), dtype=attention.dtype)
    from_words = torch.zeros(len(units), len(tokens), dtype=attention.dtype)
    for u, positions in enumerate(units):
        to_words[positions, u] = 1.0
        from_words[u, positions] = 1.0 / len(positions)
    return from_words @ attention @ to_words, words
