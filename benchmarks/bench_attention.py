"""Seconds for attention maps and head statistics over the sentiment corpus (MiniLM, 200 test
sentences), against what users would otherwise write: one sentence at a time through the model
with ``output_attentions=True`` and bertviz's ``format_attention``.

Both are timed in turns (ours, theirs, ours, ...) so that other load on the machine hits them
alike, and the best turn is kept, in CPU time (the work done) and wall time. Writes
benchmarks/results/attention.json (see benchmarks/_results.py).

    python benchmarks/bench_attention.py [--sentences 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import time

import torch
from _results import row, write
from bertviz.util import format_attention

import course_lib as cl


def best_turns(fns: dict, repeat: int) -> dict[str, tuple[float, float]]:
    """Best (CPU seconds, wall seconds) of each function over ``repeat`` alternating calls."""
    best = {name: (float("inf"), float("inf")) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cl.set_deterministic(0, threads=2)
    encoder = cl.load_model("minilm")
    model, tokenizer = encoder.model, encoder.tokenizer
    texts = cl.load_dataset("sentiment").texts("test")[: args.sentences]
    maps = cl.attention_maps(model, texts, tokenizer)  # warm-up, and the input of head_statistics

    def one_by_one():
        with torch.no_grad():
            return [format_attention(model(**tokenizer(t, return_tensors="pt"), output_attentions=True).attentions)
                    for t in texts]

    best = best_turns({
        "batched": lambda: cl.attention_maps(model, texts, tokenizer, batch_size=32),
        "one_by_one": one_by_one,
        "statistics": lambda: cl.head_statistics(maps),
    }, args.repeats)
    n = len(texts)
    rows = [
        row(f"attention_maps, {n} sentences, batches of 32 (CPU s)", best["batched"][0], best["one_by_one"][0],
            wall_s=round(best["batched"][1], 3), library_wall_s=round(best["one_by_one"][1], 3)),
        row(f"head_statistics, {n} sentences x {maps.layers} layers x {maps.heads} heads (CPU s)",
            best["statistics"][0], None, wall_s=round(best["statistics"][1], 3)),
    ]
    for r in rows:
        print(r)
    path = write(
        "attention", rows, title="Attention maps and head statistics (chapter 10)",
        note="library = one sentence at a time with output_attentions=True and bertviz's format_attention; "
             "2 threads; best of interleaved turns",
    )
    print("wrote", path)


if __name__ == "__main__":
    main()
