"""The text models and the sentiment corpus: offline, deterministic, accurate, safe to load."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: nothing downloads

import json
import shutil
import socket

import pytest
import torch

from course_lib.zoo import WeightFileError, load_dataset, load_model
from course_lib.zoo import text


@pytest.fixture(scope="module", autouse=True)
def no_network_two_threads():
    """Every test here runs with sockets that cannot connect, on 2 threads, deterministic."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    def refuse(*args, **kwargs):
        raise OSError("the tests do not use the network")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


@pytest.fixture(scope="module")
def sentiment():
    return load_model("minilm_sentiment")


@pytest.fixture(scope="module")
def corpus():
    return load_dataset("sentiment")


def test_minilm_returns_6_layers_of_attention_rows_summing_to_1(minilm):
    inputs = minilm.preprocess(["The film was not good.", "Never boring, but the ending was awful."])
    with torch.no_grad():
        out = minilm.model(**inputs, output_attentions=True)
    n, t = inputs["input_ids"].shape
    assert minilm.labels == [] and minilm.tokenizer is not None
    assert len(out.attentions) == 6
    for a in out.attentions:
        assert a.shape == (n, 12, t, t)
        torch.testing.assert_close(a.sum(-1), torch.ones(n, 12, t), atol=1e-5, rtol=0)
    # Padding gets no attention: the first sentence is shorter than the second.
    pad = inputs["attention_mask"][0] == 0
    assert pad.any() and out.attentions[0][0][:, :, pad].abs().max() < 1e-6


def test_sentiment_corpus_is_deterministic_and_splits_do_not_overlap(corpus):
    again = text.make_sentiment_corpus(seed=0)
    assert again.train == corpus.train and again.test == corpus.test
    assert text.make_sentiment_corpus(seed=1).train != corpus.train
    train, test = set(corpus.texts("train")), set(corpus.texts("test"))
    assert len(train) == len(corpus.train) == 2000 and len(test) == len(corpus.test) == 600
    assert not train & test
    for split in ("train", "test"):
        for kind in ("plain", "negation", "contrast"):
            labels = corpus.targets(split, kind)
            assert len(labels) > 0 and labels.float().mean() == 0.5  # balanced within each kind
    held_out = {t.name for t in text.TEMPLATES if t.held_out}
    assert not held_out & {r.template for r in corpus.train}
    assert held_out <= {r.template for r in corpus.test}


def test_committed_sentiment_weights_reach_85_percent_held_out(sentiment, corpus):
    acc = text.sentiment_accuracy(sentiment, corpus, "test")
    assert acc["all"] >= 0.85 and acc["negation"] >= 0.85 and acc["contrast"] >= 0.80, acc
    # The numbers the training script wrote (and the model card quotes) are what a user gets.
    metrics = json.loads(text.SENTIMENT_METRICS.read_text())
    assert abs(metrics["test_accuracy"] - acc["all"]) < 0.005
    assert metrics["sha256"] == text.SENTIMENT_SHA256


def test_negation_and_contrast_flip_the_prediction(sentiment):
    pairs = [
        ("The film was good.", 1),
        ("The film was not good.", 0),
        ("The film was boring.", 0),
        ("The film was never boring.", 1),
        ("The acting was awful, but the ending was good.", 1),
        ("The acting was good, but the ending was awful.", 0),
    ]
    texts, labels = zip(*pairs)
    with torch.no_grad():
        probs = torch.softmax(sentiment.model(**sentiment.preprocess(list(texts))), dim=-1)
    assert probs.argmax(1).tolist() == list(labels)
    assert (probs.max(1).values > 0.8).all()  # not by a hair


def test_classifier_takes_inputs_embeds_and_returns_attentions(sentiment):
    model = sentiment.model
    inputs = sentiment.preprocess(["I did not hate the cast.", "What a dull film."])
    with torch.no_grad():
        logits = model(**inputs)
        embeds = model.encoder.embeddings.word_embeddings(inputs["input_ids"])
        from_embeds = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"])
        out = model(**inputs, output_attentions=True)
    assert logits.shape == (2, 2) and sentiment.labels == ["negative", "positive"]
    torch.testing.assert_close(from_embeds, logits)
    torch.testing.assert_close(out.logits, logits)
    assert len(out.attentions) == 6 and out.attentions[-1].shape[1] == 12
    assert not model.training


def test_layer_integrated_gradients_on_the_embedding_layer(sentiment):
    from captum.attr import LayerIntegratedGradients

    model, tok = sentiment.model, sentiment.tokenizer
    inputs = sentiment.preprocess(["The plot was never dull."])
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    # The usual baseline: [CLS] [PAD] ... [PAD] [SEP].
    baseline = torch.full_like(ids, tok.pad_token_id)
    baseline[:, 0], baseline[:, -1] = tok.cls_token_id, tok.sep_token_id
    lig = LayerIntegratedGradients(model, model.embeddings)
    attr, delta = lig.attribute(
        ids, baselines=baseline, additional_forward_args=(mask,), target=1, n_steps=32, return_convergence_delta=True
    )
    assert attr.shape == (1, ids.shape[1], 384)
    with torch.no_grad():
        gap = (model(ids, mask) - model(baseline, mask))[0, 1]
    assert abs(delta.item()) < 0.05 * abs(gap.item()) + 1e-3  # completeness, roughly
    assert all(p.grad is None for p in model.parameters())


def test_flipped_byte_gives_weight_file_error_naming_the_restore_command(tmp_path):
    copy = tmp_path / "minilm_sentiment.safetensors"
    shutil.copyfile(text.SENTIMENT_WEIGHTS, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match="train_sentiment.py"):
        text.load_minilm_sentiment(path=copy)
    with pytest.raises(WeightFileError, match="missing.*train_sentiment.py"):
        text.load_minilm_sentiment(path=tmp_path / "absent.safetensors")


def test_weight_file_holds_only_the_trained_tensors_and_is_small():
    from safetensors import safe_open

    with safe_open(str(text.SENTIMENT_WEIGHTS), "pt") as f:
        names = list(f.keys())
    assert "head.weight" in names and all(n.startswith(text.TRAINED_PREFIXES) for n in names)
    assert text.SENTIMENT_WEIGHTS.stat().st_size < 4_000_000
