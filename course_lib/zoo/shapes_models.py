"""The Shapes models: a small residual CNN, the same CNN trained with a shortcut, a tiny ViT.

All three are trained by ``python scripts/train_shapes.py <name>`` (deterministic, CPU) and
their weights are committed under ``course_lib/zoo/weights/``: ``<name>.safetensors`` and
``<name>.json`` (the SHA-256 the loader checks, plus the measured accuracies).

Inputs: ``loaded.preprocess`` maps a PIL image, an H x W x 3 array, or Shapes images
(3 x 64 x 64 or N x 3 x 64 x 64 in [0, 1]) to the model's input, normalised with mean 0.5 and
std 0.5 per channel (as ViT-B/16 and EfficientNet-Lite0); ``loaded.denormalize`` undoes it.

- ``shapes_cnn``: ``model(x)`` returns N x 6 logits. Its last conv block is
  ``features.layer3`` (N x 128 x 8 x 8, for Grad-CAM); ``pool`` gives the N x 128 penultimate
  features. The ReLUs are ``nn.ReLU(inplace=True)``, on purpose: the course's methods must cope.
- ``shapes_cnn_shortcut``: the same network, trained with the tag on 95 percent of
  ``SHORTCUT_CLASS`` images and on no others.
- ``shapes_vit``: a transformers ``ViTForImageClassification`` (64 px, patch 8, eager
  attention), called like ``google/vit-base-patch16-224``:
  ``model(pixel_values=x, output_attentions=True)`` has ``.logits`` (N x 6) and
  ``.attentions`` (one N x 4 x 65 x 65 tensor per layer; token 0 is CLS). ``logits_model``
  wraps it for code that wants ``model(x) -> logits``. Trained with token labelling: during
  training only, an extra head asked every patch token for the class of the object under it
  (from the true masks), because on image labels alone this tiny ViT stays near 50 percent for
  many epochs. Its patch tokens were thus told where the object is; remember this when its
  attention maps look at the object.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import shapes
from .registry import LoadedModel, register_model
from .weights import WEIGHTS_DIR, WeightFileError, load_state_dict

NUM_CLASSES = len(shapes.CLASSES)
MEAN = STD = 0.5
SHORTCUT_CLASS = "circle"  # the class the shortcut tag co-occurs with in shapes_cnn_shortcut
SHORTCUT_RATE = 0.95
TEST_SEED = 900_000  # the held-out test set every reported accuracy uses
VIT_CONFIG = dict(
    image_size=shapes.SIZE,
    patch_size=8,
    num_channels=3,
    hidden_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=384,
)


# ---------------------------------------------------------------- preprocessing


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (... x 3 x H x W) -> model input (mean 0.5, std 0.5)."""
    return (images - MEAN) / STD


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Model input -> images in [0, 1], detached, on the CPU, for drawing."""
    return (x.detach().cpu() * STD + MEAN).clamp(0, 1)


def preprocess(image: Any) -> torch.Tensor:
    """PIL image, H x W x 3 array, or Shapes tensor (3 x 64 x 64 or N x 3 x 64 x 64 in [0, 1]) -> normalised input.

    Arrays of integers are read as 0..255; other images are resized to 64 x 64.
    """
    if isinstance(image, torch.Tensor):
        if image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise ValueError(f"expected a 3 x H x W or N x 3 x H x W tensor, got shape {tuple(image.shape)}")
        x = image.float()
    else:
        from PIL import Image

        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("RGB"))
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
            raise ValueError(f"expected an H x W x 3 image, got shape {arr.shape}")
        arr = arr[..., :3]
        scale = 255.0 if np.issubdtype(arr.dtype, np.integer) else 1.0
        x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32) / scale).permute(2, 0, 1)
    if x.shape[-2:] != (shapes.SIZE, shapes.SIZE):
        batch = x if x.dim() == 4 else x[None]
        batch = F.interpolate(batch, size=(shapes.SIZE, shapes.SIZE), mode="bilinear", antialias=True, align_corners=False)
        x = batch if x.dim() == 4 else batch[0]
    return normalize(x)


# ---------------------------------------------------------------- the CNN


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and a skip; N x cin x H x W -> N x cout x H/stride x W/stride."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        # A separate module for the last ReLU, so hooks can see the block's output.
        self.relu2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.skip(x))


class ShapesCNN(nn.Module):
    """Small residual CNN: N x 3 x 64 x 64 -> N x 6 logits (about 0.3 M parameters)."""

    def __init__(self, num_classes: int = NUM_CLASSES, widths: Sequence[int] = (24, 32, 64, 128)):
        super().__init__()
        w0, w1, w2, w3 = widths
        # The stem halves the resolution at once: full-resolution convs cost 5x the time on a
        # 2-core CPU, and a stride-2 3x3 conv still sees 5-7 px stripes and dots.
        self.features = nn.Sequential(
            OrderedDict(
                stem=nn.Sequential(nn.Conv2d(3, w0, 3, 2, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU(inplace=True)),
                layer1=BasicBlock(w0, w1, stride=2),  # 16 x 16
                layer2=BasicBlock(w1, w2, stride=2),  # 8 x 8
                layer3=BasicBlock(w2, w3, stride=1),  # 8 x 8: the last conv block, for Grad-CAM
            )
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # N x w3: penultimate
        self.classifier = nn.Linear(w3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


# ---------------------------------------------------------------- the ViT


def build_shapes_vit() -> nn.Module:
    """An untrained ViTForImageClassification for Shapes (64 px, patch 8, eager attention)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        **VIT_CONFIG,
        num_labels=NUM_CLASSES,
        id2label=dict(enumerate(shapes.CLASSES)),
        label2id={c: i for i, c in enumerate(shapes.CLASSES)},
        attn_implementation="eager",  # SDPA returns no attention weights
    )
    return ViTForImageClassification(config)


class LogitsOnly(nn.Module):
    """Wraps a model whose output has ``.logits`` (Hugging Face) so that ``forward(x)`` returns them."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model, x)


def logits_model(model: nn.Module) -> nn.Module:
    """``model`` itself if it returns a tensor, else a ``LogitsOnly`` wrapper around it."""
    return LogitsOnly(model) if hasattr(model, "config") else model


def logits_of(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """N x C logits from a plain module or a Hugging Face classifier."""
    out = model(pixel_values=x) if hasattr(model, "config") else model(x)
    return out.logits if hasattr(out, "logits") else out


# ---------------------------------------------------------------- loading

ARCHITECTURES = {
    "shapes_cnn": ShapesCNN,
    "shapes_cnn_shortcut": ShapesCNN,
    "shapes_vit": build_shapes_vit,
}


def training_command(name: str) -> str:
    """The one command that trains ``name`` and writes its weight file."""
    return f"python scripts/train_shapes.py {name}"


def _restore_message(name: str) -> str:
    return (
        f"`git checkout -- course_lib/zoo/weights/{name}.safetensors course_lib/zoo/weights/{name}.json` "
        f"restores the committed file; `{training_command(name)}` retrains it (deterministic)"
    )


def read_manifest(name: str) -> dict:
    """The JSON written next to ``name``'s weights: SHA-256, accuracies, training settings."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.is_file():
        raise WeightFileError(f"manifest {path} is missing. To restore it: {_restore_message(name)}")
    return json.loads(path.read_text())


def load_state_dict_for(name: str, path: str | Path | None = None) -> dict:
    """The verified tensors of model ``name`` (``path`` overrides the committed file)."""
    manifest = read_manifest(name)
    path = WEIGHTS_DIR / f"{name}.safetensors" if path is None else Path(path)
    return load_state_dict(path, manifest["sha256"], _restore_message(name))


def _load(name: str, path: str | Path | None) -> tuple[nn.Module, dict]:
    manifest = read_manifest(name)
    state = load_state_dict_for(name, path)
    model = ARCHITECTURES[name]()
    model.load_state_dict(state)
    return model.eval(), manifest


def _loaded(name: str, model: nn.Module, manifest: dict, **info) -> LoadedModel:
    return LoadedModel(
        name=name,
        model=model,
        labels=list(shapes.CLASSES),
        preprocess=preprocess,
        denormalize=denormalize,
        info={
            "data": "Shapes (course_lib.zoo.shapes), fresh images every epoch",
            "parameters": sum(p.numel() for p in model.parameters()),
            "input_size": (3, shapes.SIZE, shapes.SIZE),
            "test_accuracy": manifest.get("test_accuracy"),
            "test_seed": manifest.get("test_seed"),
            "training_command": training_command(name),
            "manifest": manifest,
            **info,
        },
    )


_CNN_INFO = dict(
    last_conv_layer="features.layer3",
    penultimate_layer="pool",
    logits="model(x): N x 6 logits",
)


@register_model("shapes_cnn", offline=True, description="Small residual CNN (0.3 M parameters) trained on Shapes")
def load_shapes_cnn(path: str | Path | None = None) -> LoadedModel:
    model, manifest = _load("shapes_cnn", path)
    return _loaded("shapes_cnn", model, manifest, **_CNN_INFO)


@register_model(
    "shapes_cnn_shortcut",
    offline=True,
    description=f"The Shapes CNN trained with a corner tag on {SHORTCUT_RATE:.0%} of '{SHORTCUT_CLASS}' images: a shortcut model",
)
def load_shapes_cnn_shortcut(path: str | Path | None = None) -> LoadedModel:
    model, manifest = _load("shapes_cnn_shortcut", path)
    return _loaded(
        "shapes_cnn_shortcut",
        model,
        manifest,
        shortcut_class=SHORTCUT_CLASS,
        shortcut_rate=SHORTCUT_RATE,
        tag_mask=shapes.tag_mask(),  # 64 x 64 bool: where the tag sits
        **_CNN_INFO,
    )


@register_model(
    "shapes_vit",
    offline=True,
    description="Tiny ViT (transformers ViTForImageClassification, 64 px, patch 8, 4 layers x 4 heads) trained on Shapes",
)
def load_shapes_vit(path: str | Path | None = None) -> LoadedModel:
    model, manifest = _load("shapes_vit", path)
    return _loaded(
        "shapes_vit",
        model,
        manifest,
        logits="model(pixel_values=x).logits: N x 6 (or logits_model(model)(x))",
        attentions="model(pixel_values=x, output_attentions=True).attentions: 4 tensors N x 4 x 65 x 65, token 0 = CLS",
        patch_grid=(shapes.SIZE // VIT_CONFIG["patch_size"],) * 2,
        training="token labelling: an auxiliary per-patch class loss from the true masks (head discarded)",
        last_block=f"vit.layers.{VIT_CONFIG['num_hidden_layers'] - 1}",
        patch_embedding_layer="vit.embeddings.patch_embeddings.projection",
    )


# ---------------------------------------------------------------- measuring


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 250) -> torch.Tensor:
    """Predicted classes for Shapes images (N x 3 x 64 x 64 in [0, 1]): N int64."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat(
            [logits_of(model, normalize(images[i : i + batch_size])).argmax(1) for i in range(0, len(images), batch_size)]
        )
    finally:
        model.train(was_training)


def accuracy(model: nn.Module, batch: shapes.ShapesBatch, batch_size: int = 250) -> float:
    """Fraction of ``batch`` classified correctly."""
    return (predict(model, batch.images, batch_size) == batch.labels).float().mean().item()


def shortcut_report(model: nn.Module, n: int = 2000, seed: int = TEST_SEED) -> dict[str, float]:
    """How much ``model`` relies on the tag: accuracies on clean and tagged test images.

    ``clean``: no tags; ``clean_shortcut_class``: untagged images of ``SHORTCUT_CLASS``;
    ``clean_on_others``: untagged images of the other classes; ``tag_on_others``: the tag on
    every image not of ``SHORTCUT_CLASS`` (accuracy over those images);
    ``others_called_shortcut``: how many of them are then predicted as ``SHORTCUT_CLASS``;
    ``training_like``: the tag at the training rate.
    """
    k = shapes.CLASSES.index(SHORTCUT_CLASS)
    clean = shapes.make_shapes(n, seed)
    tagged = shapes.make_shapes(n, seed, shortcut_class=k, shortcut_rate=0.0, tag_other_rate=1.0)
    like_train = shapes.make_shapes(n, seed, shortcut_class=k, shortcut_rate=SHORTCUT_RATE)
    others = tagged.labels != k
    pred = predict(model, tagged.images[others])
    clean_pred = predict(model, clean.images)
    return {
        "clean": (clean_pred == clean.labels).float().mean().item(),
        "clean_shortcut_class": (clean_pred[~others] == k).float().mean().item(),
        "clean_on_others": (clean_pred[others] == clean.labels[others]).float().mean().item(),
        "tag_on_others": (pred == tagged.labels[others]).float().mean().item(),
        "others_called_shortcut": (pred == k).float().mean().item(),
        "training_like": accuracy(model, like_train),
    }


@torch.no_grad()
def layer_features(model: nn.Module, images: torch.Tensor, layer: str, batch_size: int = 250) -> torch.Tensor:
    """Activations of ``layer`` for Shapes images (N x 3 x 64 x 64 in [0, 1]), spatially averaged: N x D."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no layer {layer!r}; layers: {', '.join(n for n in modules if n)}")
    captured = []

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        # 4-D conv maps are averaged over space; 3-D token sequences give the CLS token.
        captured.append(out.mean((2, 3)) if out.dim() == 4 else out[:, 0] if out.dim() == 3 else out)

    was_training = model.training
    handle = modules[layer].register_forward_hook(hook)
    model.eval()
    try:
        for i in range(0, len(images), batch_size):
            logits_of(model, normalize(images[i : i + batch_size]))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(captured)


def concept_probe(
    model: nn.Module,
    concept: str,
    layer: str = "pool",
    n_train: int = 2000,
    n_test: int = 1000,
    seed: int = 0,
    classes: Sequence[str] | None = None,
) -> float:
    """Held-out accuracy of a logistic-regression probe for ``concept`` vs its absence in ``layer``.

    Positives and negatives are balanced (chance is 0.5). ``classes`` restricts the images to
    those classes, e.g. the ones where the concept is irrelevant.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    known = shapes.TEXTURES + shapes.COLOR_NAMES
    if concept not in known:
        raise ValueError(f"unknown concept {concept!r}; known: {known}")
    wanted = None if classes is None else torch.tensor([shapes.CLASSES.index(c) for c in classes])

    def balanced(n: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        # Draw batches until both sides have n // 2 images, then take that many of each.
        pos, neg = [], []
        for i in range(100):
            batch = shapes.make_shapes(n, data_seed + 7919 * i)
            if wanted is not None:
                batch = batch[torch.isin(batch.labels, wanted)]
            y = batch.concepts[concept]
            pos.append(batch.images[y])
            neg.append(batch.images[~y])
            if min(sum(map(len, pos)), sum(map(len, neg))) >= n // 2:
                break
        images = torch.cat([torch.cat(pos)[: n // 2], torch.cat(neg)[: n // 2]])
        labels = torch.arange(len(images)) < n // 2
        return layer_features(model, images, layer), labels

    x_train, y_train = balanced(n_train, 700_000 + seed)
    x_test, y_test = balanced(n_test, 800_000 + seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_train.numpy(), y_train.numpy())
    return float(probe.score(x_test.numpy(), y_test.numpy()))
