"""Train the course's sentiment classifier (``load_model("minilm_sentiment")``), deterministically.

    python scripts/train_sentiment.py            # writes course_lib/zoo/weights/minilm_sentiment.*
    python scripts/train_sentiment.py --out /tmp/check   # a re-run elsewhere, to compare

The MiniLM encoder stays frozen except its last layer's attention; a linear head on the mean
of the token vectors is trained with it on the training split of ``load_dataset("sentiment")``.
Because only the last layer learns, the input to that layer is computed once and cached, so
an epoch costs one layer, not six. The saved file is then loaded back through the course's
own loader (checksum and all) and evaluated on the held-out split, overall and on the
negation and contrast sentences. Takes a few minutes on 2 CPU cores.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local: never ask the hub

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from course_lib import set_deterministic
from course_lib.zoo import text
from course_lib.zoo.weights import sha256_of


@torch.no_grad()
def cache_layer_inputs(model, tokenizer, texts, layer_index, batch_size=100):
    """Run the frozen layers once: (hidden N x T x D, layer attention mask, token mask N x T).

    A pre-hook records exactly what the encoder hands to layer ``layer_index`` (the hidden
    states and the attention mask in whatever form this transformers version builds it), so
    training can call that layer directly. Every text is padded to the same length T, so
    any subset of rows forms a valid batch.
    """
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    hidden, masks = [], []

    def record(module, args, kwargs):
        hidden.append(args[0])
        masks.append(args[1] if len(args) > 1 else kwargs["attention_mask"])

    layer = model.encoder.encoder.layer[layer_index]
    handle = layer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        for i in range(0, len(texts), batch_size):
            model.encoder(
                input_ids=enc["input_ids"][i : i + batch_size],
                attention_mask=enc["attention_mask"][i : i + batch_size],
            )
    finally:
        handle.remove()
    return torch.cat(hidden), torch.cat(masks), enc["attention_mask"]


def top_forward(model, hidden, layer_mask, token_mask, first_layer):
    """The trainable part: layers ``first_layer``.. of the encoder, mean pooling and head -> logits."""
    for layer in model.encoder.encoder.layer[first_layer:]:
        hidden = layer(hidden, layer_mask)
        if isinstance(hidden, tuple):  # older transformers return (hidden, attentions)
            hidden = hidden[0]
    return model.head(model.dropout(text.mean_pool(hidden, token_mask)))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--out", type=Path, default=text.WEIGHTS_DIR, help="directory for the weight and metrics files"
    )
    args = parser.parse_args(argv)

    start = time.time()
    set_deterministic(args.seed, threads=2)
    corpus = text.make_sentiment_corpus(seed=args.seed)
    encoder, tokenizer = text._load_encoder_and_tokenizer()
    model = text.SentimentClassifier(encoder).eval()

    trained = set(text.trained_parameter_names(model))
    for name, p in model.named_parameters():
        p.requires_grad_(name in trained)
    params = [p for name, p in model.named_parameters() if name in trained]
    # The lowest layer that has anything to learn: everything below it is frozen and cached.
    first_layer = min(int(n.split(".")[3]) for n in trained if n.startswith("encoder.encoder.layer."))
    print(f"training {sum(p.numel() for p in params):,} parameters ({', '.join(text.TRAINED_PREFIXES)})")

    hidden, layer_mask, token_mask = cache_layer_inputs(model, tokenizer, corpus.texts("train"), first_layer)
    labels = corpus.targets("train")
    print(f"cached the input of layer {first_layer} for {len(labels)} sentences ({time.time() - start:.0f} s)")

    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(labels) + args.batch_size - 1) // args.batch_size
    total = args.epochs * steps_per_epoch
    warmup = max(1, total // 10)
    # Linear warm-up then linear decay: the usual schedule for fine-tuning BERT.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / total)
    )
    order = torch.Generator().manual_seed(args.seed)
    model.train()  # dropout on in the trained layer and before the head
    for epoch in range(args.epochs):
        perm = torch.randperm(len(labels), generator=order)
        running = 0.0
        for i in range(0, len(labels), args.batch_size):
            idx = perm[i : i + args.batch_size]
            logits = top_forward(model, hidden[idx], layer_mask[idx], token_mask[idx], first_layer)
            loss = F.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: training loss {running / len(labels):.4f}")
    model.eval()
    train_seconds = time.time() - start

    # Save only the trained tensors, in a fixed order, so the file (and its checksum) repeats.
    from safetensors.torch import save_file

    args.out.mkdir(parents=True, exist_ok=True)
    weight_path = args.out / text.SENTIMENT_WEIGHTS.name
    state = {n: p.detach().clone().contiguous() for n, p in sorted(model.named_parameters()) if n in trained}
    # One metadata entry only: safetensors writes a metadata dict in no fixed order, so two
    # entries could swap places between runs and change the checksum of identical weights.
    save_file(state, str(weight_path), metadata={"trained_by": f"{text.TRAIN_COMMAND} --seed {args.seed}"})
    sha = sha256_of(weight_path)

    # Evaluate what a user gets: the saved file loaded back through the course's loader.
    loaded = text.load_minilm_sentiment(path=weight_path, expected_sha256=sha)
    test = text.sentiment_accuracy(loaded, corpus, "test")
    train = text.sentiment_accuracy(loaded, corpus, "train")
    metrics = {
        "test_accuracy": round(test["all"], 4),
        "test_accuracy_plain": round(test["plain"], 4),
        "test_accuracy_negation": round(test["negation"], 4),
        "test_accuracy_contrast": round(test["contrast"], 4),
        "train_accuracy": round(train["all"], 4),
        "n_train": len(corpus.train),
        "n_test": len(corpus.test),
        "n_test_negation": sum(r.kind == "negation" for r in corpus.test),
        "n_test_contrast": sum(r.kind == "contrast" for r in corpus.test),
        "trained_parameters": sum(v.numel() for v in state.values()),
        "file_bytes": weight_path.stat().st_size,
        "sha256": sha,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "training_seconds": round(train_seconds),
        "command": text.TRAIN_COMMAND,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    (args.out / text.SENTIMENT_METRICS.name).write_text(json.dumps(metrics, indent=2) + "\n")

    print(f"\nheld-out accuracy: {test['all']:.1%} on {len(corpus.test)} sentences")
    print(f"  plain    {test['plain']:.1%}")
    print(f"  negation {test['negation']:.1%}  (e.g. 'The film was never boring.')")
    print(f"  contrast {test['contrast']:.1%}  (e.g. 'The acting was good, but the ending was awful.')")
    print(f"training accuracy: {train['all']:.1%}; time {train_seconds:.0f} s (total {time.time() - start:.0f} s)")
    print(f"wrote {weight_path} ({weight_path.stat().st_size / 1e6:.1f} MB), SHA-256 {sha}")
    if sha != text.SENTIMENT_SHA256:
        print(
            "note: this checksum differs from SENTIMENT_SHA256 in course_lib/zoo/text.py; "
            "if you meant to replace the weights, update that constant.",
            file=sys.stderr,
        )
    return metrics


if __name__ == "__main__":
    main()
