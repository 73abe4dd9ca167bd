"""Train the Shapes models and write their weights: one command per model, deterministic.

    python scripts/train_shapes.py shapes_cnn            # small residual CNN
    python scripts/train_shapes.py shapes_cnn_shortcut   # the same CNN, tag on 95% of one class
    python scripts/train_shapes.py shapes_vit            # tiny ViT (transformers)
    python scripts/train_shapes.py all

Each writes ``course_lib/zoo/weights/<name>.safetensors`` and ``<name>.json`` (SHA-256, test
accuracy, shortcut and probe figures, settings, training time) and prints the figures.
Every epoch sees freshly generated images (seeds ``TRAIN_SEED + epoch``): Shapes is cheap to
make, and a small ViT learns far better from new images than from repeated ones.
Runs on 2 CPU threads with deterministic kernels: a re-run gives the same weight bytes.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course_lib import set_deterministic
from course_lib.zoo import shapes
from course_lib.zoo import shapes_models as sm
from course_lib.zoo.weights import WEIGHTS_DIR, sha256_of

TRAIN_SEED = 100_000
VAL_SEED = 500_000
TEST_N = 5000

# Per model: epochs of freshly generated images, images per epoch, optimiser settings.
RECIPES = {
    "shapes_cnn": dict(epochs=8, images=8000, batch=128, lr=4e-3, weight_decay=5e-4, warmup=0.1),
    # Half the schedule of shapes_cnn: the tag is learnt in the first epoch, circles' shape later.
    # Trained as long as shapes_cnn, the model also learns what a circle looks like and the tag
    # moved to other classes costs it about 35 points instead of about 65 (measured).
    "shapes_cnn_shortcut": dict(
        epochs=4, images=8000, batch=128, lr=4e-3, weight_decay=5e-4, warmup=0.1, shortcut=True
    ),
    "shapes_vit": dict(
        epochs=28, images=8000, batch=128, lr=1e-3, weight_decay=0.05, warmup=0.05, token_labels=1.0
    ),
}


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """Linear warm-up to ``peak``, then cosine decay to zero."""
    w = max(1, int(warmup * total))
    if step < w:
        return peak * (step + 1) / w
    return peak * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, total - w)))


def token_targets(masks: torch.Tensor, labels: torch.Tensor, patch: int = 8) -> torch.Tensor:
    """Per-patch targets (row-major, as ViT orders its patches): the label where the object
    covers at least a quarter of the patch, else NUM_CLASSES (background). N x 64 x 64 -> N x 64."""
    cover = F.avg_pool2d(masks[:, None].float(), patch).flatten(1)
    return torch.where(cover >= 0.25, labels[:, None], torch.full_like(cover, sm.NUM_CLASSES, dtype=torch.long))


def train(name: str, epochs: int | None = None, images: int | None = None) -> tuple[torch.nn.Module, dict]:
    """Train model ``name`` from scratch; returns it (eval mode) and the training record.

    ``epochs`` and ``images`` (per epoch) override the recipe, for experiments and tests only.
    """
    recipe = dict(RECIPES[name])
    if epochs is not None:
        recipe["epochs"] = epochs
    if images is not None:
        recipe["images"] = images
    set_deterministic(0, threads=2)  # 2 threads: the same weight bytes on every run
    model = sm.ARCHITECTURES[name]()
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]  # biases, norms
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe["lr"],
    )
    # Token labelling (Jiang et al. 2021, "All Tokens Matter"): an extra linear head asks every
    # patch token for the class of the object under it (or "background"), from the true masks.
    # A tiny ViT trained on the image label alone stays near 50 percent for many epochs
    # (it learns texture, not shape); the dense signal teaches it shape in minutes.
    # The head is used in training only and is not saved: the model is a plain ViT.
    token_head = None
    if recipe.get("token_labels"):
        token_head = torch.nn.Linear(model.config.hidden_size, sm.NUM_CLASSES + 1)
        opt.add_param_group({"params": list(token_head.parameters()), "weight_decay": recipe["weight_decay"]})
    shortcut = dict(shortcut_class=sm.SHORTCUT_CLASS, shortcut_rate=sm.SHORTCUT_RATE) if recipe.get("shortcut") else {}
    val = shapes.make_shapes(1000, VAL_SEED, **shortcut)
    steps_per_epoch = recipe["images"] // recipe["batch"]
    total = recipe["epochs"] * steps_per_epoch
    shuffle = torch.Generator().manual_seed(0)
    start, step = time.perf_counter(), 0
    for epoch in range(recipe["epochs"]):
        data = shapes.make_shapes(recipe["images"], TRAIN_SEED + epoch, **shortcut)
        order = torch.randperm(len(data), generator=shuffle)
        model.train()
        loss_sum, correct = 0.0, 0
        for i in range(steps_per_epoch):
            idx = order[i * recipe["batch"] : (i + 1) * recipe["batch"]]
            x, y = sm.normalize(data.images[idx]), data.labels[idx]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, recipe["lr"], recipe["warmup"])
            if token_head is None:
                logits = sm.logits_of(model, x)
                loss = F.cross_entropy(logits, y)
            else:
                tokens = model.vit(pixel_values=x).last_hidden_state  # N x (1 + 64) x D
                logits = model.classifier(tokens[:, 0])  # exactly what model(x).logits computes
                loss = F.cross_entropy(logits, y) + recipe["token_labels"] * F.cross_entropy(
                    token_head(tokens[:, 1:]).flatten(0, 1), token_targets(data.masks[idx], y, model.config.patch_size).flatten()
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            step += 1
        seen = steps_per_epoch * recipe["batch"]
        print(
            f"{name} epoch {epoch + 1:2d}/{recipe['epochs']}  loss {loss_sum / seen:.3f}  "
            f"train acc {correct / seen:.3f}  val acc {sm.accuracy(model, val):.3f}  "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    model.eval()
    record = {
        "epochs": recipe["epochs"],
        "images_per_epoch": recipe["images"],
        "batch_size": recipe["batch"],
        "peak_lr": recipe["lr"],
        "weight_decay": recipe["weight_decay"],
        "train_seeds": f"{TRAIN_SEED} + epoch",
        "token_labels_weight": recipe.get("token_labels", 0.0),
        "torch_seed": 0,
        "training_seconds": round(time.perf_counter() - start, 1),
    }
    return model, record


def measure(name: str, model: torch.nn.Module) -> dict:
    """The figures the command prints and the manifest records."""
    test = shapes.make_shapes(TEST_N, sm.TEST_SEED)
    out = {"test_accuracy": round(sm.accuracy(model, test), 4), "test_n": TEST_N, "test_seed": sm.TEST_SEED}
    print(f"{name}: clean test accuracy {out['test_accuracy']:.4f} ({TEST_N} images, seed {sm.TEST_SEED})")
    if name == "shapes_cnn_shortcut":
        report = {k: round(v, 4) for k, v in sm.shortcut_report(model, n=TEST_N).items()}
        out["shortcut"] = {"class": sm.SHORTCUT_CLASS, "train_rate": sm.SHORTCUT_RATE, **report}
        print(
            f"{name}: tag on other classes -> accuracy on them {report['tag_on_others']:.4f} "
            f"(clean, same images: {report['clean_on_others']:.4f}); "
            f"{report['others_called_shortcut']:.1%} called '{sm.SHORTCUT_CLASS}'; "
            f"training-like test set {report['training_like']:.4f}"
        )
        print(
            f"{name}: clean test images: '{sm.SHORTCUT_CLASS}' without its tag {report['clean_shortcut_class']:.4f}, "
            f"other classes {report['clean_on_others']:.4f}"
        )
    if name == "shapes_cnn":
        probes = {}
        for layer in ("pool", "features.layer2"):
            for concept in ("striped", "dotted"):
                every = sm.concept_probe(model, concept, layer)
                irrelevant = sm.concept_probe(model, concept, layer, classes=["circle", "triangle", "cross"])
                probes[f"{layer}/{concept}"] = {"all_classes": round(every, 4), "circle_triangle_cross": round(irrelevant, 4)}
                print(
                    f"{name}: linear probe '{concept}' vs not, layer {layer}: held-out accuracy "
                    f"{every:.3f} (all classes), {irrelevant:.3f} (circle/triangle/cross only); chance 0.5"
                )
        out["probe"] = probes
    return out


def save(name: str, model: torch.nn.Module, record: dict, figures: dict, out_dir: Path) -> None:
    """Write <name>.safetensors and the <name>.json manifest (SHA-256 first, for the loader)."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    # contiguous() and a fixed key order: the file's bytes depend only on the weights.
    state = {k: v.detach().contiguous() for k, v in sorted(model.state_dict().items())}
    # One metadata entry only: safetensors writes several in a random order (different bytes).
    save_file(state, str(path), metadata={"command": sm.training_command(name)})
    manifest = {
        "name": name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "command": sm.training_command(name),
        **figures,
        **record,
        "torch": torch.__version__,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{name}: wrote {path} ({manifest['bytes'] / 1e6:.2f} MB, sha256 {manifest['sha256'][:16]}...)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=[*RECIPES, "all"])
    parser.add_argument("--epochs", type=int, help="override the recipe (for experiments only)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="output folder (default: the committed weights)")
    args = parser.parse_args(argv)
    for name in RECIPES if args.name == "all" else [args.name]:
        model, record = train(name, args.epochs)
        figures = measure(name, model)
        save(name, model, record, figures, args.out)
        print(
            f"{name}: {figures['test_accuracy']:.4f} clean test accuracy, "
            f"{record['training_seconds']:.0f} s training",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
