"""Every model that list_models() says works offline loads and predicts, with the network off.

The model-specific tests check each model's accuracy; this one covers the registry as a whole,
so that a model registered later as offline is tried too.
"""
from __future__ import annotations

import socket

import pytest
import torch

import course_lib as cl
from course_lib.zoo import shapes

OFFLINE = sorted(m["name"] for m in cl.list_models() if m["offline"])


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a network connection was attempted: {args[:1]}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _sample(loaded: cl.LoadedModel):
    """Two inputs of the kind the model takes, through its own preprocess."""
    if loaded.tokenizer is not None:
        return loaded.preprocess(["a quiet, lovely film", "not good at all"])
    if loaded.name.startswith("shapes"):
        return loaded.preprocess(shapes.make_shapes(2, seed=5).images)
    return torch.stack([loaded.preprocess(cl.load_photo(n)) for n in ("chelsea", "coffee")])


def test_the_course_has_offline_models_of_every_kind():
    assert {"efficientnet_lite0", "shapes_cnn", "shapes_cnn_shortcut", "shapes_vit", "minilm", "minilm_sentiment"} <= set(OFFLINE)


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_model_loads_in_eval_mode_and_predicts_without_the_network(name, no_network):
    loaded = cl.load_model(name)
    assert loaded.name == name
    assert not loaded.model.training
    assert not any(m.training for m in loaded.model.modules())
    x = _sample(loaded)
    with torch.no_grad():
        out = loaded.model(**x) if isinstance(x, dict) else loaded.model(x)
    logits = getattr(out, "logits", None)
    if loaded.labels:  # a classifier: one score per class and image
        scores = out if logits is None else logits
        assert scores.shape == (2, len(loaded.labels))
        assert torch.isfinite(scores).all()
    else:  # an encoder: one vector per token
        assert out.last_hidden_state.shape[0] == 2 and torch.isfinite(out.last_hidden_state).all()
