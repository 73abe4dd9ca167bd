"""How long Shapes takes to generate: prints seconds for 10,000 images (and per 1,000).

    python benchmarks/bench_shapes.py [n]
"""
from __future__ import annotations

import sys
import time

import torch

from course_lib.zoo.shapes import make_concept_images, make_shapes


def main(n: int = 10_000) -> None:
    torch.set_num_threads(2)
    make_shapes(16, seed=0)  # warm up: imports, first allocations
    start = time.perf_counter()
    batch = make_shapes(n, seed=0)
    seconds = time.perf_counter() - start
    print(f"make_shapes: {n} images of 3 x 64 x 64 in {seconds:.2f} s ({1000 * seconds / n:.2f} s per 1,000)")
    start = time.perf_counter()
    make_shapes(n, seed=0, shortcut_class="circle", shortcut_rate=0.95)
    print(f"make_shapes with the shortcut tag: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    make_concept_images("striped", 1000, seed=0)
    print(f"make_concept_images('striped', 1000): {time.perf_counter() - start:.2f} s")
    print(f"images {tuple(batch.images.shape)} {batch.images.dtype}, {batch.images.numel() * 4 / 1e6:.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
