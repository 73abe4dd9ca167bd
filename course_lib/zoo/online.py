"""Bigger models and CIFAR-10, for readers with the internet (Colab).

The same chapter code runs with them by changing one name: ``load_model("resnet50")`` instead
of ``load_model("efficientnet_lite0")``. Each returns the same :class:`LoadedModel` as the
offline models. The first call downloads the weights (then they are cached); without the
internet each loader fails within a few seconds, naming the offline model to use instead.

- ``resnet18``, ``resnet50``, ``vgg16``: torchvision, ImageNet-1k weights (``IMAGENET1K_V1``;
  torchvision checks each file's SHA-256 prefix).
- ``cifar10_resnet18``: torchvision's ResNet-18 adapted to 32 x 32 images (3 x 3 stride-1
  stem, no max-pool, 10 classes), with community weights trained on CIFAR-10
  (``edadaltocg/resnet18_cifar10`` on the Hugging Face hub, reported test accuracy 94.98 %);
  ``pretrained=False`` gives it untrained, for :func:`train_cifar10_resnet18`.
- ``vit_b16``: ``google/vit-base-patch16-224`` with eager attention, so attentions come back.
- ``bert_base_uncased``: ``google-bert/bert-base-uncased``, the 12-layer BERT encoder.
- dataset ``cifar10``: the CIFAR-10 python batches, read from a local folder, downloaded by
  torchvision (which verifies the archive's MD5) when the folder is missing.

Say offline explicitly with the environment variable ``COURSE_OFFLINE=1``; ``HF_HUB_OFFLINE=1``
also stops the hub models.
"""
from __future__ import annotations

import os
import pickle
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision import transforms as T

from .imagenet import denormalizer, imagenet_labels, imagenet_preprocess
from .registry import LoadedModel, register_dataset, register_model

OFFLINE_ENV = "COURSE_OFFLINE"
PROBE_TIMEOUT = 3.0  # seconds to wait for a TCP connection before calling the network down

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# The normalisation the CIFAR-10 ResNet-18 weights were trained with (timm "detectors"
# defaults). The std is the widespread per-pixel value, not the per-channel 0.247, 0.243, 0.261.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_REPO = "edadaltocg/resnet18_cifar10"


class OfflineError(RuntimeError):
    """A model or dataset needs a download, and there is no internet (or it was switched off)."""


# --------------------------------------------------------------------------------------------
# Is the internet there? Decide fast.
# --------------------------------------------------------------------------------------------


def _connect(host: str, port: int, timeout: float) -> None:
    socket.create_connection((host, port), timeout=timeout).close()


def can_reach(host: str, port: int = 443, timeout: float | None = None) -> bool:
    """True if a TCP connection to ``host`` opens within ``timeout`` seconds.

    The attempt runs in a daemon thread that we stop waiting for: ``create_connection``'s own
    timeout does not cover the DNS lookup, which can hang far longer on a machine without a
    network. Behind an HTTPS proxy, the proxy is what must be reachable.
    """
    timeout = PROBE_TIMEOUT if timeout is None else timeout
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 80
    result: list[bool] = []

    def attempt():
        try:
            _connect(host, port, timeout)
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _offline_reason(host: str, hub: bool) -> str | None:
    """Why nothing can be downloaded from ``host`` (None if it can): switches first, then a probe."""
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        return f"{OFFLINE_ENV} is set"
    if hub:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
                return f"{var} is set"
    if not can_reach(host):
        return f"could not reach {host} within {PROBE_TIMEOUT:g} s"
    return None


def _require_internet(host: str, what: str, alternative: str, hub: bool = False) -> None:
    """Raise :class:`OfflineError` naming ``alternative`` unless ``host`` can be reached."""
    reason = _offline_reason(host, hub)
    if reason is not None:
        raise OfflineError(_offline_message(what, reason, alternative))


def _offline_message(what: str, reason: str, alternative: str) -> str:
    return (
        f"no internet ({reason}): {what} must be downloaded the first time and is not in the "
        f"local cache. Offline, use {alternative} instead."
    )


# --------------------------------------------------------------------------------------------
# torchvision ImageNet models
# --------------------------------------------------------------------------------------------

_USE_EFFICIENTNET = "load_model('efficientnet_lite0')"


def _torchvision_imagenet(name: str, builder: str, weights_enum: str, last_conv: str, description: str):
    """Load torchvision's ``builder`` with ImageNet weights, from the cache or the internet."""
    import torchvision.models as tvm

    weights = getattr(tvm, weights_enum).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    what = f"{name}'s ImageNet weights ({weights.url})"
    if not cached.is_file():
        _require_internet(urlparse(weights.url).hostname, what, _USE_EFFICIENTNET)
    try:
        # torchvision checks the file's SHA-256 prefix (in its name) and loads tensors only.
        model = getattr(tvm, builder)(weights=weights)
    except OSError as err:  # the connection dropped mid-way, a proxy refused, ...
        raise OfflineError(_offline_message(what, f"download failed: {err}", _USE_EFFICIENTNET)) from err
    preprocess, denormalize = imagenet_preprocess(IMAGENET_MEAN, IMAGENET_STD)
    return LoadedModel(
        name=name,
        model=model.eval(),
        labels=imagenet_labels(),
        preprocess=preprocess,
        denormalize=denormalize,
        info={
            "data": "ImageNet-1k",
            "parameters": sum(p.numel() for p in model.parameters()),
            "source": f"torchvision {builder}, {weights_enum}.IMAGENET1K_V1",
            "accuracy": weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] / 100,
            "last_conv_layer": last_conv,
            "description": description,
        },
    )


@register_model(
    "resnet18", offline=False, description="torchvision ResNet-18, ImageNet-1k (online; offline: efficientnet_lite0)"
)
def load_resnet18() -> LoadedModel:
    return _torchvision_imagenet("resnet18", "resnet18", "ResNet18_Weights", "layer4", "ResNet-18, 11.7 M parameters")


@register_model(
    "resnet50", offline=False, description="torchvision ResNet-50, ImageNet-1k (online; offline: efficientnet_lite0)"
)
def load_resnet50() -> LoadedModel:
    return _torchvision_imagenet("resnet50", "resnet50", "ResNet50_Weights", "layer4", "ResNet-50, 25.6 M parameters")


@register_model(
    "vgg16", offline=False, description="torchvision VGG16, ImageNet-1k (online; offline: efficientnet_lite0)"
)
def load_vgg16() -> LoadedModel:
    # features.28 is the last convolution; features.29 its ReLU, features.30 the last max-pool.
    return _torchvision_imagenet("vgg16", "vgg16", "VGG16_Weights", "features.28", "VGG16, 138 M parameters")


# --------------------------------------------------------------------------------------------
# Hugging Face hub models
# --------------------------------------------------------------------------------------------


def _from_hub(load, what: str, alternative: str):
    """``load(local_files_only=...)``: from the local cache if there, else download if online."""
    from .text import _quiet_loading

    try:
        with _quiet_loading():
            return load(local_files_only=True)
    except OSError:  # not cached yet (transformers and huggingface_hub raise OSError subclasses)
        pass
    _require_internet("huggingface.co", what, alternative, hub=True)
    try:
        return load(local_files_only=False)  # with its progress bar: the first download is large
    except OSError as err:
        raise OfflineError(_offline_message(what, f"download failed: {err}", alternative)) from err


@register_model(
    "vit_b16",
    offline=False,
    description="google/vit-base-patch16-224, ImageNet-1k, 86 M parameters (online; offline: shapes_vit)",
)
def load_vit_b16(cache_dir: str | Path | None = None) -> LoadedModel:
    from transformers import ViTForImageClassification

    repo = "google/vit-base-patch16-224"
    model = _from_hub(
        lambda **kw: ViTForImageClassification.from_pretrained(
            repo, attn_implementation="eager", cache_dir=cache_dir, **kw
        ),
        f"the ViT-B/16 weights ({repo} on the Hugging Face hub)",
        "load_model('shapes_vit')",
    )
    # As the model's own image processor does: squash to 224 x 224 (no crop), mean 0.5, std 0.5.
    preprocess = T.Compose(
        [T.Resize((224, 224), interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]
    )
    _, denormalize = imagenet_preprocess((0.5,) * 3, (0.5,) * 3)
    return LoadedModel(
        name="vit_b16",
        model=model.eval(),
        labels=[model.config.id2label[i] for i in range(model.config.num_labels)],
        preprocess=preprocess,
        denormalize=denormalize,
        info={
            "data": "ImageNet-21k, fine-tuned on ImageNet-1k",
            "parameters": sum(p.numel() for p in model.parameters()),
            "source": f"Hugging Face hub {repo}",
            "patch_size": 16,
            "attentions": "model(x, output_attentions=True).attentions: 12 tensors N x 12 x 197 x 197",
        },
    )


@register_model(
    "bert_base_uncased",
    offline=False,
    description="bert-base-uncased encoder, 12 layers x 12 heads, 110 M parameters (online; offline: minilm)",
)
def load_bert_base_uncased(cache_dir: str | Path | None = None) -> LoadedModel:
    from transformers import AutoModel, AutoTokenizer

    from .text import text_preprocess

    repo = "google-bert/bert-base-uncased"
    what = f"BERT-base ({repo} on the Hugging Face hub)"
    model = _from_hub(
        lambda **kw: AutoModel.from_pretrained(repo, attn_implementation="eager", cache_dir=cache_dir, **kw),
        what,
        "load_model('minilm')",
    )
    tokenizer = _from_hub(
        lambda **kw: AutoTokenizer.from_pretrained(repo, cache_dir=cache_dir, **kw), what, "load_model('minilm')"
    )
    return LoadedModel(
        name="bert_base_uncased",
        model=model.eval(),
        labels=[],
        preprocess=text_preprocess(tokenizer),
        tokenizer=tokenizer,
        info={
            "data": "BooksCorpus and English Wikipedia (masked language modelling)",
            "parameters": sum(p.numel() for p in model.parameters()),
            "layers": model.config.num_hidden_layers,
            "heads": model.config.num_attention_heads,
            "source": f"Hugging Face hub {repo}",
            "embedding_layer": "embeddings",
        },
    )


# --------------------------------------------------------------------------------------------
# CIFAR-10: the ResNet-18 adaptation, its training, and the dataset
# --------------------------------------------------------------------------------------------


def cifar10_resnet18_architecture(num_classes: int = 10) -> nn.Module:
    """torchvision ResNet-18 for 32 x 32 images: (N x 3 x 32 x 32) -> (N x ``num_classes``), untrained.

    The ImageNet stem (7 x 7 stride-2 convolution, then a max-pool) would shrink a CIFAR
    image to 8 x 8 before the first block; a 3 x 3 stride-1 convolution and no max-pool keep
    32 x 32, and layer4 ends at 4 x 4.
    """
    import torchvision.models as tvm

    model = tvm.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def cifar10_preprocess():
    """(preprocess: PIL image or 3 x 32 x 32 tensor in [0, 1] -> normalised tensor, denormalize)."""
    normalize = T.Normalize(CIFAR10_MEAN, CIFAR10_STD)

    def preprocess(image) -> torch.Tensor:
        x = image.float() if isinstance(image, torch.Tensor) else T.functional.to_tensor(image)
        return normalize(x)

    return preprocess, denormalizer(CIFAR10_MEAN, CIFAR10_STD)


@register_model(
    "cifar10_resnet18",
    offline=False,
    description="ResNet-18 adapted to 32x32 CIFAR-10 (community weights; online; offline: shapes_cnn)",
)
def load_cifar10_resnet18(pretrained: bool = True, cache_dir: str | Path | None = None) -> LoadedModel:
    """The CIFAR-10 ResNet-18; ``pretrained=False``: untrained, for :func:`train_cifar10_resnet18`."""
    model = cifar10_resnet18_architecture()
    info = {
        "data": "CIFAR-10",
        "parameters": sum(p.numel() for p in model.parameters()),
        "last_conv_layer": "layer4",
        "trained": pretrained,
    }
    if pretrained:
        from huggingface_hub import hf_hub_download

        path = _from_hub(
            lambda **kw: hf_hub_download(CIFAR10_REPO, "pytorch_model.bin", cache_dir=cache_dir, **kw),
            f"the CIFAR-10 ResNet-18 weights ({CIFAR10_REPO} on the Hugging Face hub)",
            "load_model('shapes_cnn')",
        )
        # A pickle from a third party: tensors only, never code. It has no checksum we could
        # pin here; a wrong file fails the strict key and shape check below.
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise RuntimeError(
                f"the weights in {path} do not fit the CIFAR-10 ResNet-18 ({err}). Use "
                "load_model('cifar10_resnet18', pretrained=False) and train_cifar10_resnet18()."
            ) from err
        info["source"] = f"Hugging Face hub {CIFAR10_REPO} (timm resnet18, same tensor names)"
        info["accuracy"] = 0.9498  # as reported by its model card; not measured here
    else:
        info["source"] = "untrained: train it with course_lib.zoo.online.train_cifar10_resnet18"
    preprocess, denormalize = cifar10_preprocess()
    return LoadedModel(
        name="cifar10_resnet18",
        model=model.eval(),
        labels=list(CIFAR10_CLASSES),
        preprocess=preprocess,
        denormalize=denormalize,
        info=info,
    )


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 32 x 32 crops of the 4-pixel-padded images and random horizontal flips: N x 3 x 32 x 32."""
    n = len(x)
    padded = nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    offsets = torch.randint(0, 9, (2, n, 1), generator=generator).to(x.device)
    steps = torch.arange(32, device=x.device)
    rows, cols = offsets[0] + steps, offsets[1] + steps  # n x 32 each: a different crop per image
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(3, device=x.device).view(1, 3, 1, 1)
    crops = padded[batch, channel, rows.view(n, 1, 32, 1), cols.view(n, 1, 1, 32)]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device).view(n, 1, 1, 1)
    return torch.where(flip, crops.flip(-1), crops)


def train_cifar10_resnet18(
    model: nn.Module,
    train_set: "CIFAR10Arrays",
    epochs: int = 15,
    batch_size: int = 128,
    lr: float = 0.1,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> nn.Module:
    """Train ``model`` on ``train_set`` with SGD, a one-cycle schedule, random crops and flips.

    Meant for a GPU (Colab): about half a minute per epoch there, far too slow on a laptop
    CPU. Such a schedule commonly reaches about 90 % test accuracy in 15 epochs on CIFAR-10;
    this repository has not measured it (no GPU, no CIFAR-10 offline). Returns the model on
    ``device``, in eval mode.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    generator = torch.Generator().manual_seed(seed)
    images = torch.from_numpy(train_set.data).permute(0, 3, 1, 2)  # N x 3 x 32 x 32 uint8
    labels = torch.as_tensor(train_set.targets)
    mean = torch.tensor(CIFAR10_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=device).view(1, 3, 1, 1)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    steps = epochs * ((len(labels) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        start, total, correct, seen = time.time(), 0.0, 0, 0
        for idx in torch.randperm(len(labels), generator=generator).split(batch_size):
            x = images[idx].to(device).float() / 255
            y = labels[idx].to(device)
            x = _augment(x, generator)
            logits = model((x - mean) / std)
            loss = nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / seen:.3f}, "
            f"train accuracy {correct / seen:.1%} ({time.time() - start:.0f} s)"
        )
    return model.eval()


@torch.no_grad()
def cifar10_accuracy(model: nn.Module, dataset: "CIFAR10Arrays", batch_size: int = 500) -> float:
    """Share of ``dataset`` that ``model`` classifies correctly (normalised as it was trained)."""
    device = next(model.parameters()).device
    preprocess, _ = cifar10_preprocess()
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).float() / 255
    labels = torch.as_tensor(dataset.targets)
    correct = 0
    for i in range(0, len(labels), batch_size):
        x = torch.stack([preprocess(im) for im in images[i : i + batch_size]]).to(device)
        correct += (model(x).argmax(1).cpu() == labels[i : i + batch_size]).sum().item()
    return correct / len(labels)


class _ArraysOnly(pickle.Unpickler):
    """Unpickle CIFAR's batches allowing only NumPy arrays and builtins: a pickle can run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _read_batch(path: Path) -> dict:
    with open(path, "rb") as f:
        # latin1: the original batches were pickled by Python 2.
        batch = _ArraysOnly(f, encoding="latin1").load()
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILES = ("test_batch",)


class CIFAR10Arrays(torch.utils.data.Dataset):
    """CIFAR-10 read from its python batches: item i -> (PIL image or ``transform(image)``, label).

    ``data`` is N x 32 x 32 x 3 uint8 and ``targets`` a list of ints, as in torchvision's
    ``CIFAR10``; ``classes`` names the labels.
    """

    def __init__(self, folder: str | Path, train: bool = True, transform=None):
        folder = Path(folder)
        names = CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES
        missing = [n for n in names + ("batches.meta",) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks the CIFAR-10 files {missing}")
        data, targets = [], []
        for name in names:
            batch = _read_batch(folder / name)
            data.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            targets.extend(int(t) for t in batch["labels"])
        # Stored channel-first per row (1024 red, 1024 green, 1024 blue); images are H x W x C.
        self.data = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
        self.targets = targets
        self.classes = list(_read_batch(folder / "batches.meta")["label_names"])
        self.train = train
        self.transform = transform
        if len(self.data) != len(self.targets):
            raise ValueError(f"{folder}: {len(self.data)} images but {len(self.targets)} labels")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.data[i])
        return (image if self.transform is None else self.transform(image)), self.targets[i]


def default_data_root() -> Path:
    """Where downloaded data lives: ``$COURSE_DATA``, else ``~/.cache/course_lib`` (never the repository)."""
    return Path(os.environ.get("COURSE_DATA", Path.home() / ".cache" / "course_lib"))


@register_dataset(
    "cifar10",
    offline=False,
    description="CIFAR-10 (60,000 32x32 images, 10 classes): a local copy, else downloaded (offline: shapes)",
)
def load_cifar10(
    train: bool = True, root: str | Path | None = None, transform=None, download: bool = True
) -> CIFAR10Arrays:
    """CIFAR-10 from ``root/cifar-10-batches-py``; if that is missing, downloaded there first."""
    root = default_data_root() if root is None else Path(root)
    folder = root / CIFAR10_FOLDER
    needed = (CIFAR10_TRAIN_FILES if train else CIFAR10_TEST_FILES) + ("batches.meta",)
    if not all((folder / n).is_file() for n in needed):
        what = f"CIFAR-10 (163 MB, into {root})"
        if not download:
            raise FileNotFoundError(
                f"no CIFAR-10 in {folder}: pass download=True, or put the python batches there"
            )
        from torchvision.datasets import CIFAR10

        _require_internet(urlparse(CIFAR10.url).hostname, what, "load_dataset('shapes')")
        try:
            CIFAR10(root=str(root), train=train, download=True)  # checks the archive's MD5
        except OSError as err:
            reason = f"download failed: {err}"
            raise OfflineError(_offline_message(what, reason, "load_dataset('shapes')")) from err
    return CIFAR10Arrays(folder, train=train, transform=transform)
