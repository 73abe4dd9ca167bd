"""The course's model and dataset registry: one way in for every chapter.

Each model is registered under a short name with a loader function and a flag saying whether
it works offline. ``load_model(name)`` returns a :class:`LoadedModel`; a chapter switches to a
bigger model on Colab by changing the name only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class LoadedModel:
    """A model in eval mode together with what it takes to use it.

    ``preprocess`` turns a PIL image (or, for text, a string) into a model input;
    ``labels`` maps class indices to names; ``tokenizer`` is set for text models;
    ``denormalize`` maps a preprocessed image tensor back to [0, 1] RGB for drawing.
    """

    name: str
    model: torch.nn.Module
    labels: list[str]
    preprocess: Callable[[Any], torch.Tensor] | None = None
    denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None
    tokenizer: Any = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    loader: Callable[..., Any]
    offline: bool
    description: str


_MODELS: dict[str, _Entry] = {}
_DATASETS: dict[str, _Entry] = {}


def register_model(name: str, *, offline: bool, description: str):
    """Decorator: register ``loader`` as the model ``name``."""

    def deco(loader):
        _MODELS[name] = _Entry(loader, offline, description)
        return loader

    return deco


def register_dataset(name: str, *, offline: bool, description: str):
    """Decorator: register ``loader`` as the dataset ``name``."""

    def deco(loader):
        _DATASETS[name] = _Entry(loader, offline, description)
        return loader

    return deco


def _lookup(table: dict[str, _Entry], name: str, kind: str) -> _Entry:
    if name not in table:
        known = ", ".join(sorted(table))
        raise KeyError(f"unknown {kind} {name!r}; known {kind}s: {known}")
    return table[name]


def load_model(name: str, **options) -> LoadedModel:
    """Load the registered model ``name`` in eval mode (see ``list_models()``)."""
    loaded = _lookup(_MODELS, name, "model").loader(**options)
    loaded.model.eval()
    return loaded


def load_dataset(name: str, **options):
    """Load the registered dataset ``name`` (see ``list_datasets()``)."""
    return _lookup(_DATASETS, name, "dataset").loader(**options)


def list_models() -> list[dict[str, Any]]:
    """Every registered model: its name, whether it works offline, and what it is."""
    return [
        {"name": n, "offline": e.offline, "description": e.description}
        for n, e in sorted(_MODELS.items())
    ]


def list_datasets() -> list[dict[str, Any]]:
    """Every registered dataset: its name, whether it works offline, and what it is."""
    return [
        {"name": n, "offline": e.offline, "description": e.description}
        for n, e in sorted(_DATASETS.items())
    ]
