"""The answer keys of chapter 10's exercises, recomputed from their definitions, the course's
data and model, so that a change of either cannot leave a stale key behind; and the reference
``head_attention`` checked against a real BERT layer."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: nothing downloads

import pytest
import torch

import course_lib as cl
from course_lib.grading import ch10

pytestmark = pytest.mark.usefixtures("deterministic")

TOKENS = ["[CLS]", "the", "film", "was", "not", "good", ".", "[SEP]"]


def _maps_of(layer_maps: torch.Tensor) -> cl.AttentionMaps:
    """AttentionMaps of one sentence (TOKENS) from a layers x heads x T x T tensor."""
    return cl.AttentionMaps(
        maps=[layer_maps.double()], tokens=[TOKENS], word_ids=[[None, 0, 1, 2, 3, 4, 5, None]],
        special=[torch.tensor([t in ("[CLS]", "[SEP]") for t in TOKENS])],
        cls=[torch.tensor([t == "[CLS]" for t in TOKENS])], sep=[torch.tensor([t == "[SEP]" for t in TOKENS])],
    )


def test_reference_head_attention_equals_a_bert_layers_own_weights():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=16)
    model = BertModel._from_config(config, attn_implementation="eager").double().eval()
    ids = torch.tensor([[2, 5, 6, 7, 3, 0], [2, 8, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    attention = model.encoder.layer[0].attention.self
    captured = {}
    with cl.Hooks() as hooks:
        hooks.forward(attention, lambda module, args, output: captured.update(h=args[0]))
        with torch.no_grad():
            reported = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions[0]
    h = captured["h"]

    def split(x):
        return x.view(2, 6, 4, 4).transpose(1, 2)

    with torch.no_grad():
        ours = ch10.reference_head_attention(split(attention.query(h)), split(attention.key(h)), mask)
    torch.testing.assert_close(ours, reported, atol=1e-12, rtol=0)


def test_second_previous_token_head_key_matches_minilm_on_the_training_sentences():
    encoder = cl.load_model("minilm")
    texts = cl.load_dataset("sentiment").texts("train")[:100]
    table = cl.heads_table(cl.head_statistics(cl.attention_maps(encoder.model, texts, encoder.tokenizer)))
    ranked = table["previous"].sort_values(ascending=False)
    assert ranked.index[0] == (0, 2)
    assert ranked.index[1] == ch10.SECOND_PREVIOUS_HEAD
    # The key is not a coin toss between two heads.
    assert ranked.iloc[1] - ranked.iloc[2] > 0.01


def test_averaging_keys_are_what_head_statistics_measures_on_the_average():
    t = len(TOKENS)
    previous = torch.zeros(t, t)
    previous[0, 0] = 1.0
    previous[torch.arange(1, t), torch.arange(t - 1)] = 1.0
    to_cls = torch.zeros(t, t)
    to_cls[:, 0] = 1.0
    layer = torch.stack([previous] + [to_cls] * 11)[None].double()
    stats = cl.head_statistics(_maps_of(cl.average_attention(layer)[None, None]))
    assert float(stats["previous"][0, 0, 0]) == pytest.approx(ch10.AVERAGE_PREVIOUS, abs=1e-12)
    assert float(stats["cls"][0, 0, 0]) == pytest.approx(ch10.AVERAGE_CLS, abs=1e-12)
    # The naive answer (1/12, forgetting that row 1's previous token is [CLS]) is marked wrong.
    assert abs(1 / 12 - ch10.AVERAGE_PREVIOUS) > 0.005


def test_causal_keys_hold_for_any_causal_attention():
    g = torch.Generator().manual_seed(0)
    t = len(TOKENS)
    q, k = torch.randn((2, 1, 3, t, 4), generator=g, dtype=torch.float64)
    scores = q @ k.transpose(-1, -2)
    future = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
    causal = scores.masked_fill(future, float("-inf")).softmax(-1)[0]  # 1 layer x 3 heads x T x T
    stats = cl.head_statistics(_maps_of(causal))
    assert stats["next"].abs().max() == 0.0  # answer_causal_next
    assert torch.equal(causal[..., 0, 0], torch.ones(3, dtype=torch.float64))  # answer_causal_first


def test_softmax_over_the_queries_makes_the_columns_sum_to_one():
    q, k = ch10._qk(**ch10.PLAIN)
    wrong = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(dim=-2)  # the bug of answer_bug
    torch.testing.assert_close(wrong.sum(-2), torch.ones(wrong.shape[:-2] + wrong.shape[-1:], dtype=wrong.dtype))
    assert (wrong.sum(-1) - 1).abs().max() > 0.1
