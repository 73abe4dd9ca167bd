"""Attention maps, head statistics, word-level attention, edited attention and their drawing.

Tiny untrained float64 encoders of four architectures (BERT, DistilBERT, RoBERTa, ELECTRA) with
a 30-word WordPiece vocabulary built here, so nothing downloads. The reference is what users
would otherwise do: call the model with ``output_attentions=True`` one unpadded sentence at a
time and pass the result to bertviz's ``format_attention``.

Tolerances (float64): ``ATOL = 1e-12`` for our maps against that reference (padding only adds
exact zeros to the softmax, so only summation order may differ) and for anything recomputed.
"""
from __future__ import annotations

import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from bertviz.util import format_attention
from transformers import (
    BertConfig, BertModel, BertTokenizer, DistilBertConfig, DistilBertModel, ElectraConfig,
    ElectraModel, RobertaConfig, RobertaModel,
)

import course_lib as cl
from course_lib.attention.maps import _word_ids_from_pieces
from course_lib.zoo.text import SentimentClassifier

pytestmark = pytest.mark.usefixtures("deterministic")

ATOL = 1e-12
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "not", "good", "bad", ".",
    ",", "but", "un", "##for", "##get", "##table", "plot", "end", "##ing", "awful", "acting",
    "never", "boring", "a", "great", "story", "##s", "it",
]  # fmt: skip
SENTENCES = [
    "The film was not good.",
    "Unforgettable ending, but the acting was awful.",
    "A great story.",
]
ARCHITECTURES = ("bert", "distilbert", "roberta", "electra")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, do_lower_case=True)


def make_encoder(kind: str = "bert", attn: str = "eager", seed: int = 0, layers: int = 2):
    """A tiny untrained encoder in float64 and eval mode, carrying state a method must not
    disturb: a pre-existing .grad on the first parameter and a frozen last parameter."""
    common = dict(vocab_size=len(VOCAB), max_position_embeddings=40)
    bert_like = dict(hidden_size=16, num_hidden_layers=layers, num_attention_heads=4, intermediate_size=32)
    config, cls = {
        "bert": (BertConfig(**common, **bert_like), BertModel),
        "distilbert": (DistilBertConfig(**common, dim=16, n_layers=layers, n_heads=4, hidden_dim=32), DistilBertModel),
        "roberta": (RobertaConfig(**common, **bert_like, pad_token_id=0), RobertaModel),
        "electra": (ElectraConfig(**common, **bert_like, embedding_size=12), ElectraModel),
    }[kind]
    torch.manual_seed(seed)
    model = cls._from_config(config, attn_implementation=attn).double().eval()
    params = list(model.parameters())
    params[0].grad = torch.randn(params[0].shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    params[-1].requires_grad_(False)
    # transformers installs its own output-recording hooks on a model's first call and keeps
    # them; call once so that the leftover checks see only what course_lib does.
    with torch.no_grad():
        model(input_ids=torch.tensor([[2, 5, 3]]), output_attentions=True)
    return model


@pytest.fixture(params=ARCHITECTURES)
def encoder(request):
    return make_encoder(request.param)


def reference_maps(model, tokenizer, sentence: str) -> torch.Tensor:
    """What a user would write: one sentence, no padding, bertviz's format_attention."""
    enc = tokenizer(sentence, return_tensors="pt")
    kwargs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    with torch.no_grad():
        return format_attention(model(**kwargs, output_attentions=True).attentions)


# ------------------------------------------------------------ agreement with the reference
def test_maps_equal_each_sentence_run_alone_through_bertviz_format_attention(encoder, tokenizer):
    maps = cl.attention_maps(encoder, SENTENCES, tokenizer)
    assert len(maps) == 3 and maps.layers == 2 and maps.heads == 4
    lengths = [len(tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert len(set(lengths)) > 1, "the sentences must need padding for this test to mean anything"
    for i, sentence in enumerate(SENTENCES):
        ref = reference_maps(encoder, tokenizer, sentence)
        assert maps.maps[i].shape == (2, 4, lengths[i], lengths[i])
        torch.testing.assert_close(maps.maps[i], ref, atol=ATOL, rtol=0)


def test_rows_sum_to_one_after_padding_is_removed(encoder, tokenizer):
    for m in cl.attention_maps(encoder, SENTENCES, tokenizer).maps:
        torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1], dtype=m.dtype), atol=ATOL, rtol=0)


def test_left_padding_gives_the_same_maps_as_right_padding(tokenizer):
    # BERT numbers positions from the start of the row, so left padding shifts them and changes
    # the maps themselves; what must hold is that the padding is found and cut on either side.
    model = make_encoder("bert")
    right = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    left_tok = BertTokenizer(vocab={w: i for i, w in enumerate(VOCAB)}, padding_side="left")
    left = left_tok(SENTENCES, padding=True, return_tensors="pt")
    assert (left["attention_mask"][:, 0] == 0).any() and (right["attention_mask"][:, -1] == 0).any()
    a, b = cl.attention_maps(model, right, tokenizer), cl.attention_maps(model, left, left_tok)
    assert a.tokens == b.tokens and a.word_ids == b.word_ids
    for ma, mb in zip(a.maps, b.maps):
        assert ma.shape == mb.shape
        torch.testing.assert_close(mb.sum(-1), torch.ones(mb.shape[:-1], dtype=mb.dtype), atol=ATOL, rtol=0)


def test_strings_and_the_tokenizers_output_give_the_same_maps(encoder, tokenizer):
    from_strings = cl.attention_maps(encoder, SENTENCES, tokenizer)
    from_ids = cl.attention_maps(encoder, tokenizer(SENTENCES, padding=True, return_tensors="pt"), tokenizer)
    plain_dict = dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))  # no word ids inside
    from_dict = cl.attention_maps(encoder, plain_dict, tokenizer)
    for other in (from_ids, from_dict):
        assert other.tokens == from_strings.tokens
        assert other.word_ids == from_strings.word_ids
        for a, b in zip(other.maps, from_strings.maps):
            torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


@pytest.mark.parametrize("batch_size", [1, 2, None])
def test_batch_size_does_not_change_the_maps(tokenizer, batch_size):
    model = make_encoder("bert")
    reference = cl.attention_maps(model, SENTENCES, tokenizer, batch_size=3)
    other = cl.attention_maps(model, SENTENCES, tokenizer, batch_size=batch_size)
    for a, b in zip(reference.maps, other.maps):
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_a_single_string_is_a_batch_of_one(tokenizer):
    model = make_encoder("bert")
    one = cl.attention_maps(model, SENTENCES[0], tokenizer)
    assert len(one) == 1 and one.tokens[0][0] == "[CLS]"


def test_a_classifier_that_returns_attentions_works_like_its_encoder(tokenizer):
    encoder = make_encoder("bert")
    classifier = SentimentClassifier(encoder).double().eval()
    a = cl.attention_maps(classifier, SENTENCES, tokenizer)
    b = cl.attention_maps(encoder, SENTENCES, tokenizer)
    for x, y in zip(a.maps, b.maps):
        torch.testing.assert_close(x, y, atol=ATOL, rtol=0)


# ------------------------------------------------------------- tokens, specials, word ids
def test_special_tokens_and_split_words_are_marked(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), SENTENCES, tokenizer)
    tokens = maps.tokens[1]
    assert tokens[:6] == ["[CLS]", "un", "##for", "##get", "##table", "end"]
    assert maps.word_ids[1][:8] == [None, 0, 0, 0, 0, 1, 1, 2]
    assert maps.cls[1].tolist() == [t == "[CLS]" for t in tokens]
    assert maps.sep[1].tolist() == [t == "[SEP]" for t in tokens]
    assert maps.special[1].tolist() == [t in ("[CLS]", "[SEP]") for t in tokens]
    assert "[PAD]" not in sum(maps.tokens, [])


def test_unknown_words_are_not_marked_special(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), "The zebra was good.", tokenizer)
    assert "[UNK]" in maps.tokens[0]
    assert not maps.special[0][maps.tokens[0].index("[UNK]")]


@pytest.mark.parametrize(
    "tokens, special, expected",
    [
        (["[CLS]", "un", "##for", "##get", "end", "##ing", "[SEP]"], [1, 0, 0, 0, 0, 0, 1], [None, 0, 0, 0, 1, 1, None]),
        (["<s>", "The", "Ġfilm", "Ġwas", "Ġun", "for", "get", "table", "</s>"], [1, 0, 0, 0, 0, 0, 0, 0, 1],
         [None, 0, 1, 2, 3, 3, 3, 3, None]),
        (["▁the", "▁film", "▁un", "for", "get", "</s>"], [0, 0, 0, 0, 0, 1], [0, 1, 2, 2, 2, None]),
    ],
    ids=["wordpiece", "byte-level-bpe", "sentencepiece"],
)
def test_word_ids_are_read_from_piece_markers_when_the_tokenizer_cannot_say(tokens, special, expected):
    assert _word_ids_from_pieces(tokens, torch.tensor(special, dtype=torch.bool)) == expected


# -------------------------------------------------------------------------- no leftovers
def test_attention_maps_leaves_no_trace_on_the_model(encoder, tokenizer, no_leftovers):
    check = no_leftovers(encoder)
    cl.attention_maps(encoder, SENTENCES, tokenizer)
    check()


def test_attention_maps_restores_training_mode_and_warns(tokenizer, no_leftovers):
    model = make_encoder("bert").train()
    check = no_leftovers(model)
    with pytest.warns(UserWarning, match="training mode"):
        cl.attention_maps(model, SENTENCES, tokenizer)
    check()
    assert model.training


# ------------------------------------------------------------------------- clear errors
def test_sdpa_attention_raises_and_says_how_to_load_the_model_eagerly(tokenizer):
    model = make_encoder("bert", attn="sdpa")
    with pytest.raises(ValueError, match=r"'sdpa'.*attn_implementation=\"eager\""):
        cl.attention_maps(model, SENTENCES, tokenizer)


def test_bad_inputs_get_clear_errors(tokenizer):
    model = make_encoder("bert")
    with pytest.raises(TypeError, match="tokenizer"):
        cl.attention_maps(model, SENTENCES, None)
    with pytest.raises(ValueError, match="N x T"):
        cl.attention_maps(model, {"input_ids": torch.tensor([2, 5, 3])}, tokenizer)
    with pytest.raises(ValueError, match="input_ids"):
        cl.attention_maps(model, {"ids": torch.tensor([[2, 5, 3]])}, tokenizer)
    with pytest.raises(TypeError, match="list of strings"):
        cl.attention_maps(model, [1, 2], tokenizer)
    with pytest.raises(TypeError, match="output_attentions"):
        cl.attention_maps(torch.nn.Linear(3, 3), SENTENCES, tokenizer)


# --------------------------------------------------------------------- head statistics
def _maps_of(matrices: list[torch.Tensor], tokens: list[list[str]], word_ids) -> cl.AttentionMaps:
    """AttentionMaps from hand-made T x T matrices (1 layer x 1 head each)."""
    return cl.AttentionMaps(
        maps=[m[None, None].double() for m in matrices],
        tokens=tokens,
        word_ids=word_ids,
        special=[torch.tensor([t in ("[CLS]", "[SEP]") for t in ts]) for ts in tokens],
        cls=[torch.tensor([t == "[CLS]" for t in ts]) for ts in tokens],
        sep=[torch.tensor([t == "[SEP]" for t in ts]) for ts in tokens],
    )


def test_head_statistics_of_hand_made_heads_are_exact():
    tokens = ["[CLS]", "un", "##for", "good", "[SEP]"]
    word_ids = [None, 0, 0, 1, None]
    t = len(tokens)
    previous = torch.zeros(t, t)
    previous[0, 0] = 1.0
    previous[torch.arange(1, t), torch.arange(t - 1)] = 1.0  # every token looks one back
    to_sep = torch.zeros(t, t)
    to_sep[:, -1] = 1.0
    uniform = torch.full((t, t), 1.0 / t)
    stats = cl.head_statistics(_maps_of([previous, to_sep, uniform], [tokens] * 3, [word_ids] * 3))
    get = lambda name: stats[name][:, 0, 0].tolist()  # noqa: E731
    assert get("previous") == pytest.approx([1.0, 0.0, 0.2])
    assert get("next") == pytest.approx([0.0, 0.25, 0.2])  # to_sep: only "good" has [SEP] next
    assert get("sep") == pytest.approx([0.0, 1.0, 0.2])
    assert get("cls") == pytest.approx([0.4, 0.0, 0.2])  # rows 0 and 1 of `previous` hit [CLS]
    assert get("self") == pytest.approx([0.2, 0.2, 0.2])
    # "un" looks at [CLS] (no), "##for" looks at "un" (yes): mean over the two pieces = 0.5.
    assert get("same_word") == pytest.approx([0.5, 0.0, 0.2])
    assert get("entropy") == pytest.approx([0.0, 0.0, math.log(5)])


def test_same_word_is_nan_without_split_words_and_the_table_leaves_nans_out():
    tokens, word_ids = ["[CLS]", "good", "[SEP]"], [None, 0, None]
    split_tokens, split_ids = ["[CLS]", "un", "##for", "[SEP]"], [None, 0, 0, None]
    stats = cl.head_statistics(
        _maps_of([torch.full((3, 3), 1 / 3), torch.full((4, 4), 0.25)], [tokens, split_tokens], [word_ids, split_ids])
    )
    assert math.isnan(stats["same_word"][0, 0, 0]) and stats["same_word"][1, 0, 0] == pytest.approx(0.25)
    table = cl.heads_table(stats)
    assert table.loc[(0, 0), "same_word"] == pytest.approx(0.25)


def test_head_statistics_match_a_loop_over_rows_on_a_real_encoder(tokenizer):
    maps = cl.attention_maps(make_encoder("bert", layers=3), SENTENCES, tokenizer)
    stats = cl.head_statistics(maps)
    assert set(stats) == set(cl.STATISTICS) and stats["cls"].shape == (3, 3, 4)
    for n, (a, toks, wid) in enumerate(zip(maps.maps, maps.tokens, maps.word_ids)):
        t = len(toks)
        for layer in range(3):
            for head in range(4):
                m = a[layer, head]
                sep = [j for j in range(t) if toks[j] == "[SEP]"]
                assert stats["sep"][n, layer, head] == pytest.approx(np.mean([float(m[i, sep].sum()) for i in range(t)]), abs=ATOL)
                assert stats["previous"][n, layer, head] == pytest.approx(np.mean([float(m[i, i - 1]) for i in range(1, t)]), abs=ATOL)
                assert stats["next"][n, layer, head] == pytest.approx(np.mean([float(m[i, i + 1]) for i in range(t - 1)]), abs=ATOL)
                ent = np.mean([-sum(float(p) * math.log(float(p)) for p in m[i] if p > 0) for i in range(t)])
                assert stats["entropy"][n, layer, head] == pytest.approx(ent, abs=1e-10)
                pieces = [i for i in range(t) if wid[i] is not None and wid.count(wid[i]) > 1]
                same = [sum(float(m[i, j]) for j in range(t) if j != i and wid[j] == wid[i]) for i in pieces]
                got = float(stats["same_word"][n, layer, head])
                assert (math.isnan(got) and not same) or got == pytest.approx(np.mean(same), abs=ATOL)


def test_heads_table_has_the_mean_and_sample_sd_over_examples(tokenizer):
    stats = cl.head_statistics(cl.attention_maps(make_encoder("bert"), SENTENCES, tokenizer))
    table = cl.heads_table(stats)
    assert list(table.index.names) == ["layer", "head"] and len(table) == 2 * 4
    values = stats["sep"][:, 1, 2].numpy()
    assert table.loc[(1, 2), "sep"] == pytest.approx(values.mean(), abs=ATOL)
    assert table.loc[(1, 2), "sep_sd"] == pytest.approx(values.std(ddof=1), abs=ATOL)


def test_head_statistics_refuse_anything_but_attention_maps():
    with pytest.raises(TypeError, match="AttentionMaps"):
        cl.head_statistics(torch.rand(2, 2, 3, 3))


# ------------------------------------------------------------ averages and word level
def test_average_attention_is_the_mean_over_the_chosen_layers_and_heads(tokenizer):
    m = cl.attention_maps(make_encoder("bert"), SENTENCES[:1], tokenizer).maps[0]
    torch.testing.assert_close(cl.average_attention(m), m.mean(dim=(0, 1)), atol=ATOL, rtol=0)
    torch.testing.assert_close(cl.average_attention(m, layers=1, heads=[0, 3]), (m[1, 0] + m[1, 3]) / 2, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="layers x heads"):
        cl.average_attention(m[0])


def test_word_level_attention_sums_over_pieces_attended_and_averages_pieces_attending(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), SENTENCES[1], tokenizer)
    a, tokens, wid = maps.maps[0], maps.tokens[0], maps.word_ids[0]
    words_map, words = cl.word_level_attention(a, tokens, wid)
    assert words[:3] == ["[CLS]", "unforgettable", "ending"]
    assert words_map.shape == (*a.shape[:2], len(words), len(words))
    torch.testing.assert_close(words_map.sum(-1), torch.ones(words_map.shape[:-1], dtype=a.dtype), atol=ATOL, rtol=0)
    # "unforgettable" = pieces 1..4, "ending" = pieces 5..6, [CLS] = piece 0.
    expected = a[..., 1:5, :][..., 5:7].sum(-1).mean(-1)
    torch.testing.assert_close(words_map[..., 1, 2], expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(words_map[..., 0, 1], a[..., 0, 1:5].sum(-1), atol=ATOL, rtol=0)


def test_word_level_attention_without_split_words_is_the_same_map(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), SENTENCES[0], tokenizer)
    words_map, words = cl.word_level_attention(maps.maps[0], maps.tokens[0], maps.word_ids[0])
    assert words == maps.tokens[0]
    torch.testing.assert_close(words_map, maps.maps[0], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------- edited attention
def _run(model, tokenizer, sentences=SENTENCES):
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra"])
def test_the_identity_edit_changes_nothing(kind, tokenizer, no_leftovers):
    model = make_encoder(kind)
    check = no_leftovers(model)
    plain = _run(model, tokenizer)
    with cl.attention_replaced(model, lambda w: w):
        edited = _run(model, tokenizer)
    check()
    torch.testing.assert_close(edited.last_hidden_state, plain.last_hidden_state, atol=ATOL, rtol=0)


def test_uniform_attention_in_one_layer_mixes_the_mean_of_the_values(tokenizer):
    model = make_encoder("bert", layers=1)
    enc = tokenizer(SENTENCES[:1], return_tensors="pt")  # one sentence, no padding
    t = enc["input_ids"].shape[1]
    captured = {}
    attn = cl.self_attention_modules(model)[0]
    handle = attn.register_forward_hook(lambda m, args, out: captured.update(h=args[0]))
    try:
        with cl.attention_replaced(model, lambda w: torch.full_like(w, 1.0 / w.shape[-1])):
            with torch.no_grad():
                out = model(input_ids=enc["input_ids"], output_attentions=True)
    finally:
        handle.remove()
    assert out.attentions[0].shape == (1, 4, t, t)
    torch.testing.assert_close(out.attentions[0], torch.full((1, 4, t, t), 1.0 / t, dtype=torch.float64), atol=ATOL, rtol=0)
    # By hand: the self-attention output is the mean over tokens of the value vectors.
    with torch.no_grad():
        mean_value = attn.value(captured["h"]).mean(dim=1, keepdim=True).expand(1, t, 16)
        expected = model.encoder.layer[0].attention.output(mean_value, captured["h"])
        expected = model.encoder.layer[0].output(model.encoder.layer[0].intermediate(expected), expected)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=ATOL, rtol=0)


def test_only_the_chosen_layers_are_edited(tokenizer):
    model = make_encoder("bert", layers=3)
    plain = _run(model, tokenizer)
    with cl.attention_replaced(model, lambda w: w.flip(-1), layers=[1]):
        edited = _run(model, tokenizer)
    torch.testing.assert_close(edited.attentions[0], plain.attentions[0], atol=ATOL, rtol=0)
    assert (edited.attentions[1] - plain.attentions[1]).abs().max() > 1e-3
    assert (edited.last_hidden_state - plain.last_hidden_state).abs().max() > 1e-3


def test_edit_hooks_are_removed_after_an_error_and_errors_are_clear(tokenizer, no_leftovers):
    model = make_encoder("bert")
    check = no_leftovers(model)
    with pytest.raises(ValueError, match="shaped like the weights"):
        with cl.attention_replaced(model, lambda w: w[..., :-1]):
            _run(model, tokenizer)
    check()
    with pytest.raises(ValueError, match="out of range"):
        with cl.attention_replaced(model, lambda w: w, layers=5):
            pass
    with pytest.raises(ValueError, match="BERT"):
        with cl.attention_replaced(make_encoder("distilbert"), lambda w: w):
            pass
    sdpa = make_encoder("bert", attn="sdpa")
    with pytest.raises(ValueError, match="eager"):
        with cl.attention_replaced(sdpa, lambda w: w):
            _run(sdpa, tokenizer)
    check()


# ----------------------------------------------------------------------------- drawing
def test_show_attention_puts_the_tokens_on_both_axes_with_a_labelled_colourbar(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), SENTENCES[0], tokenizer)
    fig, ax = plt.subplots()
    artist = cl.show_attention(ax, maps.maps[0][1, 2], maps.tokens[0], title="layer 1, head 2")
    assert [t.get_text() for t in ax.get_xticklabels()] == maps.tokens[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == maps.tokens[0]
    assert artist.get_clim() == (0.0, 1.0)
    assert fig.axes[-1].get_ylabel() == "attention weight"
    np.testing.assert_allclose(np.asarray(artist.get_array()).reshape(maps.maps[0].shape[-2:]), maps.maps[0][1, 2].numpy())


def test_show_attention_says_when_it_clips(tokenizer):
    fig, ax = plt.subplots()
    cl.show_attention(ax, torch.eye(3), ["a", "b", "c"], vmax=0.5)
    assert "clipped at 0.50" in fig.axes[-1].get_ylabel()
    with pytest.raises(ValueError, match="2 tokens"):
        cl.show_attention(ax, torch.eye(3), ["a", "b"])


def test_attention_grid_draws_every_head_on_one_scale_with_one_colourbar(tokenizer):
    maps = cl.attention_maps(make_encoder("bert"), SENTENCES[0], tokenizer)
    fig = cl.attention_grid(maps.maps[0][0], maps.tokens[0], ncols=2, vmax=None)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert len(panels) == 4
    top = float(maps.maps[0][0].max())
    for ax in panels:
        assert ax.collections[0].get_clim() == pytest.approx((0.0, top))
    assert sum(ax.get_ylabel() == "attention weight" for ax in fig.axes) == 1
    assert [t.get_text() for t in panels[0].get_yticklabels()] == maps.tokens[0]
    assert all(t.get_text() == "" for t in panels[1].get_yticklabels())


def test_show_head_statistic_draws_layers_by_heads():
    fig, ax = plt.subplots()
    values = torch.rand(3, 4, generator=torch.Generator().manual_seed(0))
    artist = cl.show_head_statistic(ax, values, title="share on [SEP]")
    np.testing.assert_allclose(np.asarray(artist.get_array()).reshape(3, 4), values.double().numpy())
    assert ax.get_xlabel() == "head" and ax.get_ylabel() == "layer"
