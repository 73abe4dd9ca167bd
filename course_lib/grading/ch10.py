"""Autograder for exercises/10_attention_in_bert: one head's attention from its queries and keys,
finding a head from statistics, what an average over heads does, and reasoning beyond the
chapter (a bug, causal attention, a permuted sink).

The function item's ``collect`` step (the student's process) calls ``head_attention`` on seeded
float64 queries and keys built here; its checks (trusted process) rebuild them and compare with
the reference below. The other items are answers to questions; their values are derived in
the comments (and recomputed in tests/test_grading_ch10.py where a computation gives them).
"""
from __future__ import annotations

import functools

import torch

from .checks import Fail, Got, Item, assert_close, check, choice_answer, number_answer

EXERCISE = "10_attention_in_bert"


# --- item 1: head_attention ------------------------------------------------------------------


def _qk(seed: int, n: int, heads: int, t: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Scaled up so that the 1 / sqrt(d) factor and the softmax's axis change the result a lot.
    q = 2.0 * torch.randn((n, heads, t, d), generator=g, dtype=torch.float64)
    k = 2.0 * torch.randn((n, heads, t, d), generator=g, dtype=torch.float64)
    return q, k


PLAIN = dict(seed=0, n=2, heads=3, t=5, d=16)
MASKED = dict(seed=1, n=2, heads=2, t=6, d=8)


def _mask() -> torch.Tensor:
    """The second example has two padding positions at the end."""
    return torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])


def reference_head_attention(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax over the keys of q k^T / sqrt(d_head), padded keys (mask 0) excluded:
    N x heads x T x d, N x heads x T x d, N x T -> N x heads x T x T."""
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    return scores.softmax(dim=-1)


def collect_head_attention(student) -> dict:
    """Student's process: head_attention with and without a mask, and what it did to its inputs."""
    out = {}
    q, k = _qk(**PLAIN)
    gq, gk = q.clone(), k.clone()
    out["plain"] = student.call("head_attention", gq, gk)
    out["plain:unchanged"] = bool(torch.equal(gq, q) and torch.equal(gk, k))
    q, k = _qk(**MASKED)
    mask = _mask()
    gq, gk, gm = q.clone(), k.clone(), mask.clone()
    out["masked"] = student.call("head_attention", gq, gk, gm)
    out["masked:unchanged"] = bool(torch.equal(gq, q) and torch.equal(gk, k) and torch.equal(gm, mask))
    return out


@functools.lru_cache(maxsize=None)
def _want(key: str) -> torch.Tensor:
    if key == "plain":
        return reference_head_attention(*_qk(**PLAIN))
    return reference_head_attention(*_qk(**MASKED), _mask())


@check("each row is a probability distribution over the keys")
def _ha_rows(got: Got) -> None:
    want = _want("plain")
    t = got.tensor("plain", like=want, what="head_attention(q, k)")
    if (t < 0).any():
        raise Fail("head_attention(q, k) has negative weights: attention weights come out of a softmax")
    rows, cols = t.sum(-1), t.sum(-2)
    if not torch.allclose(rows, torch.ones_like(rows), atol=1e-9):
        hint = " (the columns do: the softmax ran over the queries, dim=-2)" if torch.allclose(
            cols, torch.ones_like(cols), atol=1e-9) else ""
        raise Fail(f"the rows of head_attention(q, k) do not sum to 1{hint}: the softmax must run "
                   "over the keys, the last dimension")


@check("matches softmax(q k^T / sqrt(d_head)) without a mask", points=2)
def _ha_plain(got: Got) -> None:
    want = _want("plain")
    what = "head_attention(q, k) for 2 examples x 3 heads x 5 tokens, d_head = 16"
    assert_close(got.tensor("plain", like=want, what=what), want, what,
                 hint="scores = q @ k.transpose(-1, -2) divided by the square root of the head size "
                      "(q.shape[-1], 16 here), then a softmax over the last dimension")
    if not got.flag("plain:unchanged"):
        raise Fail("changed q or k in place: work on new tensors")


@check("padded keys get no weight, and the rest matches", points=2)
def _ha_masked(got: Got) -> None:
    want = _want("masked")
    what = "head_attention(q, k, mask) with two padding positions in the second example"
    t = got.tensor("masked", like=want, what=what)
    on_padding = float(t[1, :, :, 4:].abs().max())
    if on_padding > 1e-12:
        raise Fail(f"{what} puts weight up to {on_padding:.3g} on the padding: give padded keys a score "
                   "of -inf (or a very large negative number) before the softmax")
    assert_close(t, want, what, hint="the real tokens' weights are the softmax over the real keys only")
    if not got.flag("masked:unchanged"):
        raise Fail("changed q, k or the mask in place: work on new tensors")


HEAD_ATTENTION = Item(
    "head_attention",
    checks=(_ha_rows, _ha_plain, _ha_masked),
    collect=collect_head_attention,
)


# --- item 2: find a head from its statistics -------------------------------------------------

# From cl.head_statistics over the first 100 training sentences of the sentiment corpus, MiniLM:
# mean weight on the previous token, head 0.2: 1.00, then head 2.11: 0.351, head 1.9: 0.322.
# tests/test_grading_ch10.py recomputes them.
SECOND_PREVIOUS_HEAD = (2, 11)

FIND_HEADS = Item(
    "find_heads",
    checks=(
        number_answer("answer_prev_layer", SECOND_PREVIOUS_HEAD[0], "layer of the runner-up previous-token head",
                      "sort the heads by their mean `previous` statistic over the 100 sentences and "
                      "take the first one after head 0.2", tol=0),
        number_answer("answer_prev_head", SECOND_PREVIOUS_HEAD[1], "index of the runner-up previous-token head",
                      "sort the heads by their mean `previous` statistic over the 100 sentences and "
                      "take the first one after head 0.2; heads are numbered from 0 within their layer",
                      tol=0),
        choice_answer("answer_consistent", "C", ("A", "B", "C", "D"), "what says whether a head does it every time",
                      "a mean of 0.35 can come from a head that always puts 0.35 there or from one that "
                      "puts 1.0 there in a third of the sentences: you need the spread over sentences"),
    ),
)


# --- item 3: what averaging over heads does --------------------------------------------------

# 12 heads over T = 8 tokens: head 0 puts all of row i on token i - 1 (row 0 on itself), the
# other 11 put every row on [CLS] (token 0). Averaged over the heads:
# previous token, over rows 1..7: row 1's previous token *is* [CLS], so every head gives it 1;
#   rows 2..7 get 1/12 (head 0 only): (1 + 6/12) / 7 = 3/14.
# [CLS], over rows 0..7: head 0 gives rows 0 and 1 (2 of 8), the others every row:
#   (2/8 + 11) / 12 = 0.9375.
AVERAGE_PREVIOUS = 3 / 14
AVERAGE_CLS = (2 / 8 + 11) / 12

AVERAGING = Item(
    "averaging",
    checks=(
        number_answer("answer_avg_previous", AVERAGE_PREVIOUS, "the average's weight on the previous token",
                      "average the 12 maps first, then take the previous-token weight of rows 1 to 7; "
                      "look closely at row 1, whose previous token is [CLS]", tol=0.005),
        number_answer("answer_avg_cls", AVERAGE_CLS, "the average's share on [CLS]",
                      "the [CLS] heads give 1 in every row; the previous-token head gives [CLS] the "
                      "rows of [CLS] itself and of the token after it", tol=0.005),
        choice_answer("answer_average_reading", "B", ("A", "B", "C", "D"), "reading the average",
                      "the same average map comes from one sharp head among idle ones or from many "
                      "heads that each do a little: only the individual heads can tell them apart"),
    ),
)


# --- item 4: beyond the chapter --------------------------------------------------------------

BEYOND = Item(
    "beyond_the_chapter",
    checks=(
        choice_answer("answer_bug", "D", ("A", "B", "C", "D"), "the symptom of softmax(dim=-2)",
                      "dim=-2 is the query axis: the normalisation then runs down each column"),
        number_answer("answer_causal_next", 0.0, "the next-token statistic of a causal model",
                      "a causal mask gives every key after the query a score of -inf", tol=1e-9),
        number_answer("answer_causal_first", 1.0, "the first token's weight on itself in a causal model",
                      "the first token may attend only to the tokens up to itself", tol=1e-9),
        choice_answer("answer_sink_permuted", "A", ("A", "B", "C", "D"), "permuting a sink head",
                      "what a head adds is the weighted sum of f(x_j): the same 0.9 now multiplies a "
                      "vector about 27 times longer"),
    ),
)

ITEMS = (HEAD_ATTENTION, FIND_HEADS, AVERAGING, BEYOND)
